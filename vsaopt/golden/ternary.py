"""Golden cases of ternary quantization: threshold and stochastic ternarization."""

from __future__ import annotations

from typing import Any

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
    _planted_cases(det, sto)
    return out


def _planted_mean(seed: int, j: int, nudge: float = 0.0) -> tuple[np.ndarray, float]:
    """Nine values and a ratio whose threshold ``f32(ratio) * f32(mean |x|)`` is exactly ``|x_j|`` (times ``1 + nudge`` unrounded)."""
    x = sample_f32(9, seed)
    mean = np.float32(np.abs(x.astype(np.float64)).sum() / 9)
    if nudge:
        return x, float(abs(x[j])) / float(mean) * (1.0 + nudge)
    return x, float(np.float32(abs(x[j]) / mean))


def _planted_uniforms(seed: int, scale: float, up: bool) -> np.ndarray:
    """64 values with max ``scale`` (element 0) and ``|x_i| / scale`` exactly the uniform ``u_i`` the seed draws (or one ulp above)."""
    from ..backend import get_backend

    u = get_backend("numpy").uniform_f32(64, seed, 0, 0, 0)
    if up:
        u = np.nextafter(u, np.float32(1))
    x = (u * np.float32(scale)).astype(np.float32)
    if not up:
        x[1::2] *= np.float32(-1)
    x[0] = np.float32(scale)
    return x


def _planted_cases(det: Any, sto: Any) -> None:
    """Cases planted on the rules' boundaries (version 7): each lands a value exactly where a porting bug flips a trit."""
    f32 = np.float32
    for seed, j in ((71, 5), (61, 3), (64, 0)):
        x, ratio = _planted_mean(seed, j)
        det(x, f"planted: the threshold f32(ratio) * f32(mean) equals |x[{j}]| exactly; the mean is f32(f64 sum / n), "
               "the product float32, and a tie stays 0", ratio=ratio)
    for seed, j in ((74, 1), (107, 3)):
        x, ratio = _planted_mean(seed, j, 2.0**-26)
        det(x, f"planted: ratio not a float32 value; f32(ratio) * mean lands on |x[{j}]| (ratio rounded to float32 first)",
            ratio=ratio)
    sto(_planted_uniforms(5, 3.0, up=False), "planted: |x_i| / s equals the uniform u_i exactly (s = 3): u == p keeps "
        "nothing; p is a float32 division", seed=5)
    sto(_planted_uniforms(5, 3.0, up=True), "planted: |x_i| / s one float32 step above u_i (s = 3): every such trit is "
        "kept; p is the float32 quotient, not the product by 1/s", seed=5)
    sub = np.array([1e-40, -3e-41, 5e-42, 0.0], f32)
    det(sub, "subnormal maximum: the scale is the subnormal itself (no flush to zero); ratio 0 keeps every sign", ratio=0.0)
    sto(sub, "subnormal maximum: the scale is the subnormal itself, the ratios are exact", seed=5)
    det(np.array([0.5, -0.5, 0.0], f32), "threshold 0 is valid: every nonzero value keeps its sign", threshold=0.0)
