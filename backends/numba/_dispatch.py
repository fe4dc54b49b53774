"""Serial or ``prange``: choosing a kernel's variant, and splitting its work into chunks.

A parallelized kernel here is a pair with one signature: a serial kernel over
an index range, and a ``parallel=True`` twin that runs that serial kernel on
independent chunks of the range under ``prange``.  :func:`run` picks one by
the input's size; :func:`chunk_count` and :func:`chunk_range` are the chunk
arithmetic the twins share.  Chunks are independent outputs, so the result
never depends on the variant or the thread count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numba import njit

from ._config import use_parallel

__all__ = ["run", "chunk_count", "chunk_range"]


def run(n: int, serial: Callable[..., Any], parallel: Callable[..., Any], *args: Any) -> Any:
    """``parallel(*args)`` when an input of ``n`` elements takes the ``prange`` path, else ``serial(*args)``.

    Parameters
    ----------
    n : int
        Size of the input, compared with the backend's parallel threshold
        (:func:`vsaopt.backends.numba._config.use_parallel`).
    serial, parallel : callable
        The two variants of one kernel; they take the same arguments.
    *args
        The kernel's arguments.

    Returns
    -------
    object
        What the chosen variant returns.
    """
    return (parallel if use_parallel(n) else serial)(*args)


@njit(cache=True)
def chunk_count(n, size):
    """Chunks of ``size`` items that cover ``n`` items (the last one may be short)."""
    return (n + size - 1) // size


@njit(cache=True)
def chunk_range(c, size, start, stop):
    """Items ``[lo, hi)`` of chunk ``c`` when ``[start, stop)`` is cut into chunks of ``size``."""
    lo = start + c * size
    return lo, min(stop, lo + size)
