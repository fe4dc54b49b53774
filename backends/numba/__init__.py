"""The numba CPU backend: ``@njit(cache=True)`` kernels, serial below a size threshold.

Parallel (``prange``) variants are used only for inputs of at least
:data:`PARALLEL_MIN` elements and only over independent outputs, so results
never depend on the thread count.  numba is imported only when this backend is
loaded.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np

from vsaopt.backend import Backend
from vsaopt.errors import BackendError

#: Kernel modules of this backend; each defines a ``KERNELS`` name -> function mapping.
KERNEL_MODULES = ("philox", "reduce", "ternary", "pack", "vsa", "accum", "predict", "record", "matmul", "comm")


def kernel_modules() -> list[ModuleType]:
    """The imported kernel modules of :data:`KERNEL_MODULES` (importing them imports numba)."""
    return [importlib.import_module(f"{__name__}.{mod}") for mod in KERNEL_MODULES]


def cache_report() -> dict[str, int]:
    """How this process obtained the numba kernels: signatures loaded from the on-disk cache and compiled here.

    Returns
    -------
    dict
        ``{"from_cache": int, "compiled": int}``; a process whose kernels all
        come from numba's cache reports ``compiled == 0``.
    """
    from . import _config

    return _config.cache_report(kernel_modules())


def cache_dir() -> Path:
    """The per-user folder that holds the numba kernels' on-disk cache (see :mod:`vsaopt.backends.numba._cache`).

    Examples
    --------
    >>> cache_dir().name
    'numba'
    """
    from ._cache import cache_dir as _cache_dir

    return _cache_dir()


def clear_cache() -> int:
    """Remove the numba kernels' on-disk cache; returns how many files were removed (the next process compiles anew)."""
    from ._cache import clear_cache as _clear

    return _clear()


@contextlib.contextmanager
def parallel_threshold(n: int) -> Iterator[None]:
    """Within the ``with`` block, inputs of at least ``n`` elements take the ``prange`` kernels.

    ``n = 1`` forces the parallel path, a size above every input the serial
    one; the previous threshold is restored on exit.  Results do not depend on
    the path, only timings do.
    """
    from . import _config

    saved = _config.PARALLEL_MIN
    _config.PARALLEL_MIN = n
    try:
        yield
    finally:
        _config.PARALLEL_MIN = saved


def make_backend() -> Backend:
    """The numba backend; :class:`BackendError` when numba cannot be imported."""
    try:
        import numba
    except ImportError as exc:
        raise BackendError(f"numba is not installed ({exc})") from None
    from . import _config

    table: dict = {}
    for mod in kernel_modules():
        table.update(mod.KERNELS)
    details = {
        "numba": numba.__version__,
        "threads": str(numba.get_num_threads()),
        "threading layer": _config.threading_layer(),
        "parallel above": f"{_config.PARALLEL_MIN} elements",
        "kernel cache": str(cache_dir()),
    }
    return Backend("numba", np, table, array_type=np.ndarray, device="cpu", details=details)
