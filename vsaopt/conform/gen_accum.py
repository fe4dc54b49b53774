"""Conform strategies of accumulation, compression and compressed history: accumulator, compressor, history."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..errors import OptimError
from .gen_common import f32_vectors, mostly, f64, int8_arrays, rarely, seeds, spread_f32, trit_arrays, u32

__all__ = ["STRATEGIES"]


def _finite(x: np.ndarray) -> np.ndarray:
    """``x`` with non-finite values replaced by 1 (kernels are defined on finite inputs)."""
    return np.where(np.isfinite(x), x, np.float32(1.0)).astype(np.float32)


def _scales() -> st.SearchStrategy[float]:
    return st.sampled_from([1.0, 0.01, 100.0, 1e-30, 1e30, 0.5, 3.0, 1e-40])


# --- accumulator -------------------------------------------------------------------------------------------------------------


@st.composite
def _accumulate(draw: Any) -> dict:
    shapes = draw(st.lists(hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=7), min_size=1, max_size=2))
    count_bits = draw(mostly([8, 4], [2, 16], 15))
    kind = draw(st.sampled_from(["mixed"] * 4 + ["same_sign"] * 3 + ["bad"]))
    n_steps = draw(st.integers(1, 40 if kind == "same_sign" else 10))
    if kind == "same_sign":  # counts grow by one per step: the headroom rule halves them at measured maxima
        base = [np.abs(_finite(draw(f32_vectors(length=int(np.prod(s)))))).reshape(s) for s in shapes]
        steps = [[b * np.float32(draw(st.sampled_from([1.0, 1.0, 0.5, 2.0]))) for b in base] for _ in range(n_steps)]
    else:
        steps = [[_finite(draw(f32_vectors(length=int(np.prod(s)))) * np.float32(draw(_scales()))).reshape(s) for s in shapes]
                 for _ in range(n_steps)]
    if kind == "bad":
        fault = draw(st.sampled_from(["nan", "shape", "int", "huge"]))
        last = steps[-1][0].reshape(-1)
        if fault == "nan" and last.size:
            last[0] = np.nan
        elif fault == "shape":
            steps[-1][0] = np.zeros(last.size + 1, np.float32)
        elif fault == "int":
            steps[-1][0] = steps[-1][0].astype(np.int32)
        elif last.size:
            last[0] = np.float32(3e38)
    return {"steps": steps, "stochastic": draw(st.booleans()), "threshold": f64(draw(st.sampled_from([0.5, 0.25, 0.0, 1.0]))),
            "seed": draw(seeds()), "count_bits": count_bits}


@st.composite
def _accum_kernel(draw: Any) -> dict:
    op = draw(st.sampled_from(["accum_add_stochastic", "accum_add_threshold", "accum_rescale", "accum_mean", "count_abs_max",
                               "abs_sum_above", "nibble_pack", "nibble_unpack"]))
    n = draw(st.integers(0, 40))
    counts = draw(int8_arrays((n,)))
    g = _finite(draw(f32_vectors(length=n)))
    draw_args = {"seed": draw(seeds()), "stream": draw(u32()), "step": draw(u32()), "tensor": draw(u32())}
    if op == "accum_add_stochastic":
        inv = draw(st.sampled_from([1.0, 0.25, 0.5, 2.0**-20, 1e-38]))
        args = {"counts": counts, "g": g, "inv_scale": f64(inv), **draw_args}
    elif op in ("accum_add_threshold", "abs_sum_above"):
        t = draw(st.sampled_from([0.5, 0.0, 0.75, 1e-45]))
        if n and draw(st.booleans()):  # values exactly on the threshold, both signs
            g[draw(st.lists(st.integers(0, n - 1), max_size=n))] = np.float32(t) * np.float32(draw(st.sampled_from([1, -1])))
        if op == "abs_sum_above" and draw(st.booleans()):
            g = spread_f32(draw(st.sampled_from([8192, 8193, 9000, 20000])), draw(st.integers(0, 2**32 - 1)))
        args = {"counts": counts, "g": g, "threshold": f64(t)} if op == "accum_add_threshold" else {"x": g, "threshold": f64(t)}
    elif op == "accum_rescale":
        args = {"counts": counts, "shift": draw(st.sampled_from([1, 2, 5, 7, 8, 31, 32])), **draw_args}
    elif op == "accum_mean":
        args = {"counts": counts, "unit": f64(draw(st.sampled_from([0.375, 1.0, 2.0**-20, 3.0, 1e-30]))),
                "divisor": f64(draw(st.sampled_from([1.0, 3.0, 7.0, 0.5])))}
    elif op == "count_abs_max":
        args = {"counts": counts}
    elif op == "nibble_pack":
        args = {"counts": draw(hnp.arrays(np.int8, (n,), elements=st.integers(-8, 7)))}
    else:
        packed = draw(hnp.arrays(np.uint8, (n,)))
        args = {"packed": packed, "n": draw(st.integers(max(0, 2 * n - 1), 2 * n))}
    return {"op": op, "args": args}


# --- compressor ----------------------------------------------------------------------------------------------------------------


@st.composite
def _project(draw: Any) -> dict:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=40))
    x = _finite(draw(f32_vectors(length=int(np.prod(shape))))).reshape(shape)
    if draw(rarely(10)) and x.size:
        x.reshape(-1)[0] = np.nan
    d = draw(st.one_of(st.sampled_from([1, 2, 8, 50, 64, 1000]), st.integers(0, 300)))
    gain = draw(st.sampled_from(["unbiased", "unit"] * 4 + ["none"]))
    return {"x": x, "d": d, "seed": draw(seeds()), "gain": gain, "step": draw(u32()), "tensor_index": draw(u32())}


@st.composite
def _project_long(draw: Any) -> dict:
    n = draw(st.sampled_from([65535, 65536, 65537, 65600, 65536 + 448, 98304 + 3]))
    return {"n": n, "data_seed": draw(st.integers(0, 2**32 - 1)), "d": draw(st.integers(1, 64)), "seed": draw(seeds())}


@st.composite
def _compress_config(draw: Any) -> dict:
    mode = draw(st.sampled_from(["bundled", "per_tensor"]))
    return {"dimension": draw(st.sampled_from([1, 16, 64, 100] if mode == "per_tensor" else [16, 64, 100])),
            "ratio": f64(draw(st.sampled_from([0.1, 0.3, 0.5, 1.0]))), "use_ternary": draw(st.booleans()),
            "seed": draw(seeds()), "mode": mode, "error_feedback": draw(rarely(15)) or (mode == "per_tensor" and draw(st.booleans()))}


@st.composite
def _grads(draw: Any) -> list:
    shapes = draw(st.lists(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=9), min_size=1, max_size=3))
    return [_finite(draw(f32_vectors(length=int(np.prod(s)))) * np.float32(draw(_scales()))).reshape(s) for s in shapes]


@st.composite
def _compress(draw: Any) -> dict:
    grads = draw(_grads())
    if draw(rarely()):
        grads[0].reshape(-1)[0] = np.float32(draw(st.sampled_from([np.inf, np.nan])))
    return {"grads": grads, **draw(_compress_config()), "calls": draw(st.integers(1, 3))}


@st.composite
def _decompress(draw: Any) -> dict:
    from ..backend import get_backend
    from ..compressor import VSAGradientCompressor
    from ..config import VSAConfig

    grads = draw(_grads())
    cfg = draw(_compress_config())
    shapes = [(f"p{i}", tuple(g.shape)) for i, g in enumerate(grads)]
    vsa = VSAConfig(dimension=cfg["dimension"], compression_ratio=float(cfg["ratio"]), use_ternary=cfg["use_ternary"],
                    seed=cfg["seed"])
    feedback = cfg["error_feedback"] and cfg["mode"] == "per_tensor"  # the message comes from a valid compressor
    comp = VSAGradientCompressor(shapes, vsa, get_backend("numpy"), mode=cfg["mode"], error_feedback=feedback)
    try:
        message = comp.compress({n: g for (n, _), g in zip(shapes, grads)}).to_dict()
    except OptimError:  # gradients whose reconstruction leaves the float32 range: no message to decompress
        reject()
    fault = draw(st.sampled_from(["none", "none", "seed", "shapes", "mode", "payload"]))
    if fault == "seed":
        cfg["seed"] = (cfg["seed"] + 1) % 2**64
    elif fault == "shapes":
        shapes = shapes[::-1] if len(shapes) > 1 else [(shapes[0][0], shapes[0][1] + (1,))]
    elif fault == "mode":
        cfg["mode"] = "per_tensor" if cfg["mode"] == "bundled" else "bundled"
    elif fault == "payload" and message["payload"] and message["payload"][0]["hex"]:
        text = message["payload"][0]["hex"]
        message["payload"][0]["hex"] = "ff" + text[2:]
    return {"param_shapes": [[name, list(dims)] for name, dims in shapes], **cfg, "message": message}


@st.composite
def _compressor_kernel(draw: Any) -> dict:
    op = draw(st.sampled_from(["random_signs", "fwht", "srht_gather", "srht_scatter"]))
    draw_args = {"seed": draw(seeds()), "stream": draw(u32()), "step": draw(u32()), "tensor": draw(u32())}
    if op == "random_signs":
        n = draw(st.integers(0, 100))
        x = draw(trit_arrays((n,))) if draw(st.booleans()) else draw(f32_vectors(length=n))
        return {"op": op, "args": {"x": x, **draw_args}}
    if op == "fwht":
        block = 2 ** draw(st.integers(0, 7))
        x = _finite(draw(f32_vectors(length=block * draw(st.integers(0, 3)))))
        scale = draw(st.sampled_from([1.0, 0.125, float(np.float32(1 / np.sqrt(8))), 0.5, 2.0**-64]))
        return {"op": op, "args": {"x": x, "block": block, "scale": f64(scale)}}
    nprime = draw(st.integers(0, 200))
    m = draw(st.integers(0, nprime))
    d = draw(st.integers(m, m + 20))
    a = {"a_lo": f64(float(np.float32(np.sqrt(3)))), "a_hi": f64(2.0)}
    if op == "srht_gather":
        return {"op": op, "args": {"z": _finite(draw(f32_vectors(length=nprime))), "d": d, "m": m, **a, **draw_args}}
    return {"op": op, "args": {"y": _finite(draw(f32_vectors(length=d))), "nprime": nprime, "m": m, **a, **draw_args}}


# --- history -------------------------------------------------------------------------------------------------------------------


@st.composite
def _bf16_encode(draw: Any) -> dict:
    if draw(st.booleans()):  # round-to-even ties, just above/below them, NaN-free bit patterns over the exponent range
        high = draw(hnp.arrays(np.uint32, (draw(st.integers(0, 20)),), elements=st.integers(0, 0xFFFF)))
        low = draw(st.sampled_from([0x8000, 0x7FFF, 0x8001, 0x0000, 0xFFFF]))
        bits = (high << np.uint32(16)) | np.uint32(low)
        x = bits.view(np.float32)
        return {"x": np.where(np.isfinite(x), x, np.float32(3.4028235e38)).astype(np.float32)}
    return {"x": _finite(draw(f32_vectors()))}


@st.composite
def _ternary_encode(draw: Any) -> dict:
    x = _finite(draw(f32_vectors()))
    if draw(st.booleans()) and x.size:
        x[0] = np.float32(draw(st.sampled_from([1.0, 2.0, 0.75, 2.0**-126, 2.0**-149, 2.0**127, 3e38])))
    step = draw(st.one_of(st.sampled_from([0, 5, 2**32 - 1, 2**32 + 5, 2**64 - 1]), st.integers(0, 2**64 - 1)))
    return {"x": x, "step": step}


@st.composite
def _ternary_decode(draw: Any) -> dict:
    n = draw(st.integers(0, 30))
    packed = draw(hnp.arrays(np.uint8, (-(-n // 4),), elements=st.sampled_from([0, 1, 2, 0b01100100, 0b10011001, 3, 255])))
    scale = draw(st.sampled_from([0.5, 1.0, 0.0, 2.0**-126, 3e38]))
    return {"packed": packed, "scale": f64(scale), "n": n}


@st.composite
def _predictor_run(draw: Any) -> dict:
    steps, n = draw(st.integers(1, 10)), draw(st.integers(1, 12))
    drift = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    noise = _finite(draw(f32_vectors(length=steps * n))).reshape(steps, n)
    noise = np.clip(noise, -4.0, 4.0).astype(np.float32) if draw(st.booleans()) else noise
    return {"kind": draw(st.sampled_from(["momentum", "deterministic"] * 5 + ["linear"])),
            "compression": draw(st.sampled_from(["none", "bfloat16", "ternary"] * 3 + ["fp8"])),
            "grads": (drift + noise).astype(np.float32)}


STRATEGIES = {
    "accumulator.accumulate": _accumulate(),
    "accumulator.kernel": _accum_kernel(),
    "compressor.project": _project(),
    "compressor.project_long": _project_long(),
    "compressor.compress": _compress(),
    "compressor.decompress": _decompress(),
    "compressor.kernel": _compressor_kernel(),
    "history.bf16_encode": _bf16_encode(),
    "history.bf16_decode": st.fixed_dictionaries({"bits": hnp.arrays(np.uint16, st.integers(0, 30))}),
    "history.ternary_encode": _ternary_encode(),
    "history.ternary_decode": _ternary_decode(),
    "history.predictor_run": _predictor_run(),
}
