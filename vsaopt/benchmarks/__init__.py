"""Measurements behind ``vsaopt bench``: each figure is a ratio taken within one run.

Kernel throughput is set against the memory bandwidth of a copy kernel run in
the same process, the fast backends against the numpy reference, and per-call
latency is taken after an idle gap (the numba OpenMP spin-wait trap).  The
CLI formats what these functions return; nothing here prints.
"""

from .timing import BenchRow, best_time, latency_after_idle

__all__ = ["BenchRow", "best_time", "latency_after_idle"]
