"""Ternary quantization kernels in numba (threshold rule and Philox-driven TernGrad)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._dispatch import chunk_count, chunk_range, run
from .philox import CHUNK_BLOCKS, by_blocks, pairs_blocks

INV24 = np.float32(5.9604644775390625e-08)  # 2**-24
#: Elements handled by one parallel task of the elementwise kernels.
CHUNK = 1 << 18
#: Philox blocks per tile of the stochastic kernel (8 KiB of words: L1-resident).
TILE_BLOCKS = 512


@njit(cache=True)
def threshold_serial(x, out, t):
    """+1 / -1 / 0 of each element of ``x`` against the float32 threshold ``t``."""
    for i in range(x.shape[0]):
        v = x[i]
        out[i] = np.int8(v > t) - np.int8(v < -t)


@njit(cache=True, parallel=True)
def threshold_parallel(x, out, t):
    n = x.shape[0]
    for c in prange(chunk_count(n, CHUNK)):
        lo, hi = chunk_range(c, CHUNK, 0, n)
        threshold_serial(x[lo:hi], out[lo:hi], t)


def quantize_threshold(x: np.ndarray, threshold: float) -> np.ndarray:
    """+1 where ``x > t``, -1 where ``x < -t``, else 0 (``t`` float32)."""
    out = np.empty(x.shape[0], dtype=np.int8)
    run(x.shape[0], threshold_serial, threshold_parallel, x, out, np.float32(threshold))
    return out


@njit(cache=True, inline="always")
def stochastic_trit(v, w, s):
    """``sign(v)`` if ``u(w) < |v| / s`` else 0, all in float32 (``w`` a uint32 word)."""
    u = np.float32(w >> np.uint32(8)) * INV24
    return np.int8(u < abs(v) / s) * (np.int8(v > 0) - np.int8(v < 0))


@njit(cache=True)
def stochastic_blocks(x, out, b0, s, k0, k1, c1, c2, c3):
    """Trits of the whole blocks of ``x`` (block numbers from ``b0``).

    A tile of Philox words goes to an L1-resident scratch first, then one
    elementwise loop over float32 lanes uses them: each loop vectorizes on its
    own (the rounds across blocks, the division across 16 elements).
    """
    pairs = np.empty(2 * TILE_BLOCKS, dtype=np.uint64)
    words = pairs.view(np.uint32)
    nb = x.shape[0] // 4
    for t0 in range(0, nb, TILE_BLOCKS):
        m = min(TILE_BLOCKS, nb - t0)
        pairs_blocks(pairs[: 2 * m], b0 + t0, k0, k1, c1, c2, c3)
        xs, os = x[4 * t0 : 4 * (t0 + m)], out[4 * t0 : 4 * (t0 + m)]
        for i in range(4 * m):
            os[i] = stochastic_trit(xs[i], words[i], s)


@njit(cache=True, parallel=True)
def stochastic_parallel(x, out, nblocks, s, k0, k1, c1, c2, c3):
    for c in prange(chunk_count(nblocks, CHUNK_BLOCKS)):
        b0, b1 = chunk_range(c, CHUNK_BLOCKS, 0, nblocks)
        stochastic_blocks(x[4 * b0 : 4 * b1], out[4 * b0 : 4 * b1], b0, s, k0, k1, c1, c2, c3)


def quantize_stochastic(x: np.ndarray, scale: float, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
    """``sign(x)`` where ``u < |x| / scale`` in float32, else 0; all zeros when ``scale == 0``."""
    n = x.shape[0]
    s = np.float32(scale)
    if s == 0:
        return np.zeros(n, dtype=np.int8)
    out = np.empty(n, dtype=np.int8)
    return by_blocks(stochastic_blocks, stochastic_parallel, x, out, n, seed, stream, step, tensor, s)


KERNELS = {"quantize_threshold": quantize_threshold, "quantize_stochastic": quantize_stochastic}
