"""Golden cases: the spec'd sum and maximum of |x|."""

from __future__ import annotations

import numpy as np

from .. import reductions
from . import on, sample_f32


def _stats(be, x):
    total, peak = reductions.abs_stats(on(be, x), backend=be)
    return {"abs_sum": total, "abs_max": peak}


def _gather(be, pieces, prev, pred, linear=None):
    n = sum(int(p.shape[0]) for p in pieces)
    out = be.xp.empty(n, dtype=be.xp.float32)
    if linear is not None:  # the prediction is predict_linear(baseline, velocity, residual, dt, w)
        pred = (*(on(be, linear[k]) for k in ("baseline", "velocity", "residual")), np.float32(linear["dt"]), np.float32(linear["w"]))
    sumsq, dot_prev, dot_pred, sumsq_pred = be.gather_stats([on(be, p) for p in pieces], out, on(be, prev), on(be, pred))
    return {"x": out, "sumsq": sumsq, "dot_prev": dot_prev, "dot_pred": dot_pred, "sumsq_pred": sumsq_pred}


OPS = {"abs_stats": _stats, "gather_stats": _gather}


def _ladder(block_sums: list[float]) -> np.ndarray:
    """float32 zeros with ``block_sums[k]`` (exact in float32) as the first element of block ``k`` of 8192."""
    x = np.zeros(8192 * len(block_sums), np.float32)
    x[::8192] = np.array(block_sums, np.float32)
    return x


def cases() -> list[dict]:
    """The reductions family's cases."""
    f32 = np.float32
    big = sample_f32(2 * 8192 + 37, seed=11)
    big[::97] *= f32(1e30)  # magnitudes whose float64 sum depends on the order
    big[::89] = f32(1e-42)
    rows = [
        (np.zeros(0, f32), "empty: sum 0, max 0"),
        (np.array([-0.0], f32), "negative zero"),
        (np.array([1e-45, -1e-45, 1.4e-44], f32), "subnormals"),
        (np.array([3.4028235e38, -3.4028235e38, 1.0], f32), "float32 extremes: the float64 sum does not overflow"),
        (np.array([1e16, 1.0, -1e16, 1.0], f32), "cancellation-free: |x| summed, 1.0 survives in float64"),
        (sample_f32(33, seed=1), "33 elements: one full lane row and a partial one"),
        (sample_f32(8193, seed=2, scale=1000), "one whole block and one element"),
        (big, "two blocks and a tail with mixed huge and subnormal magnitudes"),
        (sample_f32(60, seed=3).reshape(3, 4, 5), "3-d input is reduced flat in C order"),
        (np.array([1.0, np.nan], f32), "NaN is rejected"),
        (np.array([np.inf, 1.0], f32), "Inf is rejected"),
        (np.array([1, 2], np.int32), "integer input is rejected"),
    ]
    out = [{"op": "abs_stats", "comment": c, "inputs": {"x": x}} for x, c in rows]
    wide = sample_f32(8192 + 45, seed=12, scale=2.0)  # two blocks: pieces cut across the boundary
    wide[::101] *= f32(1e25)  # sums whose float64 value depends on the order
    prev, pred = sample_f32(wide.shape[0], seed=13), sample_f32(wide.shape[0], seed=14, scale=1e3)
    gathers = [
        ([np.zeros(0, f32)], None, None, "empty: all sums 0"),
        ([wide[:40]], wide[1:41], None, "one piece, with prev"),
        ([wide[:3], wide[3:33], wide[33:70]], prev[:70], pred[:70], "pieces cut off lane rows, every sum"),
        (np.split(wide, [5, 8191, 8192, 8200, 8200]), prev, pred, "pieces across the block boundary (and an empty one), every sum"),
        (np.split(wide[:300], [123]), None, pred[:300], "pred without prev"),
    ]
    for pieces, pv, pd, c in gathers:
        out.append({"op": "gather_stats", "comment": c, "inputs": {"pieces": pieces, "prev": pv, "pred": pd, "linear": None}})
    m = 300
    linear = {"baseline": sample_f32(m, seed=15, scale=4.0), "velocity": sample_f32(m, seed=16), "residual": sample_f32(m, seed=17),
              "dt": np.float64(3.0), "w": np.float64(0.8100000023841858)}
    out.append({"op": "gather_stats", "comment": "pred given as a linear prediction, computed in the pass",
                "inputs": {"pieces": np.split(wide[:m], [100]), "prev": prev[:m], "pred": None, "linear": linear}})
    ladders = [
        (_ladder([2.0**53, 0.0, 1.0, 1.0]), "2**53 ladder over 4 blocks (one value each): block sums fold pairwise, "
         "(2**53 + 0) + (1 + 1) = 2**53 + 2; a sequential fold loses both ones"),
        (_ladder([1.0, 1.0, 0.0, 0.0, 2.0**53]), "2**53 ladder over 5 blocks: the odd last block sum is carried, "
         "(2 + 0) + 2**53 = 2**53 + 2; carrying the first instead gives 2**53"),
    ]
    out += [{"op": "abs_stats", "comment": c, "inputs": {"x": x}} for x, c in ladders]
    out += _piece_order_cases()
    out.append({"op": "abs_stats", "comment": "2**53 ladder over 3 blocks (1, 1, 2**53): pairwise with the odd last "
                "block carried, (1 + 1) + 2**53 = 2**53 + 2; carrying the first instead gives 2**53",
                "inputs": {"x": _ladder([1.0, 1.0, 2.0**53])}})
    ladder = np.zeros(3 * 8192 + 1, f32)
    ladder[8192], ladder[16384], ladder[24576] = 2.0**53, 1.0, 1.0
    out.append({"op": "abs_stats", "comment": "2**53 ladder over 4 blocks (0, 2**53, 1, 1), the last of one element: "
                "pairwise (0 + 2**53) + (1 + 1) = 2**53 + 2; a sequential fold loses both ones",
                "inputs": {"x": ladder}})
    lanes = np.zeros(4160, f32)
    lanes[0], lanes[16], lanes[48], lanes[4096], lanes[4128] = 2.0**53, 1.0, 1.0, 1.0, 1.0
    out.append({"op": "abs_stats", "comment": "2**53 in lane 0, ones in lane 16 (elements 16, 48) and in lane 0 of the "
                "block's second half (4096, 4128): 2**53 + 2 (16 lanes or blocks of 4096 give 2**53 or 2**53 + 4)",
                "inputs": {"x": lanes}})
    tiny = np.array([0x80000001, 0x00000000, 0x00000007, 0x80000003], np.uint32).view(f32)
    out.append({"op": "abs_stats", "comment": "only subnormals, the largest magnitude 7 * 2**-149: max |x| by bits",
                "inputs": {"x": tiny}})
    out.append({"op": "abs_stats", "comment": "a negative NaN (0xFFC00000) after finite values is rejected",
                "inputs": {"x": np.array([0x40000000, 0x3F800000, 0xFFC00000], np.uint32).view(f32)}})
    m = 130
    linear = {"baseline": sample_f32(m, seed=18, scale=8.0), "velocity": sample_f32(m, seed=19, scale=3.0),
              "residual": sample_f32(m, seed=20), "dt": np.float64(5.0), "w": np.float64(np.float32(0.3))}
    out.append({"op": "gather_stats", "comment": "linear prediction dt 5, w f32(0.3): (b + v * dt) + r * w, each "
                "operation rounded to float32",
                "inputs": {"pieces": [sample_f32(m, seed=21)], "prev": None, "pred": None, "linear": linear}})
    return out


def _piece_order_cases() -> list[dict]:
    """gather_stats sums the concatenation in the spec's order: lanes run across piece cuts."""
    f32 = np.float32
    big, fours = np.array([2.0**30], f32), np.full(32, 4.0, f32)
    prev = np.concatenate([np.array([2.0**30], f32), np.full(32, -4.0, f32)])
    out = [{"op": "gather_stats", "comment": "pieces [2**30] and 32 fours: lane 0 holds 2**60 and the last 16 (absorbed), "
            "the other lanes fold to 256 and only the last fold survives: 2**60 + 256 (pieces summed on their own "
            "give 2**60 + 512); dot with prev cancels the same way",
            "inputs": {"pieces": [big, fours], "prev": prev, "pred": None, "linear": None}}]
    cut = np.concatenate([big, np.full(64, 4.0, f32)])
    out.append({"op": "gather_stats", "comment": "three pieces (1, 31 and 33 elements) of 2**30 and fours: lane order "
                "across both cuts; pieces restarted at lane 0 would add each piece's sum to 2**60 separately",
                "inputs": {"pieces": np.split(cut, [1, 32]), "prev": cut[::-1].copy(), "pred": cut, "linear": None}})
    return out
