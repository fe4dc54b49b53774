"""The numba CPU backend: ``@njit(cache=True)`` kernels, serial below a size threshold.

Parallel (``prange``) variants are used only for inputs of at least
:data:`PARALLEL_MIN` elements and only over independent outputs, so results
never depend on the thread count.  numba is imported only when this backend is
loaded.
"""

from __future__ import annotations

import importlib
import os

import numpy as np

from vsaopt.backend import Backend
from vsaopt.errors import BackendError

#: Kernel modules of this backend; each defines a ``KERNELS`` name -> function mapping.
KERNEL_MODULES = ("philox", "reduce", "ternary", "pack", "vsa", "accum", "predict")


def make_backend() -> Backend:
    """The numba backend; :class:`BackendError` when numba cannot be imported."""
    try:
        import numba
    except ImportError as exc:
        raise BackendError(f"numba is not installed ({exc})") from None
    from . import _config

    table: dict = {}
    for mod in KERNEL_MODULES:
        table.update(importlib.import_module(f"{__name__}.{mod}").KERNELS)
    details = {
        "numba": numba.__version__,
        "threads": str(numba.get_num_threads()),
        "threading layer": _config.threading_layer(),
        "parallel above": f"{_config.PARALLEL_MIN} elements",
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", "(beside the sources)"),
    }
    return Backend("numba", np, table, array_type=np.ndarray, device="cpu", details=details)
