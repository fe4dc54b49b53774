"""Conform strategies of the hyperdimensional algebra: the trit model (vsa) and the MAP model (map)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..rng import Stream
from .gen_common import f32_vectors, f64, int8_arrays, rarely, seeds, trit_arrays, uniforms

__all__ = ["STRATEGIES"]


def _shape(draw: Any, max_dims: int = 2, max_side: int = 13) -> tuple[int, ...]:
    return draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=0, max_side=max_side))


def _pair_shapes(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Operand shapes of a similarity: ``(..., d)`` against ``(..., d)``, 1-d or 2-d; sometimes a mismatch."""
    d = draw(st.integers(0, 40))
    a = (d,) if draw(st.booleans()) else (draw(st.integers(0, 5)), d)
    b = (d,) if draw(st.booleans()) else (draw(st.integers(0, 5)), d)
    fault = draw(st.sampled_from(["none"] * 8 + ["last", "ndim"]))
    if fault == "last":
        b = b[:-1] + (d + 1,)
    elif fault == "ndim":
        a = (2,) + a
    return a, b


def _spoil_trits(draw: Any, a: np.ndarray) -> np.ndarray:
    """Sometimes a value outside {-1, 0, 1} or another dtype (the error paths)."""
    fault = draw(st.sampled_from(["none"] * 10 + ["value", "dtype"]))
    if fault == "value" and a.size:
        a = a.copy()
        a.reshape(-1)[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([2, -2, 127, -128]))
    elif fault == "dtype":
        a = a.astype(draw(st.sampled_from([np.float32, np.float64, np.int16, np.uint8])))
    return a


# --- vsa (trits) -----------------------------------------------------------------------------------------------------------------


@st.composite
def _trit_pair(draw: Any) -> dict:
    shape = _shape(draw)
    a, b = draw(trit_arrays(shape)), draw(trit_arrays(shape))
    if draw(rarely(10)):
        b = draw(trit_arrays(shape[:-1] + (shape[-1] + 1,)))
    return {"a": _spoil_trits(draw, a), "b": _spoil_trits(draw, b)}


@st.composite
def _trit_similarity(draw: Any) -> dict:
    sa, sb = _pair_shapes(draw)
    return {"a": _spoil_trits(draw, draw(trit_arrays(sa))), "b": _spoil_trits(draw, draw(trit_arrays(sb)))}


@st.composite
def _trit_bundle(draw: Any) -> dict:
    k = draw(st.one_of(st.sampled_from([0, 1, 2, 4, 6]), st.integers(0, 9)))
    rest = _shape(draw, max_dims=2, max_side=9)
    if draw(st.booleans()):  # ties: an even count of vectors over a few patterns
        k = max(2, k + k % 2)
        half = draw(trit_arrays((k // 2, *rest)))
        vectors = np.concatenate([half, -half]) if draw(st.booleans()) else np.concatenate([half, draw(trit_arrays((k // 2, *rest)))])
    else:
        vectors = draw(trit_arrays((k, *rest)))
    return {"vectors": _spoil_trits(draw, vectors)}


def _shifts() -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from([0, 1, -1, 2**31, -(2**31) - 1, 2**32 + 3, -(2**40), 2**63 - 1, -(2**63)]),
                     st.integers(-100, 100), st.integers(-(2**63), 2**63 - 1), st.sampled_from([True, 1.5]))


@st.composite
def _trit_permute(draw: Any) -> dict:
    return {"x": _spoil_trits(draw, draw(trit_arrays(_shape(draw)))), "shifts": draw(_shifts())}


@st.composite
def _trit_random(draw: Any) -> dict:
    n, dim, seed = draw(st.integers(0, 4)), draw(st.integers(0, 30)), draw(seeds())
    how = draw(st.sampled_from(["plain", "plain", "planted", "bad"]))
    sparsity = draw(st.sampled_from([1 / 3, 0.0, 1.0, 0.5, 0.9, float(np.float32(1 / 3))]))
    if how == "planted" and n * dim:
        u = uniforms(n * dim, seed, int(Stream.VSA_RANDOM), 0, 0)[draw(st.integers(0, n * dim - 1))]
        step = draw(st.sampled_from([0.0, 1.0, -1.0]))
        sparsity = float(np.nextafter(u, np.float32(step)) if step else u)  # exactly a drawn uniform, or one step off
        sparsity = sparsity if draw(st.booleans()) else sparsity * (1 + 2.0**-30)  # not a float32 value: rounded first
    elif how == "bad":
        choice = draw(st.sampled_from(["n", "dim", "seed", "sparsity", "nan"]))
        if choice in ("n", "dim"):
            return {"n": -1 if choice == "n" else n, "dim": -1 if choice == "dim" else dim, "seed": seed, "sparsity": f64(sparsity)}
        if choice == "seed":
            seed = draw(st.sampled_from([-1, 2**64]))
        else:
            sparsity = draw(st.sampled_from([-1e-9, 1.5, float("nan")])) if choice == "sparsity" else float("inf")
    return {"n": n, "dim": dim, "seed": seed, "sparsity": f64(sparsity)}


# --- map ---------------------------------------------------------------------------------------------------------------------


@st.composite
def _map_array(draw: Any, shape: tuple[int, ...], dtype: Any = None) -> np.ndarray:
    """A MAP operand: float32 edge values, or int8 over the whole range; sometimes float64, int16 or NaN (errors)."""
    kind = dtype or draw(st.sampled_from(["f32"] * 4 + ["i8"] * 3 + ["f64", "i16", "nan"]))
    n = int(np.prod(shape))
    if kind in ("i8", "i16"):
        a = draw(int8_arrays(shape))
        return a.astype(np.int16) if kind == "i16" else a
    a = draw(f32_vectors(length=n)).reshape(shape)
    if kind == "f64":
        return a.astype(np.float64)
    if kind == "nan" and n:
        a = a.copy()
        a.reshape(-1)[draw(st.integers(0, n - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return a


@st.composite
def _map_pair(draw: Any) -> dict:
    shape = _shape(draw)
    kind = draw(st.sampled_from(["f32", "f32", "i8", "i8", "mixed", "mixed", "other"]))
    a = draw(_map_array(shape, None if kind == "other" else ("i8" if kind == "i8" else "f32")))
    b = draw(_map_array(shape[:-1] + (shape[-1] + 1,) if draw(rarely()) else shape,
                        None if kind == "other" else ("f32" if kind == "f32" else "i8")))
    return {"a": a, "b": b}


@st.composite
def _map_similarity(draw: Any) -> dict:
    sa, sb = _pair_shapes(draw)
    kind = draw(st.sampled_from(["f32", "f32", "i8", "other"]))
    dtype = None if kind == "other" else kind
    return {"a": draw(_map_array(sa, dtype)), "b": draw(_map_array(sb, dtype))}


@st.composite
def _map_bundle(draw: Any) -> dict:
    k = draw(st.integers(0, 6))
    rest = _shape(draw, max_dims=2, max_side=7)
    kind = draw(st.sampled_from(["f32", "i8", "order", "other"]))
    if kind == "order":  # the row order of float32 sums decides: (1e8 + 1) - 1e8
        big = np.float32(draw(st.sampled_from([1e8, 16777216.0, 3e38, 2.0**-149])))
        vectors = np.zeros((3, *rest), np.float32)
        vectors[0], vectors[1], vectors[2] = big, np.float32(1.0), -big
        return {"vectors": vectors}
    return {"vectors": draw(_map_array((k, *rest), None if kind == "other" else kind))}


@st.composite
def _map_permute(draw: Any) -> dict:
    return {"x": draw(_map_array(_shape(draw))), "shifts": draw(_shifts())}


@st.composite
def _map_hard_quantize(draw: Any) -> dict:
    shape = _shape(draw)
    if draw(st.booleans()):  # signed zeros and the smallest magnitudes
        return {"x": draw(hnp.arrays(np.float32, shape, elements=st.sampled_from([0.0, -0.0, 1e-45, -1e-45, 1.0, -1.0])))}
    return {"x": draw(_map_array(shape))}


STRATEGIES = {
    "vsa.bind": _trit_pair(),
    "vsa.unbind": _trit_pair(),
    "vsa.bundle": _trit_bundle(),
    "vsa.permute": _trit_permute(),
    "vsa.dot_similarity": _trit_similarity(),
    "vsa.cosine_similarity": _trit_similarity(),
    "vsa.hamming_similarity": _trit_similarity(),
    "vsa.random": _trit_random(),
    "map.bind": _map_pair(),
    "map.unbind": _map_pair(),
    "map.bundle": _map_bundle(),
    "map.permute": _map_permute(),
    "map.dot_similarity": _map_similarity(),
    "map.cosine_similarity": _map_similarity(),
    "map.hamming_similarity": _map_similarity(),
    "map.hard_quantize": _map_hard_quantize(),
}
