"""Golden cases of ternary quantization: threshold and stochastic ternarization."""

from __future__ import annotations

import numpy as np

from .. import ternary
from . import on, sample_f32


def _det(be, x, threshold, ratio):
    trits, scale = ternary.quantize_deterministic(on(be, x), threshold, ratio, backend=be)
    return {"trits": trits, "scale": scale}


def _sto(be, x, seed, stream, step, tensor_index):
    trits, scale = ternary.quantize_stochastic(on(be, x), seed, stream, step, tensor_index, backend=be)
    return {"trits": trits, "scale": scale}


OPS = {"quantize_deterministic": _det, "quantize_stochastic": _sto}


def cases() -> list[dict]:
    """The ternary family's cases."""
    f32 = np.float32
    out = []

    def det(x, comment, threshold=None, ratio=0.5):
        out.append({"op": "quantize_deterministic", "comment": comment,
                    "inputs": {"x": x, "threshold": threshold, "ratio": ratio}})

    def sto(x, comment, seed=5, stream=0, step=0, tensor_index=0):
        out.append({"op": "quantize_stochastic", "comment": comment,
                    "inputs": {"x": x, "seed": seed, "stream": stream, "step": step, "tensor_index": tensor_index}})

    det(np.array([0.9, -0.1, -2.0, 0.3], f32), "ratio 0.5 of mean |x| = 0.825: threshold 0.4125")
    det(np.array([0.5, -0.5, 0.25, 0.0], f32), "ties at the absolute threshold stay 0", threshold=0.5)
    det(np.zeros(7, f32), "all zeros: scale 0, trits 0")
    det(np.zeros(0, f32), "empty input")
    det(sample_f32(1000, seed=21), "1000 uniform values, default ratio")
    det(sample_f32(1000, seed=21), "ratio 0: every nonzero value keeps its sign", ratio=0.0)
    det(sample_f32(64, seed=22, scale=1e-40), "subnormal magnitudes", ratio=1.0)
    det(sample_f32(24, seed=23).reshape(2, 3, 4), "3-d input keeps its shape")
    det(np.array([1e38, 3e38, -3e38], f32), "huge values: ratio times mean overflows to Inf, all trits 0", ratio=1e30)
    det(np.array([1.0, np.inf], f32), "Inf is rejected")
    det(np.array([1, 2, 3], np.int64), "integer input is rejected")
    det(np.array([1.0], f32), "negative threshold is rejected", threshold=-1.0)
    sto(np.array([0.5, -1.0, 0.0, 0.25, -0.75], f32), "five values, one partial Philox block")
    sto(sample_f32(1001, seed=24), "1001 values", seed=2**64 - 1, stream=3, step=17, tensor_index=2)
    sto(sample_f32(1001, seed=24), "same values, next step", seed=2**64 - 1, stream=3, step=18, tensor_index=2)
    sto(np.zeros(9, f32), "all zeros: scale 0, no draw")
    sto(np.full(8, -0.0, f32), "negative zeros")
    sto(np.array([np.nan, 1.0], f32), "NaN is rejected")
    sto(np.array([1.0], f32), "seed beyond 64 bits is rejected", seed=2**64)
    return out
