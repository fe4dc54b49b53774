"""The spec's float64 summation order (lanes, blocks, pairwise tree), written plainly."""

from __future__ import annotations

import numpy as np

#: Elements per block and accumulator lanes per block (spec section "Summation").
BLOCK = 8192
LANES = 32


def spec_sum(values: np.ndarray) -> np.float64:
    """Sum float64 ``values`` (1-D) in the spec's order.

    Lane ``l`` of block ``k`` adds elements ``k*BLOCK + LANES*m + l`` in increasing
    ``m``, starting from +0.0; the 32 lanes fold by ``p[l] += p[l + h]`` for
    ``h = 16, 8, 4, 2, 1``; block sums fold pairwise (``s[2j] + s[2j+1]``, an odd
    last one carried) until one is left.  Zero padding changes nothing: a lane
    never holds -0.0.
    """
    n = values.shape[0]
    if n == 0:
        return np.float64(0.0)
    nblocks = -(-n // BLOCK)
    padded = np.zeros(nblocks * BLOCK, dtype=np.float64)
    padded[:n] = values
    rows = padded.reshape(nblocks, BLOCK // LANES, LANES)
    lanes = np.zeros((nblocks, LANES), dtype=np.float64)
    for m in range(BLOCK // LANES):
        lanes += rows[:, m, :]
    h = LANES // 2
    while h:
        lanes[:, :h] += lanes[:, h : 2 * h]
        h //= 2
    return fold_pairwise(lanes[:, 0])


def fold_pairwise(sums: np.ndarray) -> np.float64:
    """Fold block sums pairwise: ``s[2j] + s[2j+1]``, an odd last one carried, until one is left."""
    s = sums
    while s.shape[0] > 1:
        pairs = s[: s.shape[0] // 2 * 2].reshape(-1, 2)
        folded = pairs[:, 0] + pairs[:, 1]
        s = np.concatenate([folded, s[-1:]]) if s.shape[0] % 2 else folded
    return np.float64(s[0])


def abs_stats(x: np.ndarray) -> tuple[float, int]:
    """Spec'd float64 sum of ``|x|`` and the max sign-cleared bit pattern of float32 ``x``."""
    if x.size == 0:
        return 0.0, 0
    total = spec_sum(np.abs(x.astype(np.float64)))
    max_bits = int((x.view(np.uint32) & np.uint32(0x7FFFFFFF)).max())
    return float(total), max_bits


KERNELS = {"abs_stats": abs_stats}
