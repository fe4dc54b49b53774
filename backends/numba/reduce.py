"""The spec's summation order and the |x| statistics in numba."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._dispatch import run

BLOCK = 8192
LANES = 32
ABS_MASK = np.uint32(0x7FFFFFFF)


@njit(cache=True, inline="always")
def fold_lanes(lanes):
    """Lane fold ``p[l] += p[l + h]`` for ``h = 16, 8, 4, 2, 1``; returns ``p[0]``."""
    h = LANES // 2
    while h:
        for j in range(h):
            lanes[j] += lanes[j + h]
        h //= 2
    return lanes[0]


@njit(cache=True)
def fold_pairwise(sums):
    """Pairwise fold of block sums (``s[2j] + s[2j+1]``, odd last carried); consumes ``sums``."""
    k = sums.shape[0]
    if k == 0:
        return 0.0
    while k > 1:
        half = k // 2
        for j in range(half):
            sums[j] = sums[2 * j] + sums[2 * j + 1]
        if k % 2:
            sums[half] = sums[k - 1]
            k = half + 1
        else:
            k = half
    return sums[0]


@njit(cache=True, inline="always")
def _abs_rows(x, bits, e, rows, lanes, mb):
    """Add ``|x|`` of ``rows`` rows of 32 from element ``e`` to the lanes, in row order; the max sign-cleared bits so far."""
    w = np.uint64(LANES)
    for j in range(np.uint64(0), w):
        s = lanes[j]
        for r in range(rows):
            i = e + np.uint64(r) * w + j
            s += abs(np.float64(x[i]))
            mb = max(mb, np.uint32(bits[i] & ABS_MASK))
        lanes[j] = s
    return mb


@njit(cache=True)
def abs_block(x, lo, hi, lanes):
    """Spec'd float64 sum of ``|x|`` over the block ``x[lo:hi]`` (at most BLOCK elements) and its max sign-cleared bits.

    Element ``lo + i`` adds to lane ``i mod 32``, in increasing ``i``.  Four rows
    of 32 share one pass over the lanes (each lane still adds them in order);
    indices are unsigned and the bit maximum is uint32, so the loops vectorize.
    """
    lanes[:] = 0.0
    bits = x.view(np.uint32)
    mb = np.uint32(0)
    n = np.uint64(hi - lo)
    w, w4 = np.uint64(LANES), np.uint64(4 * LANES)
    e, end = np.uint64(lo), np.uint64(lo) + n
    stop4, stop = e + n // w4 * w4, e + n // w * w
    while e < stop4:
        mb = _abs_rows(x, bits, e, 4, lanes, mb)
        e += w4
    while e < stop:
        mb = _abs_rows(x, bits, e, 1, lanes, mb)
        e += w
    for j in range(np.uint64(0), end - e):
        lanes[j] += abs(np.float64(x[e + j]))
        mb = max(mb, np.uint32(bits[e + j] & ABS_MASK))
    return fold_lanes(lanes), mb


@njit(cache=True)
def abs_blocks_serial(x, sums, maxes):
    """Per-block sums and maxima of ``|x|``, one block after another."""
    n = x.shape[0]
    lanes = np.empty(LANES, dtype=np.float64)
    for k in range(sums.shape[0]):
        sums[k], maxes[k] = abs_block(x, k * BLOCK, min(n, (k + 1) * BLOCK), lanes)


@njit(cache=True, parallel=True)
def abs_blocks_parallel(x, sums, maxes):
    """Per-block sums and maxima of ``|x|``; blocks are independent outputs."""
    n = x.shape[0]
    for k in prange(sums.shape[0]):
        lanes = np.empty(LANES, dtype=np.float64)
        sums[k], maxes[k] = abs_block(x, k * BLOCK, min(n, (k + 1) * BLOCK), lanes)


def abs_stats(x: np.ndarray) -> tuple[float, int]:
    """Spec'd float64 sum of ``|x|`` and the max sign-cleared bit pattern of float32 ``x``."""
    nblocks = -(-x.shape[0] // BLOCK)
    sums = np.empty(nblocks, dtype=np.float64)
    maxes = np.zeros(nblocks, dtype=np.uint32)
    run(x.shape[0], abs_blocks_serial, abs_blocks_parallel, x, sums, maxes)
    return float(fold_pairwise(sums)), int(maxes.max()) if nblocks else 0


KERNELS = {"abs_stats": abs_stats}
