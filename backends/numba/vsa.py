"""VSA algebra kernels (numba): trit bind/unbind, bundling sums, dot products, equal counts.

Float dot products keep the spec's order: per pair, 32 float64 lane
accumulators per block of 8192 products, the lane fold ``h = 16, 8, 4, 2, 1``
and the pairwise block fold, so the results equal the numpy reference byte for
byte.  ``prange`` runs only over independent outputs (rows of the result, or
column chunks of a bundle); every float sum stays inside one iteration.
Contiguous int8 trits are bound eight at a time as uint64 words (branch-free
SWAR); a chunk holding a value other than a trit is redone by the elementwise
kernel, so every output byte is that kernel's.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._dispatch import chunk_count, chunk_range, run
from .reduce import BLOCK, LANES, fold_lanes, fold_pairwise

U = np.uint64
# Byte-replicated masks of the SWAR bind (one byte lane per trit).
B01, B03, B7D = U(0x0101010101010101), U(0x0303030303030303), U(0x7D7D7D7D7D7D7D7D)
B7F, B80, S1, S7 = U(0x7F7F7F7F7F7F7F7F), U(0x8080808080808080), U(1), U(7)

#: Elements per parallel work item of the bind kernels.
CHUNK = 1 << 16
#: uint64 words (eight trits each) per parallel work item of the word bind kernel.
WORD_CHUNK = 1 << 13
#: Columns per tile of the bundling kernels (4096 float32 accumulators: 16 KiB, L1-resident).
TILE = 4096


@njit(cache=True)
def _bind_serial(a, b, sign, out):
    for i in range(a.shape[0]):
        d = a[i] + sign * b[i]  # int8 in [-2, 2]
        out[i] = d - np.int8(3) * np.int8(d > 1) + np.int8(3) * np.int8(d < -1)


@njit(cache=True, parallel=True)
def _bind_parallel(a, b, sign, out):
    n = a.shape[0]
    for c in prange(chunk_count(n, CHUNK)):
        lo, hi = chunk_range(c, CHUNK, 0, n)  # slices, not an index range: this vectorizes
        _bind_serial(a[lo:hi], b[lo:hi], sign, out[lo:hi])


@njit(cache=True, inline="always")
def _plus_one(x):
    """``(t + 1) mod 256`` of each byte of ``x``: 0, 1, 2 for the trits -1, 0, +1."""
    return ((x & B7F) + B01) ^ (x & B80)


@njit(cache=True, inline="always")
def _not_trits(y):
    """Nonzero where a byte of ``y = t + 1`` is at least 3 (``t`` was no trit)."""
    return (((y & B7F) + B7D) | y) & B80


@njit(cache=True)
def _bind_words(a, b, sign, out):
    """:func:`_bind_serial` on eight trits a uint64 (SWAR, valid trits); nonzero if a byte was no trit."""
    bad = U(0)
    for j in range(out.shape[0]):
        ya, yb = _plus_one(a[j]), _plus_one(b[j])
        bad |= _not_trits(ya) | _not_trits(yb)
        d = (ya + B03) - yb if sign < 0 else ya + yb + B01  # a - b + 3 or a + b + 3, in [1, 5]
        ge = ((d + B7D) >> S7) & B01  # d >= 3
        r = d - (ge | (ge << S1))  # (a -+ b) mod 3 as a code 0, 1, 2
        out[j] = (((r & B01) | B80) - ((r >> S1) & B01)) ^ B80  # code -> trit byte
    return bad != 0


@njit(cache=True)
def _bind_chunk(a, b, sign, out, wa, wb, wout):
    """:func:`_bind_words` on the words; where a byte was no trit, :func:`_bind_serial` gives these bytes."""
    if _bind_words(wa, wb, sign, wout):
        _bind_serial(a, b, sign, out)


@njit(cache=True, parallel=True)
def _bind_words_parallel(a, b, sign, out, wa, wb, wout):
    m = wout.shape[0]
    for c in prange(chunk_count(m, WORD_CHUNK)):
        lo, hi = chunk_range(c, WORD_CHUNK, 0, m)
        _bind_chunk(a[8 * lo : 8 * hi], b[8 * lo : 8 * hi], sign, out[8 * lo : 8 * hi], wa[lo:hi], wb[lo:hi], wout[lo:hi])


def _bind(a, b, sign, out=None):
    n = a.shape[0]
    out = np.empty(n, dtype=np.int8) if out is None else out
    s = np.int8(sign)
    words = all(v.dtype == np.int8 and v.flags.c_contiguous for v in (a, b))
    m = n // 8 if words else 0
    if m:  # eight trits a word; the views are made here, not in the kernels
        a8, b8, o8 = a[: 8 * m], b[: 8 * m], out[: 8 * m]
        run(n, _bind_chunk, _bind_words_parallel, a8, b8, s, o8, a8.view(np.uint64), b8.view(np.uint64), o8.view(np.uint64))
    run(n - 8 * m, _bind_serial, _bind_parallel, a[8 * m :], b[8 * m :], s, out[8 * m :])
    return out


def trit_bind(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``(a - b) mod 3`` mapped back to a trit, elementwise (int8, 1-D; into ``out`` when given)."""
    return _bind(a, b, -1, out)


def trit_unbind(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``(a + b) mod 3`` mapped back to a trit, elementwise (int8, 1-D; into ``out`` when given)."""
    return _bind(a, b, 1, out)


@njit(cache=True)
def _bundle_tile(v, out, lo, hi):
    """Add rows 1.. of ``v[:, lo:hi]`` in order into ``out[lo:hi]`` (which holds row 0), one rounding each."""
    acc = out[lo:hi]
    for r in range(1, v.shape[0]):
        row = v[r, lo:hi]
        for j in range(acc.shape[0]):
            acc[j] += row[j]


@njit(cache=True)
def _bundle_serial(v, out):
    n = v.shape[1]
    for lo in range(0, n, TILE):  # a tile of the accumulator stays in L1 across the rows
        _bundle_tile(v, out, lo, min(n, lo + TILE))


@njit(cache=True, parallel=True)
def _bundle_parallel(v, out):
    n = v.shape[1]
    for t in prange(chunk_count(n, TILE)):
        lo, hi = chunk_range(t, TILE, 0, n)
        _bundle_tile(v, out, lo, hi)


def bundle_sum(vectors: np.ndarray) -> np.ndarray:
    """Sum over axis 0 of ``(k, n)``: float32 as ``((v0 + v1) + v2) + ...``; int8 exactly into int32."""
    k, n = vectors.shape
    acc_dtype = np.int32 if vectors.dtype == np.int8 else np.float32
    if k == 0:
        return np.zeros(n, dtype=acc_dtype)
    out = vectors[0].astype(acc_dtype)  # a fresh copy: acc = v0
    run(k * n, _bundle_serial, _bundle_parallel, vectors, out)
    return out


@njit(cache=True)
def _block_sum(xb, yb, lanes):
    """Spec-order sum of ``float64(xb[i]) * float64(yb[i])`` over one block (at most BLOCK elements)."""
    lanes[:] = 0.0
    full = xb.shape[0] // LANES * LANES
    for j in range(0, full, LANES):  # slices starting at 0: this loop vectorizes
        for lane in range(LANES):
            lanes[lane] += np.float64(xb[j + lane]) * np.float64(yb[j + lane])
    for lane in range(xb.shape[0] - full):
        lanes[lane] += np.float64(xb[full + lane]) * np.float64(yb[full + lane])
    return fold_lanes(lanes)


@njit(cache=True)
def _spec_dot(x, y, lanes, sums):
    """Spec-order float64 sum of ``float64(x[i]) * float64(y[i])``; ``lanes``/``sums`` are scratch."""
    d = x.shape[0]
    nb = max(1, (d + BLOCK - 1) // BLOCK)
    for k in range(nb):
        lo, hi = k * BLOCK, min(d, (k + 1) * BLOCK)
        sums[k] = _block_sum(x[lo:hi], y[lo:hi], lanes)
    return fold_pairwise(sums[:nb])


@njit(cache=True)
def _dot_row(a, b, i, out):
    lanes = np.empty(LANES, dtype=np.float64)
    sums = np.empty(max(1, (a.shape[1] + BLOCK - 1) // BLOCK), dtype=np.float64)
    for j in range(b.shape[0]):
        out[i, j] = _spec_dot(a[i], b[j], lanes, sums)


@njit(cache=True)
def _dot_int_row(a, b, i, out):
    for j in range(b.shape[0]):
        acc = np.int64(0)
        for t in range(a.shape[1]):
            acc += np.int64(a[i, t]) * np.int64(b[j, t])
        out[i, j] = acc


@njit(cache=True)
def _equal_row(a, b, i, out):
    for j in range(b.shape[0]):
        count = np.int64(0)
        for t in range(a.shape[1]):
            count += a[i, t] == b[j, t]
        out[i, j] = count


# Row drivers: serial, and prange over the independent rows of the result.
@njit(cache=True)
def _dot_serial(a, b, out):
    for i in range(a.shape[0]):
        _dot_row(a, b, i, out)


@njit(cache=True, parallel=True)
def _dot_parallel(a, b, out):
    for i in prange(a.shape[0]):
        _dot_row(a, b, i, out)


@njit(cache=True)
def _dot_int_serial(a, b, out):
    for i in range(a.shape[0]):
        _dot_int_row(a, b, i, out)


@njit(cache=True, parallel=True)
def _dot_int_parallel(a, b, out):
    for i in prange(a.shape[0]):
        _dot_int_row(a, b, i, out)


@njit(cache=True)
def _equal_serial(a, b, out):
    for i in range(a.shape[0]):
        _equal_row(a, b, i, out)


@njit(cache=True, parallel=True)
def _equal_parallel(a, b, out):
    for i in prange(a.shape[0]):
        _equal_row(a, b, i, out)


@njit(cache=True)
def _sumsq_row(a, i, out, lanes, sums):
    out[i] = _spec_dot(a[i], a[i], lanes, sums)


@njit(cache=True)
def _sumsq_serial(a, out):
    lanes = np.empty(LANES, dtype=np.float64)
    sums = np.empty(max(1, (a.shape[1] + BLOCK - 1) // BLOCK), dtype=np.float64)
    for i in range(a.shape[0]):
        _sumsq_row(a, i, out, lanes, sums)


@njit(cache=True, parallel=True)
def _sumsq_parallel(a, out):
    for i in prange(a.shape[0]):
        lanes = np.empty(LANES, dtype=np.float64)
        sums = np.empty(max(1, (a.shape[1] + BLOCK - 1) // BLOCK), dtype=np.float64)
        _sumsq_row(a, i, out, lanes, sums)


@njit(cache=True)
def _sumsq_int(a, out):
    for i in range(a.shape[0]):
        acc = np.int64(0)
        for t in range(a.shape[1]):
            acc += np.int64(a[i, t]) * np.int64(a[i, t])
        out[i] = acc


def _pairwise(serial, parallel, a, b, dtype):
    n, d = a.shape
    m = b.shape[0]
    out = np.empty((n, m), dtype=dtype)
    run(n * m * max(d, 1) if n > 1 else 0, serial, parallel, a, b, out)  # one row: nothing to split
    return out


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot product of every row pair, ``(n, d) x (m, d) -> (n, m)``: int8 -> int64; float32 -> float64 spec sum."""
    if a.dtype == np.int8:
        return _pairwise(_dot_int_serial, _dot_int_parallel, a, b, np.int64)
    return _pairwise(_dot_serial, _dot_parallel, a, b, np.float64)


def row_sumsq(a: np.ndarray) -> np.ndarray:
    """Sum of squares of each row of ``(n, d)``: int8 -> exact int64; float32 -> float64 spec sum."""
    if a.dtype == np.int8:
        out = np.empty(a.shape[0], dtype=np.int64)
        _sumsq_int(a, out)  # memory-bound and exact: one serial pass
        return out
    out = np.empty(a.shape[0], dtype=np.float64)
    run(a.size if a.shape[0] > 1 else 0, _sumsq_serial, _sumsq_parallel, a, out)
    return out


def equal_count(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Number of positions where row ``i`` of ``a`` equals row ``j`` of ``b`` (``==``), int64 ``(n, m)``."""
    return _pairwise(_equal_serial, _equal_parallel, a, b, np.int64)


KERNELS = {
    "trit_bind": trit_bind,
    "trit_unbind": trit_unbind,
    "bundle_sum": bundle_sum,
    "dot": dot,
    "row_sumsq": row_sumsq,
    "equal_count": equal_count,
}
