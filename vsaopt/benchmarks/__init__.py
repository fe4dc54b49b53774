"""Measurements behind ``vsaopt bench``: each figure is a ratio taken within one run.

Kernel throughput is set against the memory bandwidth of a copy kernel run in
the same process, the fast backends against the numpy reference, and per-call
latency is taken after an idle gap (the numba OpenMP spin-wait trap).
:mod:`~vsaopt.benchmarks.fidelity` measures the compressor's reconstruction
fidelity and :mod:`~vsaopt.benchmarks.torch_comm_compare` the DDP comm hooks, and
the ``torch_*`` modules the PyTorch adapter (they need torch, imported only
when they run).  The CLI formats what these
functions return; nothing here prints.
"""

from .timing import BenchRow, best_time, latency_after_idle

__all__ = ["BenchRow", "best_time", "latency_after_idle"]
