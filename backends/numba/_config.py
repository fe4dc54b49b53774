"""Threading choices of the numba backend.

numba's OpenMP layer spin-waits: on a 2-vCPU machine a ``parallel=True`` kernel
called after an idle gap (one call per training step) paid 5.8 ms for an empty
parallel region.  Unless the user chose a layer (``NUMBA_THREADING_LAYER``),
vsaopt selects ``workqueue``, and it runs the serial kernels below
``PARALLEL_MIN`` elements (override with ``VSAOPT_PARALLEL_MIN``).  Every
kernel module imports this one before it defines a kernel, so the kernels'
on-disk cache goes to the per-user folder of :mod:`._cache`.
"""

from __future__ import annotations

import os

import numba

from ._cache import install_locator

install_locator()

PARALLEL_MIN = int(os.environ.get("VSAOPT_PARALLEL_MIN", 8_000_000))

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"  # type: ignore[attr-defined]


def threading_layer() -> str:
    """The layer in use once a parallel kernel ran, else the configured choice."""
    try:
        return numba.threading_layer()
    except ValueError:
        return f"{numba.config.THREADING_LAYER} (not yet started)"  # type: ignore[attr-defined]


def use_parallel(n: int) -> bool:
    """Whether an input of ``n`` elements goes to the ``prange`` variant."""
    return n >= PARALLEL_MIN and numba.get_num_threads() > 1


def cache_report(modules) -> dict[str, int]:
    """How the numba kernels of ``modules`` were obtained in this process.

    Counts the compiled signatures loaded from numba's on-disk cache
    (``cache_hits``) and compiled here (``cache_misses``).  A second process
    whose kernels all come from the cache reports ``compiled == 0``.
    """
    from numba.core.registry import CPUDispatcher

    hits = misses = 0
    for module in modules:
        for obj in vars(module).values():
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == module.__name__:
                hits += sum(obj.stats.cache_hits.values())
                misses += sum(obj.stats.cache_misses.values())
    return {"from_cache": hits, "compiled": misses}
