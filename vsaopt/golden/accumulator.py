"""Golden cases of ternary accumulation (stochastic and threshold modes) and its kernels."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..accumulator import TernaryGradientAccumulator
from ..config import TernaryConfig
from . import on, sample_f32


def _num(v: Any) -> float:
    return float(np.asarray(v).reshape(-1)[0]) if not isinstance(v, (int, float)) else float(v)


def _accumulate(be, steps, stochastic, threshold, seed, count_bits=8):
    """Accumulate ``steps`` (a list over micro-batches of lists over tensors); the shapes of step 0 declare the parameters.

    A step that is the string ``"reset"`` calls ``reset()`` instead (spec v7).
    """
    shapes = [(f"p{i}", tuple(np.shape(a))) for i, a in enumerate(steps[0])]
    cfg = TernaryConfig(ternary_threshold=_num(threshold), use_stochastic_rounding=bool(stochastic), seed=int(seed))
    acc = TernaryGradientAccumulator(shapes, cfg, backend=be, count_bits=int(count_bits))
    for step in steps:
        if isinstance(step, str) and step == "reset":
            acc.reset()
            continue
        acc.accumulate({f"p{i}": on(be, a) for i, a in enumerate(step)})
    arrays = acc.state_dict()["arrays"]
    means = acc.get_accumulated()
    return {
        "means": [means[n] for n, _ in shapes],
        "counts": [arrays[f"counts.{i}"] for i in range(len(shapes))],
        "exponents": [int(e) for e in arrays["exp"]],
        "count": acc.count,
        "nbytes": acc.nbytes,
    }


def _kernel(be, op, args):
    """One accumulation kernel on host inputs (``args`` as the protocol names them)."""
    a = dict(args)
    for k, v in a.items():
        if isinstance(v, np.ndarray) and v.dtype == np.float64 and v.size == 1:
            a[k] = float(v.reshape(-1)[0])
        elif isinstance(v, np.ndarray):
            a[k] = on(be, np.ascontiguousarray(v))
    if "counts" in a:
        a["counts"] = a["counts"].copy()
    out = getattr(be, op)(**a)
    if op == "abs_sum_above":
        return {"sum": np.float64(out[0]), "count": int(out[1])}
    return {"out": out}


OPS = {"accumulate": _accumulate, "kernel": _kernel}


def _headroom_cases(acc: Any) -> None:
    """Cases of the headroom rule: counts are halved only when their measured maximum plus one would pass ``C``."""
    f32 = np.float32

    def ladder(first: list[float]) -> list[list[np.ndarray]]:
        # element 0 follows ``first`` (p = 1: its count moves by exactly 1 per nonzero step); element 1 is 0.25 (p = 1/4)
        return [[np.array([v, 0.25], f32)] for v in first]

    acc(ladder([1.0] * 6 + [0.0] + [1.0]),
        "4-bit: the bound reaches 7 at step 7 while the count is 6; step 8 measures 6 = C - 1: not halved (E = 0)", count_bits=4)
    acc(ladder([1.0] * 6 + [0.0] + [1.0] * 2),
        "4-bit: step 9 measures exactly 7 = C: halved before the add (E = 1)", count_bits=4)
    acc(ladder([1.0] * 6 + [-1.0] + [1.0] * 3),
        "4-bit: step 8 measures 5 (the bound was 7): bound set to 5, not halved; step 10 measures 7: halved (E = 1)", count_bits=4)
    same = np.array([1.0, 0.75, 0.5, 0.9375, 0.625], f32)
    acc([[same]] * 300,
        "8-bit, 300 steps of the same positive values: halved only when a measured count reaches 127 (E = 2, not 4)")
    acc([[np.ones(3, f32)]] * 100,
        "4-bit, 100 steps of 1.0: the exponent grows with the sum (E = 5; the worst-case rule reached 31)", count_bits=4)
    acc([[np.ones(4, f32), np.array([1.0, -1.0, 0.5], f32) * f32(1 - 2 * (k % 2))] for k in range(20)],
        "4-bit, two tensors in one call: the same-sign one is halved, the alternating one is measured and is not",
        count_bits=4)
    acc([[same]] * 300, "threshold mode, 8-bit, 300 same-sign steps: h grows only when a measured count reaches 127 (h = 2)",
        stochastic=False, threshold=0.25)
    acc([[same]] * 40, "threshold mode, 4-bit, 40 same-sign steps: halved at measured maxima of 7, then trits added stochastically",
        stochastic=False, threshold=0.25, count_bits=4)


def _count_abs_max_cases(ker: Any) -> None:
    """``count_abs_max``: exact integer maxima, ``|-128| = 128``, empty input, a maximum in the last element."""
    ker("count_abs_max", "max |c| of mixed counts", counts=np.array([-127, 3, 99, -100, 0], np.int8))
    ker("count_abs_max", "|-128| = 128 (widened before the absolute value)", counts=np.array([5, -128, 127], np.int8))
    ker("count_abs_max", "all zeros", counts=np.zeros(7, np.int8))
    ker("count_abs_max", "no counts: 0", counts=np.zeros(0, np.int8))
    tail = np.zeros(8193, np.int8)
    tail[8192] = -100
    tail[:8192:3] = 99
    ker("count_abs_max", "8193 counts, the maximum only in the last one", counts=tail)


def cases() -> list[dict]:
    """The accumulator family's cases."""
    f32 = np.float32
    out = []

    def acc(steps, comment, stochastic=True, threshold=0.5, seed=7, count_bits=8):
        out.append({"op": "accumulate", "comment": comment,
                    "inputs": {"steps": steps, "stochastic": stochastic, "threshold": threshold, "seed": seed,
                               "count_bits": count_bits}})

    def ker(op, comment, **args):
        out.append({"op": "kernel", "comment": comment, "inputs": {"op": op, "args": args}})

    x = sample_f32(37, seed=31, scale=2.0)
    acc([[x], [x], [x]], "stochastic, one tensor of 37, three equal steps")
    acc([[x * f32(0.01)], [x], [x * f32(0.01)], [x * f32(0.5)]], "scales 100x apart: the counts are rescaled when the large step arrives")
    acc([[x * f32(100)], [x], [x * f32(0.01)]], "decreasing scales: later steps quantized at the running scale")
    acc([[sample_f32(5, seed=k)] for k in range(130)],
        "130 steps of 5 values of both signs: the worst-case bound reaches 127 at step 128, the measured counts are far "
        "below it: no halving (E stays -1)")
    acc([[x * f32(1e-30)], [x * f32(1e30)]], "scale jump of about 2**200: rescaled in chunks of 32 bits")
    acc([[sample_f32(9, seed=3, scale=1e-40)], [sample_f32(9, seed=4, scale=1e-40)]], "subnormal gradients")
    acc([[x.reshape(37, 1), np.zeros((2, 3), f32), np.zeros(0, f32)], [x.reshape(37, 1), sample_f32(6, 5).reshape(2, 3), np.zeros(0, f32)]],
        "three tensors: a zero gradient (no draw) and an empty tensor")
    acc([[x], [x * f32(0.1)], [x * f32(3)]], "threshold mode (biased), ratio 0.5 of mean |g|", stochastic=False)
    acc([[sample_f32(6, seed=k)] for k in range(129)],
        "threshold mode, 129 steps of both signs: the worst-case bound passes 127, the measured counts do not: no halving (h = 0)",
        stochastic=False, threshold=0.25)
    acc([[x], [x]], "seed 2**64 - 1", seed=2**64 - 1)
    acc([[x * f32(0.01)], [x], [x * f32(0.01)], [x * f32(0.5)]] * 3,
        "4-bit counts: 12 steps of mixed scales; the worst-case bound passes 7, the measured maximum does not: no halving",
        count_bits=4)
    acc([[sample_f32(6, seed=k)] for k in range(20)], "4-bit counts, threshold mode, odd length", stochastic=False, count_bits=4)
    acc([[np.array([1.0, np.nan], f32)]], "NaN is rejected")
    acc([[x], [x[:36]]], "a step with another shape is rejected")
    acc([[np.array([1, 2], np.int32)]], "integer gradients are rejected")
    acc([[np.array([3e38, -1.0], f32)]], "scale 2**128 leaves the float32 range: rejected")

    c = np.array([-127, -100, -65, -1, 0, 1, 2, 3, 64, 99, 127, -3, 5], np.int8)
    g = sample_f32(13, seed=41, scale=4.0)
    ker("accum_add_stochastic", "stochastic trits added to counts", counts=c, g=g, inv_scale=0.25, seed=3, stream=0x41435155, step=4, tensor=1)
    ker("accum_add_threshold", "threshold trits added to counts", counts=c, g=g, threshold=0.75)
    for s in (1, 5, 31, 32):
        ker("accum_rescale", f"counts rescaled by 2**-{s}", counts=c, shift=s, seed=3, stream=0x41435200, step=4, tensor=1)
    ker("accum_mean", "mean of counts", counts=c, unit=0.375, divisor=3.0)
    ker("abs_sum_above", "masked |x| sum", x=sample_f32(9000, seed=42), threshold=0.2)
    ker("nibble_pack", "counts -8..7 packed two a byte, odd length", counts=np.array([-8, -7, -1, 0, 1, 6, 7], np.int8))
    ker("nibble_unpack", "every byte value", packed=np.arange(256, dtype=np.uint8), n=511)
    edge = np.array([127, -128, 127, -128, 0, 5], np.int8)
    ones = np.array([1.0, -1.0, -1.0, 1.0, 0.0, -0.0], f32)
    ker("accum_add_stochastic", "int8 counts wrap: 127 + 1 = -128, -128 - 1 = 127 (p = 1 always keeps)",
        counts=edge, g=ones, inv_scale=1.0, seed=0, stream=0x41435155, step=0, tensor=0)
    ker("accum_add_threshold", "int8 counts wrap at the threshold kernel too", counts=edge, g=ones, threshold=0.5)
    # version 7 (appended, so every earlier case keeps its tcId): the measured halving rule, count_abs_max, planted cases
    _headroom_cases(acc)
    _count_abs_max_cases(ker)
    _v7_cases(acc, ker)
    return out


# --- spec v7: values planted on the drawn words, ties, the reset -------------------------------------------------

_ACQU = 0x41435155


def _words(n: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
    """The 32-bit Philox words the kernels draw for ``n`` elements (as uint64)."""
    from ..backend import get_backend

    return get_backend("numpy").philox_bits(n, seed, stream, step, tensor).astype(np.uint64)


def _on_word_gradients(n: int, seed: int, step: int) -> np.ndarray:
    """Gradients with ``p = |g| = w * 2**-32`` exactly at the element's word where ``w`` fits 24 bits, else (below
    2**31) half a 24-bit step above the word's top 24 bits, or (above) those top bits; alternating signs."""
    w = _words(n, seed, _ACQU, step, 0)
    exact = (w & np.uint64(0xFF)) == 0
    top = (w >> np.uint64(8)) << np.uint64(8)
    low = w < np.uint64(2**31)  # p has 25 significant bits below 2**-1: half a 24-bit step is a float32 there
    planted = np.where(exact, w, np.where(low, top + np.uint64(0x80), top)).astype(np.float64) * 2.0**-32
    g = planted.astype(np.float32)
    if not np.array_equal(g.astype(np.float64), planted):
        raise ValueError("planted probabilities are not float32 values")
    return np.where(np.arange(n) % 2 == 0, g, -g).astype(np.float32)


def _between_products(n: int, seed: int, step: int, inv: np.float32) -> np.ndarray:
    """Gradients whose float64 product ``|g| * inv`` and its float32 rounding lie on different sides of the element's word."""
    w = _words(n, seed, _ACQU, step, 0).astype(np.float64) * 2.0**-32
    g = (w / float(inv)).astype(np.float32)
    for _ in range(8):
        p64 = g.astype(np.float64) * float(inv)
        p32 = (g * inv).astype(np.float64)
        split = (p64 > w) != (p32 > w)
        g = np.where(split, g, np.nextafter(g, np.float32(np.inf)))
    return g


def _v7_cases(acc: Any, ker: Any) -> None:
    """Spec v7 accumulator cases (appended after the v6 ones, whose tcIds they keep)."""
    f32 = np.float32
    n = 64
    ker("accum_add_stochastic", "p = |g| exactly at each element's word w * 2**-32 (w with its low 8 bits 0): not kept "
        "(w < p * 2**32 is strict); elsewhere p half a 24-bit step above the word's top 24 bits: kept only by the "
        "32-bit comparison", counts=np.zeros(n, np.int8), g=_on_word_gradients(n, 11, 0), inv_scale=1.0, seed=11,
        stream=_ACQU, step=0, tensor=0)
    g = _on_word_gradients(4096, 12, 3)
    ker("accum_add_stochastic", "4096 elements, p = |g| planted at the words of seed 12, step 3 (about 16 words with "
        "24 significant bits: equality not kept)", counts=np.zeros(4096, np.int8), g=g, inv_scale=1.0, seed=12,
        stream=_ACQU, step=3, tensor=0)
    inv = f32(0.3)
    ker("accum_add_stochastic", "inv_scale f32(0.3), not a power of two: p = f32(|g| * inv) (one float32 multiply); "
        "each word lies between that product and the float64 one", counts=np.zeros(n, np.int8),
        g=_between_products(n, 13, 1, inv), inv_scale=float(inv), seed=13, stream=_ACQU, step=1, tensor=0)
    tie = np.array([0.75, -0.75, 0.7499999, -0.75000006, 1.0, 0.0], f32)
    ker("accum_add_threshold", "g = +-t exactly: no trit (> t and < -t are strict)", counts=np.zeros(6, np.int8), g=tie,
        threshold=0.75)
    rng = np.random.default_rng(77)
    ker("accum_mean", "unit f32 0.3 and divisor 7: (c * unit) / count, two float64 roundings in that order",
        counts=rng.integers(-127, 128, 64).astype(np.int8), unit=float(f32(0.3)), divisor=7.0)
    ker("accum_mean", "unit 2**-20 * 3 and divisor 3 * 11: the product is exact, the quotient rounds once",
        counts=np.arange(-127, 128, 2).astype(np.int8), unit=3 * 2.0**-20, divisor=33.0)
    mid = 7 * (2**24 + 5) / 3 * 2.0**-24  # 3 * unit / 7 = 1 + 5 * 2**-24: a float32 midpoint
    ker("accum_mean", "(c * unit) / count exactly on float32 midpoints (c = +-3 * 2**k, unit 7 (2**24 + 5) / 3 * 2**-24, "
        "count 7): one rounding to float32, ties to even",
        counts=np.array([3, -3, 6, -6, 12, -12, 24, 48, 96, -96, 0, 1], np.int8), unit=mid, divisor=7.0)
    ties = np.array([0.5, 1.5, -0.5, -1.5, 0.5, -1.5, 1.5, -0.5], f32)  # mean |g| = 1, t = f32(0.5) * 1 = 0.5
    acc([[ties], [ties * f32(2)], [ties]], "threshold mode, |g| = t exactly (mean |g| 1, t = 0.5): ties are neither trits "
        "nor in the scale's sum (alpha = 1.5)", stochastic=False, threshold=0.5)
    acc([[ties], [ties * f32(3)], [ties * f32(0.25)]], "threshold mode, three scales: the unit is (sigma / count) * 2**h in "
        "float64 (sigma / count not rounded to float32)", stochastic=False, threshold=0.5)
    x = sample_f32(37, seed=61, scale=2.0)
    acc([[x * f32(8)], [x * f32(8)], "reset", [x], [x]], "reset: counts, exponents and bounds cleared; the next step "
        "sets E from its own maximum (a kept exponent would quantize at the old, larger scale)")
    acc([[x], "reset", [x * f32(0.001)]], "reset then a smaller gradient: E from the new maximum, not the old one")
    acc([[x], "reset"], "a reset as the last step: count 0, means zero")
    _planted_rescale_cases(acc, ker)
    _midpoint_mean_cases(acc, ker)
    _bound_ceiling_cases(acc)
    ker("count_abs_max", "only -128: the maximum is 128 (|c| widened before the absolute value)",
        counts=np.full(5, -128, np.int8))
    inv = np.float32(0.7)
    ker("accum_add_stochastic", "inv_scale f32(0.7): p = f32(|g| * inv); each word lies between that product and the "
        "float64 one", counts=np.zeros(64, np.int8), g=_between_products(64, 14, 2, inv), inv_scale=float(inv), seed=14,
        stream=_ACQU, step=2, tensor=0)


_ACR = 0x41435200
#: ``(shift s, seed, element, count c)``: the word the rescale kernel draws for the element (stream ACR, step 4,
#: tensor 1) is exactly ``(c mod 2**s) << (32 - s)`` (found by a search over seeds with the reference Philox).
_RESCALE_TIES = ((8, 745682, 9, 93), (16, 682160, 7, 86))
#: ``(seed, element)``: at call 126 the first rescale chunk (stream ACR + 0, step 126, tensor 0) draws a word below
#: 126 (or at least 2**32 - 126) for the element, so a count of +126 (-126) survives a 32-bit halving as +1 (-1).
_CHUNK_SURVIVORS = ((15636, 4), (30838, 5), (1961491, 2), (251594, 5))


def _planted_rescale_cases(acc: Any, ker: Any) -> None:
    """Rescale words planted exactly on the carry threshold, and counts that survive a 32-bit rescale chunk."""
    f32 = np.float32
    for shift, seed, j, c in _RESCALE_TIES:
        counts = np.array([(5 * k - 40) for k in range(16)], np.int8)
        counts[j] = c
        ker("accum_rescale", f"shift {shift}: element {j}'s word equals (c mod 2**s) << (32 - s) exactly: no carry "
            "(w < threshold is strict)", counts=counts, shift=shift, seed=seed, stream=_ACR, step=4, tensor=1)
    for seed, j in _CHUNK_SURVIVORS:
        w = int(_words(16, seed, _ACR, 126, 0)[j])
        signs = np.where(np.arange(16) % 3 == 0, f32(-1.0), f32(1.0))
        signs[j] = f32(1.0) if w < 2**31 else f32(-1.0)
        big = np.zeros(16, f32)
        big[(j + 8) % 16] = f32(2.0**33)
        acc([[signs]] * 126 + [[big]], f"126 steps of p = 1 (counts +-126), then a scale jump of 2**33: a rescale of "
            f"33 bits in chunks of 32 (stream ACR + 0) and 1 (stream ACR + 1); element {j}'s first-chunk word lets its "
            "count survive the 32-bit chunk, so the second chunk's stream decides it", seed=seed)


#: Step scales ``(s1, s2, s3)`` (float32, exact float64 sum sigma) of threshold-mode cases: ``u = sigma / 3`` is one
#: float64 ulp above a float32 midpoint, where ``(3 * u) / 3`` and ``3 * (u / 3)`` round to different float32
#: values, and ``c * u / 3`` differs from ``c * f32(u) / 3`` for ``c = 1, 2`` (found by search).
_MIDPOINT_SCALES = ((float.fromhex("0x1.3139eep+2"), 1.5 * 2.0**-23, 2.0**-50),
                    (float.fromhex("0x1.7d73c2p+2"), 1.5 * 2.0**-23, 2.0**-50))


def _midpoint_mean_cases(acc: Any, ker: Any) -> None:
    """Threshold-mode units one float64 ulp off a float32 midpoint: the mean's rounding order shows."""
    f32 = np.float32
    s1, s2, s3 = _MIDPOINT_SCALES[0]
    unit = (s1 + s2 + s3) / 3
    ker("accum_mean", f"unit {unit.hex()} (one float64 ulp above a float32 midpoint) and divisor 3: (c * unit) / "
        "count, not c * (unit / count)", counts=np.arange(-127, 128, 1).astype(np.int8), unit=unit, divisor=3.0)
    pattern = np.array([1, 1, -1, 1, -1, -1, 1, 1], f32)
    flip = np.array([1, -1, 1, 1, -1, 1, -1, 1], f32)
    for s1, s2, s3 in _MIDPOINT_SCALES:
        acc([[pattern * f32(s1)], [pattern * f32(s2)], [pattern * flip * f32(s3)]],
            f"threshold mode, step scales {s1.hex()}, 1.5 * 2**-23, 2**-50 (their float64 sum exact): the unit "
            "sigma / count stays float64 (not rounded to float32) and the mean is (c * unit) / count (counts 3 show "
            "the order, counts 1 and 2 the unit's precision)", stochastic=False, threshold=0.5)


def _bound_ceiling_cases(acc: Any) -> None:
    """After a rescale the count bound is ceil(b / 2**s): a floored bound lets a count pass the 4-bit maximum."""
    f32 = np.float32
    for seed, sign in ((7, 1.0), (9, -1.0)):
        v = np.array([1, 1, 1, 1, -1, 1, 1, 1], f32) * f32(sign)
        acc([[v]] * 5 + [[v * f32(2)]] * 5, "4-bit, counts 5 then a scale doubling: the bound becomes ceil(5 / 2) = 3 "
            "(a count rounds up to 3); four more adds of p = 1 reach the bound 7 and the next call measures and "
            "halves (a floored bound 2 would add an eighth and wrap)", seed=seed, count_bits=4)

