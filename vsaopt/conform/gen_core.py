"""Conform strategies of the foundation families: rng, reductions, ternary, pack."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .gen_common import f32_arrays, f32_vectors, f64, rarely, seeds, small_lengths, spread_f32, trit_arrays, u32, uniforms

__all__ = ["STRATEGIES"]

_BLOCK = 8192  # elements per block of the spec'd sum


# --- rng ---------------------------------------------------------------------------------------------------------------------


@st.composite
def _philox(draw: Any) -> dict:
    batch = draw(st.integers(0, 6))
    counter = draw(hnp.arrays(np.uint32, (batch, 4), elements=u32()))
    key = draw(st.one_of(hnp.arrays(np.uint32, (2,), elements=u32()), hnp.arrays(np.uint32, (batch, 2), elements=u32())))
    rounds = draw(st.one_of(st.sampled_from([1, 2, 7, 10, 13]), st.integers(1, 20)))
    fault = draw(st.sampled_from(["none"] * 6 + ["dtype", "words", "key_words", "rounds", "broadcast"]))
    if fault == "dtype":
        counter = counter.astype(draw(st.sampled_from([np.int64, np.uint64, np.int32, np.uint8])))
    elif fault == "words":
        counter = counter[:, : draw(st.sampled_from([0, 3]))].copy()
    elif fault == "key_words":
        key = np.zeros(draw(st.sampled_from([(1,), (3,), (batch, 1)])), np.uint32)
    elif fault == "rounds":
        rounds = draw(st.sampled_from([0, -1, 2**16 + 1, 2**64 - 1]))
    elif fault == "broadcast":
        key = np.zeros((batch + 1, 2), np.uint32)
    return {"counter": counter, "key": key, "rounds": rounds}


@st.composite
def _draw_args(draw: Any) -> dict:
    args = {"n": draw(small_lengths(90)), "seed": draw(seeds()), "stream": draw(u32()), "step": draw(u32()),
            "tensor_index": draw(u32())}
    if draw(rarely(8)):  # an error path: a value just outside its range, or of another type
        name = draw(st.sampled_from(sorted(args)))
        bad = {"seed": [-1, 2**64], "n": [-1, 2**34 + 1], "stream": [-1, 2**32], "step": [-1, 2**32], "tensor_index": [-1, 2**32]}
        args[name] = draw(st.sampled_from(bad[name] + [True, "1"]))
    return args


# --- reductions ----------------------------------------------------------------------------------------------------------------


@st.composite
def _ladder(draw: Any) -> np.ndarray:
    """Three to six blocks of zeros with one exact value each: a ``2**53`` ladder whose block fold order decides the sum.

    With a large first block sum and small later ones, the spec's pairwise fold keeps
    the small sums together (``(2**53 + 0) + (1 + 1) = 2**53 + 2``); a sequential fold loses them.
    """
    blocks = draw(st.sampled_from([4, 5, 3, 6]))
    big = draw(st.sampled_from([2.0**53, 2.0**54, 2.0**24, 1e30]))
    small = draw(st.lists(st.sampled_from([1.0, 3.0, 0.0, 1e-42]), min_size=blocks - 1, max_size=blocks - 1))
    values = [big, *small]
    if draw(rarely(4)):  # the large sum elsewhere: a carried odd block, cancellation across the fold
        values = draw(st.permutations(values))
    x = np.zeros(_BLOCK * blocks + draw(st.integers(0, 40)), np.float32)
    x[: _BLOCK * blocks : _BLOCK] = np.array(values, np.float32)
    return x


@st.composite
def _order_sensitive(draw: Any) -> np.ndarray:
    """Lengths across block and lane boundaries with huge, subnormal and cancelling magnitudes in chosen lanes."""
    n = draw(st.sampled_from([31, 32, 33, 8191, 8192, 8193, 2 * _BLOCK + 37]))
    x = spread_f32(n, draw(st.integers(0, 2**32 - 1)), draw(st.sampled_from([1.0, 1e3])))
    stride = draw(st.integers(17, 101))
    x[::stride] *= np.float32(draw(st.sampled_from([1e30, 1e20, 1e-30])))
    return x


@st.composite
def _abs_stats(draw: Any) -> dict:
    kind = draw(st.sampled_from(["edge", "ladder"] * 3 + ["order", "bad"]))
    if kind == "ladder":
        return {"x": draw(_ladder())}
    if kind == "order":
        return {"x": draw(_order_sensitive())}
    if kind == "bad":
        x = draw(f32_vectors(max_len=9))
        bad = draw(st.sampled_from(["nan", "inf", "int", "f64", "f16"]))
        if bad in ("nan", "inf"):
            return {"x": np.append(x, np.float32(np.nan if bad == "nan" else -np.inf))}
        return {"x": x.astype({"int": np.int32, "f64": np.float64, "f16": np.float16}[bad])}
    return {"x": draw(f32_arrays())}


@st.composite
def _gather_stats(draw: Any) -> dict:
    long = draw(rarely(5))
    x = draw(_order_sensitive()) if long else draw(f32_vectors(max_len=80))
    n = x.shape[0]
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
    if long:
        cuts = sorted(set(cuts) | {min(n, _BLOCK - 1), min(n, _BLOCK)})
    pieces = np.split(x, cuts)
    prev = draw(st.one_of(st.none(), f32_vectors(length=n) if not long else st.just(spread_f32(n, 7, 1e3))))
    which = draw(st.sampled_from(["none", "pred", "linear"]))
    pred = linear = None
    if which == "pred":
        pred = draw(f32_vectors(length=n)) if not long else spread_f32(n, 8)
    elif which == "linear":
        linear = {k: (draw(f32_vectors(length=n)) if not long else spread_f32(n, i)) for i, k in
                  enumerate(("baseline", "velocity", "residual"))}
        linear["dt"] = f64(draw(st.sampled_from([0.0, 1.0, 2.0, 3.0, 7.0])))
        linear["w"] = f64(draw(st.sampled_from([1.0, 0.5, 0.8100000023841858, 0.1, float(np.float32(0.95) ** 3)])))
    return {"pieces": pieces, "prev": prev, "pred": pred, "linear": linear}


# --- ternary -------------------------------------------------------------------------------------------------------------------


def _planted_ratio(x: np.ndarray, j: int) -> float:
    """A ratio whose threshold ``f32(ratio) * f32(mean |x|)`` lands on ``|x_j|`` (the spec's rounding: mean f32 of the f64 sum)."""
    mean = np.float32(np.abs(x.astype(np.float64)).sum() / x.size)
    return float(np.float32(abs(x[j]) / mean)) if mean else 0.5


@st.composite
def _quantize_deterministic(draw: Any) -> dict:
    x = draw(f32_arrays(max_dims=2))
    threshold, ratio = None, draw(st.sampled_from([0.5, 0.0, 1.0, 0.25, 1 / 3, 2.0]))
    how = draw(st.sampled_from(["ratio", "ratio", "abs_tie", "planted_ratio", "nudged_ratio", "bad"]))
    finite = x.size and np.isfinite(x).all()
    if how == "abs_tie" and finite:
        threshold = float(abs(x.reshape(-1)[draw(st.integers(0, x.size - 1))]))
    elif how in ("planted_ratio", "nudged_ratio") and finite:
        flat = x.reshape(-1)
        ratio = _planted_ratio(flat, draw(st.integers(0, flat.size - 1)))
        if how == "nudged_ratio":
            ratio *= 1.0 + draw(st.sampled_from([2.0**-26, -(2.0**-26), 2.0**-30]))
    elif how == "bad":
        fault = draw(st.sampled_from(["threshold", "ratio", "int", "nan"]))
        if fault == "threshold":
            threshold = draw(st.sampled_from([-1.0, -1e-45, float("nan"), float("inf")]))
        elif fault == "ratio":
            ratio = draw(st.sampled_from([-0.5, float("nan"), float("inf")]))
        elif fault == "int":
            x = x.astype(np.int64)
        else:
            x = np.append(x.reshape(-1), np.float32(np.nan))
    return {"x": x, "threshold": None if threshold is None else f64(threshold), "ratio": f64(ratio)}


@st.composite
def _planted_uniforms(draw: Any, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
    """Values with ``|x_i| / max`` exactly the uniform ``u_i`` the draw makes (a tie), or one float32 step from it."""
    n = draw(st.integers(2, 40))
    scale = np.float32(draw(st.sampled_from([1.0, 3.0, 0.75, 2.0**-130, 1e30])))
    u = uniforms(n, seed, stream, step, tensor)
    nudge = draw(st.sampled_from(["tie", "up", "down"]))
    if nudge != "tie":
        u = np.nextafter(u, np.float32(1.0 if nudge == "up" else 0.0))
    x = (u * scale).astype(np.float32)
    x[draw(st.lists(st.integers(0, n - 1), max_size=n))] *= np.float32(-1)
    x[0] = scale
    return x


@st.composite
def _quantize_stochastic(draw: Any) -> dict:
    args = {"seed": draw(seeds()), "stream": draw(u32()), "step": draw(u32()), "tensor_index": draw(u32())}
    how = draw(st.sampled_from(["edge", "edge", "tie", "bad"]))
    if how == "tie":
        x = draw(_planted_uniforms(args["seed"], args["stream"], args["step"], args["tensor_index"]))
    else:
        x = draw(f32_arrays(max_dims=2))
    if how == "bad":
        fault = draw(st.sampled_from(["seed", "inf", "int"]))
        if fault == "seed":
            args["seed"] = draw(st.sampled_from([-1, 2**64]))
        elif fault == "inf":
            x = np.append(x.reshape(-1), np.float32(np.inf))
        else:
            x = x.astype(np.int16)
    return {"x": x, **args}


# --- pack --------------------------------------------------------------------------------------------------------------------


@st.composite
def _pack(draw: Any) -> dict:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=23))
    trits = draw(trit_arrays(shape))
    encoding = draw(st.sampled_from(["2bit", "base3", "2bit", "base3", "3bit", "BASE3", ""]))
    if draw(rarely(7)) and trits.size:
        trits = trits.copy()
        trits.reshape(-1)[draw(st.integers(0, trits.size - 1))] = draw(st.sampled_from([2, -2, 127, -128, 3]))
    elif draw(rarely(10)):
        trits = trits.astype(draw(st.sampled_from([np.int16, np.float32, np.uint8])))
    return {"trits": trits, "encoding": encoding}


@st.composite
def _unpack(draw: Any) -> dict:
    from .. import ternary

    encoding = draw(st.sampled_from(["2bit", "base3", "2bit", "base3", "3bit"]))
    n = draw(small_lengths(60))
    per = 5 if encoding == "base3" else 4
    trits = draw(trit_arrays((n,)))
    packed = ternary.pack(trits, "base3" if encoding == "base3" else "2bit", backend="numpy").copy()
    fault = draw(st.sampled_from(["none", "none", "byte", "pad", "length", "n"]))
    if fault == "byte" and packed.size:
        packed[draw(st.integers(0, packed.size - 1))] = draw(st.one_of(st.sampled_from([3, 0xFF, 242, 243, 0b11000000]),
                                                                      st.integers(0, 255)))
    elif fault == "pad" and n % per:
        digit = draw(st.sampled_from([1, 2]))  # a nonzero code in the first pad position (stays a valid byte)
        packed[-1] += np.uint8(digit * 3 ** (n % per) if encoding == "base3" else digit << (2 * (n % per)))
    elif fault == "length":
        packed = np.append(packed, np.uint8(0)) if draw(st.booleans()) or not packed.size else packed[:-1]
    elif fault == "n":
        n = draw(st.sampled_from([-1, n + per, max(0, n - per)]))
    return {"packed": packed, "n": n, "encoding": encoding}


STRATEGIES = {
    "rng.philox4x32": _philox(),
    "rng.random_bits": _draw_args(),
    "rng.uniform": _draw_args(),
    "reductions.abs_stats": _abs_stats(),
    "reductions.gather_stats": _gather_stats(),
    "ternary.quantize_deterministic": _quantize_deterministic(),
    "ternary.quantize_stochastic": _quantize_stochastic(),
    "pack.pack": _pack(),
    "pack.unpack": _unpack(),
}
