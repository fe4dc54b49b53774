"""Mutations of the reductions family: the spec's summation order, abs_stats, gather_stats."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import mutation

_SUMS = (".reduce:spec_sum", ".vsa:spec_sum_rows")


def _order(rule: str) -> Any:
    """A float64 sum of a 1-D array in another order than the spec's (``rule`` names it)."""

    def total(v: np.ndarray) -> np.float64:
        if rule == "sequential":
            acc = np.float64(0.0)
            for x in v.tolist():
                acc += x
            return np.float64(acc)
        if rule == "numpy":
            return np.float64(np.sum(v))
        if rule == "float32":
            return np.float64(np.float32(np.sum(v.astype(np.float32), dtype=np.float32)))
        return _blocked(v, rule)

    return total


def _blocked(v: np.ndarray, rule: str) -> np.float64:
    block, lanes = (4096 if rule == "block4096" else 8192), (16 if rule == "lanes16" else 32)
    n = v.shape[0]
    if n == 0:
        return np.float64(0.0)
    nb = -(-n // block)
    padded = np.zeros(nb * block, np.float64)
    padded[:n] = v
    rows = padded.reshape(nb, block // lanes, lanes)
    if rule == "lanes_contiguous":  # lane l adds a contiguous run of the block
        rows = padded.reshape(nb, lanes, block // lanes).transpose(0, 2, 1)
    p = np.zeros((nb, lanes), np.float64)
    for m in range(rows.shape[1]):
        p += rows[:, m, :]
    if rule == "lane_fold_sequential":
        s = np.zeros(nb, np.float64)
        for lane in range(lanes):
            s += p[:, lane]
    elif rule == "lane_fold_ascending":
        h = 1
        while h < lanes:  # neighbours first: p[2j] += p[2j + 1], then stride 4 ...
            p[:, 0::2 * h] += p[:, h::2 * h]
            h *= 2
        s = p[:, 0]
    else:
        h = lanes // 2
        while h:
            p[:, :h] += p[:, h:2 * h]
            h //= 2
        s = p[:, 0]
    if rule == "block_fold_sequential":
        acc = np.float64(0.0)
        for x in s.tolist():
            acc += x
        return np.float64(acc)
    if rule == "block_fold_odd_first":  # an odd count folds its first sum into the carry
        while s.shape[0] > 1:
            if s.shape[0] % 2:
                s = np.concatenate([s[:1], s[1:].reshape(-1, 2).sum(axis=1)])
            else:
                s = s.reshape(-1, 2).sum(axis=1)
        return np.float64(s[0])
    while s.shape[0] > 1:
        pairs = s[: s.shape[0] // 2 * 2].reshape(-1, 2)
        folded = pairs[:, 0] + pairs[:, 1]
        s = np.concatenate([folded, s[-1:]]) if s.shape[0] % 2 else folded
    return np.float64(s[0])


def _sum_pair(rule: str) -> Any:
    total = _order(rule)

    def spec_sum(values: np.ndarray) -> np.float64:
        return total(np.asarray(values, np.float64).reshape(-1))

    def spec_sum_rows(values: np.ndarray) -> np.ndarray:
        return np.array([total(row) for row in np.asarray(values, np.float64)], dtype=np.float64).reshape(-1)

    return spec_sum, spec_sum_rows


def _register(rule: str, doc: str) -> None:
    def make(a: Any, b: Any) -> Any:
        return _sum_pair(rule)

    make.__name__ = f"sum_{rule}"
    make.__doc__ = doc
    mutation("reductions", "order", *_SUMS)(make)


for _rule, _doc in (
    ("sequential", "Every spec'd sum is one sequential float64 loop."),
    ("numpy", "Every spec'd sum is numpy's pairwise sum."),
    ("float32", "Every spec'd sum accumulates in float32."),
    ("block4096", "Blocks of 4096 elements instead of 8192."),
    ("lanes16", "16 lanes per block instead of 32."),
    ("lanes_contiguous", "Lane l adds a contiguous run of 256 elements instead of every 32nd."),
    ("lane_fold_sequential", "The 32 lanes are folded sequentially, lane 0 first."),
    ("lane_fold_ascending", "The lanes are folded neighbours first (h = 1, 2, 4, 8, 16)."),
    ("block_fold_sequential", "Block sums are added sequentially instead of pairwise."),
    ("block_fold_odd_first", "With an odd number of block sums, the first is carried instead of the last."),
):
    _register(_rule, _doc)


@mutation("reductions", "precision", "kernel:abs_stats")
def abs_sum_of_f32_abs_rounded(orig: Any) -> Any:
    """|x| summed with each partial lane sum rounded to float32 once per block."""

    def abs_stats(x: np.ndarray) -> tuple[float, int]:
        total, bits = orig(x)
        return float(np.float32(total)), bits

    return abs_stats


@mutation("reductions", "exponent", "kernel:abs_stats")
def abs_max_by_value_skips_subnormals(orig: Any) -> Any:
    """The maximum taken by value with subnormals flushed to zero."""

    def abs_stats(x: np.ndarray) -> tuple[float, int]:
        total, bits = orig(x)
        return total, 0 if bits < 0x00800000 else bits

    return abs_stats


@mutation("reductions", "check", "kernel:abs_stats")
def nan_not_detected_by_bits(orig: Any) -> Any:
    """The maximum taken with a float max, which ignores NaN (NaN not rejected)."""

    def abs_stats(x: np.ndarray) -> tuple[float, int]:
        finite = x[np.isfinite(x) | np.isinf(x)]
        return orig(finite) if finite.size else (0.0, 0)

    return abs_stats


@mutation("reductions", "rule", "kernel:abs_stats")
def abs_max_signed(orig: Any) -> Any:
    """The maximum of x instead of |x| (negative extremes ignored)."""

    def abs_stats(x: np.ndarray) -> tuple[float, int]:
        total, bits = orig(x)
        pos = x[x > 0]
        return total, int(pos.view(np.uint32).max()) if pos.size and bits < 0x7F800000 else (bits if bits >= 0x7F800000 else 0)

    return abs_stats


@mutation("reductions", "rule", "kernel:gather_stats")
def gather_sumsq_pred_from_x(orig: Any) -> Any:
    """S(pred*pred) computed from x (a variable mixed up)."""

    def gather_stats(pieces: Any, out: Any, prev: Any, pred: Any) -> Any:
        s, dp, dd, pp = orig(pieces, out, prev, pred)
        return s, dp, dd, (None if pp is None else s)

    return gather_stats


@mutation("reductions", "layout", "kernel:gather_stats")
def gather_pieces_reversed(orig: Any) -> Any:
    """The pieces concatenated in reverse order."""

    def gather_stats(pieces: Any, out: Any, prev: Any, pred: Any) -> Any:
        return orig(list(pieces)[::-1], out, prev, pred)

    return gather_stats


@mutation("reductions", "order", "kernel:gather_stats")
def gather_sums_per_piece(orig: Any) -> Any:
    """Each piece summed on its own from lane 0 (the order restarts at every piece), then the piece sums added."""

    def gather_stats(pieces: Any, out: Any, prev: Any, pred: Any) -> Any:
        s, dp, dd, pp = orig(pieces, out, prev, pred)
        if len(pieces) < 2:
            return s, dp, dd, pp
        scratch = [np.empty(p.shape[0], np.float32) for p in pieces]
        offs = np.cumsum([0] + [p.shape[0] for p in pieces])
        parts = [orig([p], o, None if prev is None else prev[a:b], None) for p, o, a, b in zip(pieces, scratch, offs, offs[1:])]
        s2 = float(sum(q[0] for q in parts))
        dp2 = None if prev is None else float(sum(q[1] for q in parts))
        return s2, dp2, dd, pp

    return gather_stats


@mutation("reductions", "precision", "kernel:gather_stats")
def gather_linear_pred_fused(orig: Any) -> Any:
    """The linear prediction operand computed with one rounding (a fused multiply-add in float64)."""

    def gather_stats(pieces: Any, out: Any, prev: Any, pred: Any) -> Any:
        if isinstance(pred, tuple):
            b, v, r, dt, w = pred
            pred = ((b.astype(np.float64) + v.astype(np.float64) * np.float64(np.float32(dt)))
                    + r.astype(np.float64) * np.float64(np.float32(w))).astype(np.float32)
        return orig(pieces, out, prev, pred)

    return gather_stats


@mutation("reductions", "precision", "kernel:dot")
def dot_products_rounded_to_f32(orig: Any) -> Any:
    """Each product x_i * y_i rounded to float32 before the float64 sum."""

    def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.dtype == np.int8:
            return orig(a, b)
        from ...backends.numpy.vsa import spec_sum_rows  # noqa: PLC0415

        prods = (a[:, None, :] * b[None, :, :]).astype(np.float64)
        return spec_sum_rows(prods.reshape(-1, a.shape[1])).reshape(a.shape[0], b.shape[0])

    return dot


@mutation("reductions", "precision", "kernel:row_sumsq")
def squares_rounded_to_f32(orig: Any) -> Any:
    """Each square x_i * x_i rounded to float32 before the float64 sum."""

    def row_sumsq(a: np.ndarray) -> np.ndarray:
        if a.dtype == np.int8:
            return orig(a)
        from ...backends.numpy.vsa import spec_sum_rows  # noqa: PLC0415

        return spec_sum_rows((a * a).astype(np.float64))

    return row_sumsq
