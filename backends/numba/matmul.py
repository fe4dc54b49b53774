"""The ordered matrix product in numba (same arithmetic as ``backends/numpy/matmul.py``).

Loop order ``i, k, j``: for one row ``i`` the products ``a[i, k] * b[k, j]``
are added to the row's sums one ``k`` after another, and the innermost loop
over the independent columns ``j`` vectorises without changing any element's
order.  Two rows share each pass over ``b``, and four consecutive ``k`` are
added in one pass (in order, each rounded: the rows' sums are loaded and
stored once for them).  No ``fastmath``: each product and each sum is
rounded on its own (no fused multiply-add).  A narrow output (fewer than :data:`NARROW` columns, more rows)
is computed as the transposed product ``(b^T a^T)^T``, whose rows are long:
every element is the same sum in the same order.  Work of at least
``PARALLEL_MIN`` multiply-adds runs chunks of rows under ``prange``; rows are
independent outputs, so results never depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._dispatch import chunk_count, chunk_range, run

#: Rows of the output per chunk of the parallel variant.
ROWS = 16
#: Outputs with fewer columns than this (and more rows) are computed transposed.
NARROW = 16


@njit(cache=True)
def _one_row(a, b, c, i):
    """Row ``i`` of ``c`` (holding +0.0) plus ``a[i, k] * b[k, :]`` for ``k`` in order, four ``k`` a pass."""
    zero, four = np.uint64(0), np.uint64(4)
    depth, m = np.uint64(a.shape[1]), np.uint64(b.shape[1])
    full = depth - depth % four
    for k in range(zero, full, four):
        a0, a1, a2, a3 = a[i, k], a[i, k + 1], a[i, k + 2], a[i, k + 3]
        for j in range(zero, m):
            c[i, j] = (((c[i, j] + a0 * b[k, j]) + a1 * b[k + 1, j]) + a2 * b[k + 2, j]) + a3 * b[k + 3, j]
    for k in range(full, depth):
        for j in range(zero, m):
            c[i, j] = c[i, j] + a[i, k] * b[k, j]


@njit(cache=True)
def _two_rows(a, b, c, i):
    """Rows ``i`` and ``i + 1`` as :func:`_one_row`, side by side (each load of ``b`` serves both)."""
    zero, four = np.uint64(0), np.uint64(4)
    depth, m = np.uint64(a.shape[1]), np.uint64(b.shape[1])
    full = depth - depth % four
    h = i + np.uint64(1)
    for k in range(zero, full, four):
        a0, a1, a2, a3 = a[i, k], a[i, k + 1], a[i, k + 2], a[i, k + 3]
        e0, e1, e2, e3 = a[h, k], a[h, k + 1], a[h, k + 2], a[h, k + 3]
        for j in range(zero, m):
            b0, b1, b2, b3 = b[k, j], b[k + 1, j], b[k + 2, j], b[k + 3, j]
            c[i, j] = (((c[i, j] + a0 * b0) + a1 * b1) + a2 * b2) + a3 * b3
            c[h, j] = (((c[h, j] + e0 * b0) + e1 * b1) + e2 * b2) + e3 * b3
    for k in range(full, depth):
        for j in range(zero, m):
            c[i, j] = c[i, j] + a[i, k] * b[k, j]
            c[h, j] = c[h, j] + a[h, k] * b[k, j]


@njit(cache=True)
def _rows(a, b, c, lo, hi):
    """Rows ``[lo, hi)`` of ``c = a @ b`` (``c`` holds +0.0): sequential float32 sums over ``k``, two rows a pass."""
    i, stop = np.uint64(lo), np.uint64(hi)
    while i + np.uint64(1) < stop:
        _two_rows(a, b, c, i)
        i += np.uint64(2)
    if i < stop:
        _one_row(a, b, c, i)


@njit(cache=True, parallel=True)
def _rows_par(a, b, c, start, stop):
    for t in prange(chunk_count(stop - start, ROWS)):
        lo, hi = chunk_range(t, ROWS, start, stop)
        _rows(a, b, c, lo, hi)


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = a.shape[0]
    c = np.zeros((n, b.shape[1]), dtype=np.float32)
    run(n * a.shape[1] * b.shape[1], _rows, _rows_par, a, b, c, 0, n)
    return c


def matmul_ordered(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Float32 ``(n, k) x (k, m) -> (n, m)``, each element a sequential sum over ``k`` from +0.0 (see the reference)."""
    n, m = a.shape[0], b.shape[1]
    if m < NARROW and n > m:
        return np.ascontiguousarray(_product(np.ascontiguousarray(b.T), np.ascontiguousarray(a.T)).T)
    return _product(a, b)


KERNELS = {"matmul_ordered": matmul_ordered}
