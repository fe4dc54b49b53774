"""Golden cases: the spec'd sum and maximum of |x|."""

from __future__ import annotations

import numpy as np

from .. import reductions
from . import on, sample_f32


def _stats(be, x):
    total, peak = reductions.abs_stats(on(be, x), backend=be)
    return {"abs_sum": total, "abs_max": peak}


OPS = {"abs_stats": _stats}


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
    return [{"op": "abs_stats", "comment": c, "inputs": {"x": x}} for x, c in rows]
