"""Golden cases: the matrix-free projection, its kernels, and VSA gradient compression."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..arraycodec import encode
from ..backend import get_backend
from ..compressor import VSAGradientCompressor
from ..config import VSAConfig
from ..projection import SRHTProjection
from ..wire import CompressedGradients
from . import on, sample_f32


def _num(v: Any) -> float:
    return float(np.asarray(v).reshape(-1)[0]) if not isinstance(v, (int, float)) else float(v)


def _project(be, x, d, seed, gain, step, tensor_index):
    p = SRHTProjection(int(np.size(x)), int(d), int(seed), gain=gain, tensor_index=int(tensor_index), backend=be)
    y = p.forward(on(be, x), step=int(step))
    return {"y": y, "roundtrip": p.transpose(y, step=int(step))}


def _project_long(be, n, data_seed, d, seed):
    """A long input generated from the spec's uniforms (``sample_f32(n, data_seed)``); ends of the round trip."""
    p = SRHTProjection(int(n), int(d), int(seed), backend=be)
    y = p.forward(on(be, sample_f32(int(n), int(data_seed))))
    back = p.transpose(y)
    return {"y": y, "head": back[:64], "tail": back[-64:]}


def _compress(be, grads, dimension, ratio, use_ternary, seed, mode, error_feedback, calls):
    shapes = [(f"p{i}", tuple(np.shape(a))) for i, a in enumerate(grads)]
    cfg = VSAConfig(dimension=int(dimension), compression_ratio=_num(ratio), use_ternary=bool(use_ternary), seed=int(seed))
    comp = VSAGradientCompressor(shapes, cfg, be, mode=mode, error_feedback=bool(error_feedback))
    g = {f"p{i}": on(be, a) for i, a in enumerate(grads)}
    out: dict[str, Any] = {}
    for call in range(int(calls)):
        msg = comp.compress(g)
        rec = comp.decompress(CompressedGradients.from_json(msg.to_json()))
        out = {
            "payload": list(msg.payload),
            "scales": [np.float32(t.scale) for t in msg.tensors],
            "exponents": [t.exponent for t in msg.tensors],
            "decompressed": [rec[n] for n, _ in shapes],
        }
    return out


def _message(value: Any) -> Any:
    """A decoded message object back in wire form: arrays re-encoded, float scalars as JSON numbers."""
    if isinstance(value, dict):
        return {k: _message(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_message(v) for v in value]
    if isinstance(value, np.ndarray):
        return encode(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _decompress(be, param_shapes, dimension, ratio, use_ternary, seed, mode, error_feedback, message):
    """Decompress the wire-format ``message`` with the compressor the other inputs describe."""
    shapes = [(str(name), tuple(int(d) for d in dims)) for name, dims in param_shapes]
    cfg = VSAConfig(dimension=int(dimension), compression_ratio=_num(ratio), use_ternary=bool(use_ternary), seed=int(seed))
    comp = VSAGradientCompressor(shapes, cfg, be, mode=mode, error_feedback=bool(error_feedback))
    rec = comp.decompress(CompressedGradients.from_dict(_message(message)))
    return {"decompressed": [rec[n] for n, _ in shapes]}


def _kernel(be, op, args):
    a = dict(args)
    for k, v in a.items():
        if isinstance(v, np.ndarray) and v.dtype == np.float64 and v.size == 1:
            a[k] = float(v.reshape(-1)[0])
        elif isinstance(v, np.ndarray):
            a[k] = on(be, np.ascontiguousarray(v))
    return {"out": getattr(be, op)(**a)}


OPS = {"project": _project, "project_long": _project_long, "compress": _compress, "decompress": _decompress, "kernel": _kernel}


def cases() -> list[dict]:
    """The compressor family's cases."""
    f32 = np.float32
    out = []

    def proj(x, d, comment, seed=11, gain="unbiased", step=0, tensor_index=0):
        out.append({"op": "project", "comment": comment,
                    "inputs": {"x": x, "d": d, "seed": seed, "gain": gain, "step": step, "tensor_index": tensor_index}})

    def comp(grads, comment, dimension=64, ratio=0.1, use_ternary=True, seed=42, mode="bundled", error_feedback=False, calls=1):
        out.append({"op": "compress", "comment": comment,
                    "inputs": {"grads": grads, "dimension": dimension, "ratio": ratio, "use_ternary": use_ternary,
                               "seed": seed, "mode": mode, "error_feedback": error_feedback, "calls": calls}})

    def ker(op, comment, **args):
        out.append({"op": "kernel", "comment": comment, "inputs": {"op": op, "args": args}})

    x = sample_f32(200, seed=51, scale=3.0)
    ker("random_signs", "signs of 200 float32 (bits of 7 words)", x=x, seed=5, stream=0x50524A53, step=2, tensor=3)
    ker("random_signs", "signs of int8 trits", x=np.array([1, -1, 0, 1, 1, -1, 0, 0, 1], np.int8), seed=5, stream=0x5653414B, step=0, tensor=0)
    ker("fwht", "Walsh-Hadamard of 3 blocks of 64", x=sample_f32(192, seed=52), block=64, scale=0.125)
    ker("fwht", "Walsh-Hadamard of one block of 8, odd-power scale", x=sample_f32(8, seed=53), block=8, scale=float(f32(1 / np.sqrt(8))))
    ker("srht_gather", "60 stratified samples of 200", z=x, d=70, m=60, a_lo=float(f32(np.sqrt(3))), a_hi=2.0, seed=9, stream=0x50524A50, step=1, tensor=0)
    ker("srht_scatter", "transpose of the sampling", y=sample_f32(70, seed=54), nprime=200, m=60, a_lo=float(f32(np.sqrt(3))), a_hi=2.0, seed=9, stream=0x50524A50, step=1, tensor=0)
    proj(sample_f32(5, seed=55), 8, "n 5 < d 8: an isometry, exact round trip up to rounding")
    proj(x, 50, "n 200 (padded 256) to d 50")
    proj(x, 50, "unit gain: orthogonal projection", gain="unit")
    proj(x, 50, "next step, another tensor index", step=1, tensor_index=4)
    proj(sample_f32(1000, seed=56).reshape(10, 100), 1000, "2-d input of 1000 (padded 1024) to d 1000: strata of 1 and 2")
    proj(sample_f32(1000, seed=56), 2000, "d 2000 above the padded length 1024: every coordinate kept")
    proj(np.zeros(0, f32), 4, "empty input")
    out.append({"op": "project_long", "comment": "65600 elements: one 2**16 block and one of 64",
                "inputs": {"n": 65600, "data_seed": 57, "d": 48, "seed": 3}})
    w = sample_f32(96, seed=58).reshape(8, 12)
    b = sample_f32(12, seed=59, scale=0.1)
    comp([w, b], "bundled, two tensors, ternary")
    comp([w, b], "bundled, float coordinates", use_ternary=False)
    comp([w, b], "per tensor, ternary", mode="per_tensor", dimension=1, ratio=0.3)
    comp([w, b], "per tensor, error feedback, third call", mode="per_tensor", dimension=1, ratio=0.3, error_feedback=True, calls=3)
    comp([w * f32(1e30), b * f32(1e-35)], "huge and tiny tensors: power-of-two prescale", mode="per_tensor", dimension=16)
    comp([np.zeros((3, 3), f32), b], "a zero gradient", mode="per_tensor", dimension=16)
    comp([np.array([np.inf], f32), b], "Inf is rejected")
    out.extend(_decompress_cases())
    proj(sample_f32(300, seed=60), 40, "n 300 padded to 320 (not a power of two): blocks of 256 then 64, largest first")
    proj(sample_f32(448, seed=61), 100, "n 448 = 256 + 128 + 64: three remainder blocks, largest first; strata of 4 and 5")
    out.extend(_planted_cases())
    return out


#: ``(data seed, coordinate, numerator / 2**17)`` of inputs whose projected coordinate lies exactly on the
#: larger of ``f32(0.75) * f32(mean)`` and ``f32(0.75 * mean)`` (the two differ there; found by search).
_THRESHOLD_PLANTS = ((101, 3, -83897), (117, 3, -104653), (117, 5, -53644))


def _threshold_planted(data_seed: int, k: int, numerator: int) -> np.ndarray:
    """64 multiples of 2**-17 (``x[0] = 1``, so the prescale is 1) with ``x[k]`` planted."""
    x = np.round(sample_f32(64, seed=data_seed, scale=2.0).astype(np.float64) * 2**17) / 2**17
    x[0], x[k] = 1.0, numerator / 2**17
    return x.astype(np.float32).reshape(8, 8)


def _planted_cases() -> list[dict]:
    """Boundary cases: strata bounds, the trit threshold's float32 product, exponent edges, the dimension rule."""
    f32 = np.float32
    out = []

    def comp(grads, comment, dimension=64, ratio=0.1, mode="bundled", use_ternary=True, error_feedback=False, calls=1):
        out.append({"op": "compress", "comment": comment,
                    "inputs": {"grads": grads, "dimension": dimension, "ratio": ratio, "use_ternary": use_ternary,
                               "seed": 42, "mode": mode, "error_feedback": error_feedback, "calls": calls}})

    for nprime, m in ((128, 82), (576, 111)):
        out.append({"op": "project", "comment": f"strata of {nprime} over {m}: floor(j N / m) in exact integers "
                    "(a float32 j * (N / m) floors one bound differently)",
                    "inputs": {"x": sample_f32(nprime, seed=nprime + m), "d": m, "seed": 11, "gain": "unbiased",
                               "step": 0, "tensor_index": 0}})
    for data_seed, k, numerator in _THRESHOLD_PLANTS:
        comp([_threshold_planted(data_seed, k, numerator)],
             "a coordinate exactly on the trit threshold t = f32(0.75) * f32(mean |y|), two float32 roundings "
             "(f32(0.75 * mean) in float64 is one ulp off and keeps or drops it)", dimension=1, mode="per_tensor")
    tiny = sample_f32(40, seed=70).reshape(5, 8) * f32(1e-39)
    comp([tiny, sample_f32(12, seed=71)], "subnormal gradient: exponent below -126, the prescale 2**133 is two "
         "float32 factors (one factor overflows)", dimension=16, mode="per_tensor")
    huge = sample_f32(40, seed=72).reshape(5, 8) * f32(1e38)
    huge[1, 3] = f32(3e38)
    comp([huge, sample_f32(12, seed=71)], "maximum above 2**127: exponent 128, the reconstruction's 2**128 is two "
         "float32 factors (one factor is Inf)", dimension=16, mode="per_tensor")
    comp([sample_f32(600, seed=73).reshape(30, 20), sample_f32(60, seed=74)],
         "dimension rule: f32(660) * f32(0.65) = 428.99997 floors to 428 (float64 gives 429, ceiling 429)",
         dimension=1, ratio=0.65)
    comp([sample_f32(600, seed=75).reshape(20, 30), sample_f32(72, seed=76), sample_f32(8, seed=77)],
         "dimension rule, three bundled tensors: f32(680) * f32(0.65) = 441.99997 floors to 441", dimension=1, ratio=0.65)
    comp([sample_f32(12, seed=71)], "compression_ratio above 1 is a ConfigError", ratio=1.5)
    comp([sample_f32(96, seed=58).reshape(8, 12), sample_f32(12, seed=59, scale=0.1)],
         "per tensor, float coordinates, error feedback, second call: the residual x - reconstruct(y) is carried "
         "with float coordinates", dimension=1, ratio=0.3, mode="per_tensor", use_ternary=False, error_feedback=True,
         calls=2)
    return out


def _decompress_cases() -> list[dict]:
    """Self-contained decompression cases: each names the decompressing compressor and holds the whole message."""
    ref = get_backend("numpy")
    shapes = [("w", (4, 8)), ("b", (8,))]
    g = {"w": sample_f32(32, 1).reshape(4, 8), "b": sample_f32(8, 2)}
    msg = VSAGradientCompressor(shapes, VSAConfig(dimension=64, seed=1), ref).compress(g).to_dict()
    tampered = copy.deepcopy(msg)
    tampered["payload"][0]["hex"] = "ff" * (len(tampered["payload"][0]["hex"]) // 2)
    rows = [
        ("the same compressor decompresses its own message", shapes, 1, "bundled", msg),
        ("a message of another seed is rejected", shapes, 2, "bundled", msg),
        ("a message for other shapes is rejected", [("w", (8, 4)), ("b", (8,))], 1, "bundled", msg),
        ("a bundled message given to a per-tensor compressor is rejected", shapes, 1, "per_tensor", msg),
        ("a payload with invalid 2-bit codes is rejected", shapes, 1, "bundled", tampered),
    ]
    return [
        {"op": "decompress", "comment": comment,
         "inputs": {"param_shapes": [[name, list(dims)] for name, dims in sh], "dimension": 64, "ratio": 0.1,
                    "use_ternary": True, "seed": seed, "mode": mode, "error_feedback": False, "message": m}}
        for comment, sh, seed, mode, m in rows
    ]
