"""Golden cases of compressed predictor history: the bfloat16 and ternary row codecs, and predictors holding them."""

from __future__ import annotations

import numpy as np

from ..backend import to_host
from ..errors import ConfigError
from ..phase import DeterministicPredictor, GradientPredictor
from ..phase.configs import DeterministicPredictionConfig, PredictionConfig
from ..phase.history_codec import bf16_decode, bf16_encode, ternary_decode, ternary_encode
from . import on, sample_f32


def _bf16_encode(be, x):
    return {"bits": bf16_encode(on(be, x), be)}


def _bf16_decode(be, bits):
    return {"x": bf16_decode(on(be, bits), be)}


def _ternary_encode(be, x, step):
    packed, scale = ternary_encode(on(be, x), step, be)
    return {"packed": packed, "scale": scale}


def _ternary_decode(be, packed, scale, n):
    return {"x": ternary_decode(on(be, packed), np.float32(scale), n, be)}


def _predictor_run(be, kind, compression, grads):
    """Record each gradient (every third one after the first prediction as a correction), predict after each."""
    n = grads.shape[1]
    if kind == "momentum":
        p = GradientPredictor([("g", (n,))], PredictionConfig(history_size=2, momentum=0.5, history_compression=compression), backend=be)
    elif kind == "deterministic":
        cfg = DeterministicPredictionConfig(warmup_steps=3, history_window=1, prediction_horizon=2, history_compression=compression)
        p = DeterministicPredictor([("g", (n,))], cfg, backend=be)
    else:
        raise ConfigError(f"kind: expected 'momentum' or 'deterministic', got {kind!r}")
    predictions = []
    for t, g in enumerate(grads):
        flat = on(be, np.ascontiguousarray(g))
        if kind == "momentum":
            p.record_flat(flat, correct=p.has_prediction and t % 3 == 2)
        else:
            p.record_flat(flat, is_correction=p.is_ready() and t % 3 == 2)
        if p.peek_flat() is not None:
            predictions.append(to_host(p.predict_gradient()["g"]))
    _, arrays = p.export_state()
    scales = arrays.get("history_scales", np.zeros(0, np.float32))
    return {"predictions": predictions, "history": arrays["history"], "history_scales": scales, "state_bytes": p.get_stats().state_bytes}


OPS = {
    "bf16_encode": _bf16_encode,
    "bf16_decode": _bf16_decode,
    "ternary_encode": _ternary_encode,
    "ternary_decode": _ternary_decode,
    "predictor_run": _predictor_run,
}


def cases() -> list[dict]:
    """The history family's cases."""
    f32, u16, u8 = np.float32, np.uint16, np.uint8
    bits = np.array([0x3F808000, 0x3F818000, 0x3F808001, 0xBF808000, 0x7F7F8000, 0xFF7FFFFF, 0x00008000, 0x80000000], np.uint32)
    out = [
        {"op": "bf16_encode", "comment": "ties to even (down, up), above a tie, negative tie, overflow saturates, subnormal tie, -0",
         "inputs": {"x": bits.view(f32)}},
        {"op": "bf16_encode", "comment": "1000 uniform values", "inputs": {"x": sample_f32(1000, seed=31)}},
        {"op": "bf16_encode", "comment": "subnormal magnitudes", "inputs": {"x": sample_f32(64, seed=32, scale=1e-39)}},
        {"op": "bf16_encode", "comment": "empty row", "inputs": {"x": np.zeros(0, f32)}},
        {"op": "bf16_decode", "comment": "1.0, -2.0, largest finite, smallest subnormal, -0",
         "inputs": {"bits": np.array([0x3F80, 0xC000, 0x7F7F, 0x0001, 0x8000], u16)}},
        {"op": "ternary_encode", "comment": "max 0.75: scale 1; +-1 kept with probability 1",
         "inputs": {"x": np.array([0.75, -0.5, 0.0, 0.25, -0.125], f32), "step": 0}},
        {"op": "ternary_encode", "comment": "1001 values at step 5", "inputs": {"x": sample_f32(1001, seed=33), "step": 5}},
        {"op": "ternary_encode", "comment": "same values at step 6: other draws", "inputs": {"x": sample_f32(1001, seed=33), "step": 6}},
        {"op": "ternary_encode", "comment": "step 2**32 + 5: the high word is the tensor index",
         "inputs": {"x": sample_f32(1001, seed=33), "step": 2**32 + 5}},
        {"op": "ternary_encode", "comment": "max is a power of two: scale equals it",
         "inputs": {"x": np.array([2.0, -1.0, 0.5, 1.5], f32), "step": 1}},
        {"op": "ternary_encode", "comment": "all zeros: scale 0, no draw", "inputs": {"x": np.zeros(9, f32), "step": 3}},
        {"op": "ternary_encode", "comment": "tiny magnitudes: the scale exponent stops at -126",
         "inputs": {"x": sample_f32(16, seed=34, scale=1e-40), "step": 2}},
        {"op": "ternary_encode", "comment": "max above 2**127: the scale is the max itself",
         "inputs": {"x": np.array([3e38, -1e38, 2e38], f32), "step": 4}},
        {"op": "ternary_decode", "comment": "codes 1, 2, 0, 1 then 2 at scale 0.5",
         "inputs": {"packed": np.array([73, 2], u8), "scale": 0.5, "n": 5}},
    ]
    drift = np.linspace(0.0, 1.0, 9, dtype=f32)[:, None]
    grads = (drift + sample_f32(9 * 37, seed=35, scale=0.2).reshape(9, 37)).astype(f32)
    for kind in ("momentum", "deterministic"):
        for comp in ("none", "bfloat16", "ternary"):
            out.append({"op": "predictor_run", "comment": f"{kind} predictor, history {comp}: 9 drifting gradients of 37 elements",
                        "inputs": {"kind": kind, "compression": comp, "grads": grads}})
    nan = np.array([0x7FC00000, 0x7F800001, 0x7FFFFFFF, 0xFFC00000, 0xFF800001, 0x7FBFFFFF, 0x3F800000], np.uint32)
    out.append({"op": "bf16_encode", "comment": "NaN inputs (a residual may hold them): payloads that would round to Inf "
                "or carry into the exponent, negative NaNs: each becomes 0x7FC0 with its sign bit", "inputs": {"x": nan.view(f32)}})
    for step, data_seed in ((7, 36), (2**32 + 9, 37)):
        out.append({"op": "ternary_encode", "comment": f"step {step}: |x_i| / scale planted exactly on the uniform u_i "
                    "the row draws (x_0 = 1 sets scale 1): u < |x| / scale is strict, so those trits are 0",
                    "inputs": {"x": _on_uniform_row(64, step, data_seed), "step": step}})
    ties = np.array([0x40008000, 0x40018000, 0xC0018000, 0x00018000, 0x7F008000, 0xBE7F8000, 0x3F7F8000], np.uint32)
    nans = np.array([0xFFFFFFFF, 0xFF808000, 0x7FFF8000, 0xFFC00001], np.uint32)
    out.append({"op": "bf16_encode", "comment": "more exact ties (even below and above, negative, subnormal, a carry into "
                "the exponent) and negative NaNs whose payload would round: ties to even, NaN 0xFFC0",
                "inputs": {"x": np.concatenate([ties, nans]).view(f32)}})
    out.append({"op": "ternary_encode", "comment": "maximum 2**-130 (subnormal): the scale exponent clamps at -126 "
                "(scale 2**-126)", "inputs": {"x": (sample_f32(16, seed=38) * f32(2.0**-129)).astype(f32), "step": 11}})
    out.append({"op": "ternary_encode", "comment": "maximum exactly 2**127 and one above it: the scale is the maximum "
                "(no power of two above it exists in float32)",
                "inputs": {"x": np.array([2.0**127, -1.5 * 2.0**127, 1e38, -3e37], f32), "step": 12}})
    return out


def _on_uniform_row(n: int, step: int, data_seed: int) -> np.ndarray:
    """``x_0 = 1`` (scale 1) and ``|x_i| = u_i``, the row's own uniforms (signs from ``sample_f32``), for ``i >= 1``."""
    from ..backend import get_backend
    from ..phase.history_codec import HISTORY_SEED, STREAM_HISTORY

    u = get_backend("numpy").uniform_f32(n, HISTORY_SEED, STREAM_HISTORY, step & 0xFFFFFFFF, step >> 32)
    x = np.where(sample_f32(n, seed=data_seed) < 0, -u, u).astype(np.float32)
    x[0] = np.float32(1.0)
    return x
