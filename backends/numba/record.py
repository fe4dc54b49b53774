"""Gathering a real gradient in numba: one pass copies its pieces into a flat vector and takes the telemetry's sums.

The pieces are streamed in flat order; each block of 8192 elements keeps its
32 float64 lanes across piece boundaries (element ``j`` adds to lane ``j mod
32`` of block ``j div 8192``, in increasing ``j``), so every sum is the spec's
and equals ``row_sumsq`` / ``dot`` of the concatenation byte for byte.  The
copy and the products share one loop, so each input is read once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from .reduce import BLOCK, LANES, fold_lanes, fold_pairwise

#: Sums kept per block: ``x*x``, ``x*prev``, ``x*pred``, ``pred*pred``.
SUMS = 4
_NONE = np.zeros(1, dtype=np.float32)


@njit(cache=True, inline="always")
def _add(x, i, out, prev, has_prev, j, lanes, lane):
    """Element ``x[i]`` to ``out[j]``; ``x*x`` and ``x*prev`` into lane ``lane``."""
    v = x[i]
    out[j] = v
    g = np.float64(v)
    lanes[0, lane] += g * g
    if has_prev:
        lanes[1, lane] += g * np.float64(prev[j])


@njit(cache=True, inline="always")
def _add_pred(out, pred, j, lanes, lane):
    """``x*pred`` and ``pred*pred`` of element ``j`` (``x`` read back from ``out``) into lane ``lane``."""
    g = np.float64(out[j])
    q = np.float64(pred[j])
    lanes[2, lane] += g * q
    lanes[3, lane] += q * q


@njit(cache=True)
def _gather_piece(x, off, out, prev, pred, has_prev, has_pred, lanes, sums, total):
    """Copy piece ``x`` to ``out[off:]`` and add its products to the open blocks; close each block it completes.

    Indices are unsigned (no wraparound checks) and the copy shares the loop
    with the products, so each element is read from memory once.
    """
    n = np.uint64(x.shape[0])
    w = np.uint64(LANES)
    blk = np.uint64(BLOCK)
    base = np.uint64(off)
    i = np.uint64(0)
    while i < n:
        j = base + i
        k = j // blk
        end = min((k + np.uint64(1)) * blk, np.uint64(total))
        seg = min(n - i, end - j)
        p0 = j - k * blk  # position in the block; its lane is p0 mod 32
        head = min(seg, (w - p0 % w) % w)
        for t in range(np.uint64(0), head):
            _add(x, i + t, out, prev, has_prev, j + t, lanes, (p0 + t) % w)
            if has_pred:
                _add_pred(out, pred, j + t, lanes, (p0 + t) % w)
        full = head + (seg - head) // w * w
        for r in range(head, full, w):  # rows that start at lane 0: these loops vectorize
            for lane in range(np.uint64(0), w):
                _add(x, i + r + lane, out, prev, has_prev, j + r + lane, lanes, lane)
            if has_pred:  # a second loop over the row, read back from cache (one loop of four sums does not vectorize)
                for lane in range(np.uint64(0), w):
                    _add_pred(out, pred, j + r + lane, lanes, lane)
        for t in range(full, seg):
            _add(x, i + t, out, prev, has_prev, j + t, lanes, t - full)
            if has_pred:
                _add_pred(out, pred, j + t, lanes, t - full)
        if j + seg == end:
            for m in range(SUMS):
                sums[m, k] = fold_lanes(lanes[m])
                lanes[m, :] = 0.0
        i += seg


def gather_stats(pieces: Sequence[np.ndarray], out: np.ndarray, prev: np.ndarray | None,
                 pred: np.ndarray | None) -> tuple[float, float | None, float | None, float | None]:
    """Concatenate float32 ``pieces`` into ``out``; ``S(x*x)``, ``S(x*prev)``, ``S(x*pred)``, ``S(pred*pred)`` of it (None: no operand)."""
    total = out.shape[0]
    lanes = np.zeros((SUMS, LANES), dtype=np.float64)
    sums = np.zeros((SUMS, -(-total // BLOCK)), dtype=np.float64)
    has_prev, has_pred = prev is not None, pred is not None
    pv = prev if has_prev else _NONE
    pd = pred if has_pred else _NONE
    off = 0
    for p in pieces:
        _gather_piece(p, off, out, pv, pd, has_prev, has_pred, lanes, sums, total)
        off += p.shape[0]
    folded = [float(fold_pairwise(sums[r])) if sums.shape[1] else 0.0 for r in range(SUMS)]
    return (folded[0], folded[1] if has_prev else None, folded[2] if has_pred else None, folded[3] if has_pred else None)


KERNELS = {"gather_stats": gather_stats}
