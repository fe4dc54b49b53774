"""Building blocks of the conform strategies: edge-seeking values, small arrays, seeds, planted data from the spec's own draws.

Every strategy of an op draws a dict of inputs in the op's vector schema
(Python ints, strings, flags, ``None``, numpy arrays, numpy float64 scalars for
float arguments); the runner encodes it exactly as a vector case's inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..backend import get_backend
from ..testing.strategies import float32_values, seeds, u32

__all__ = ["f64", "small_lengths", "f32_vectors", "f32_arrays", "trit_vectors", "trit_arrays", "int8_arrays", "seeds", "u32",
           "draw_words", "uniforms", "rarely", "mostly", "spread_f32", "power_of_two_f32", "EDGE_F32"]

#: float32 values where ports go wrong: signed zeros, subnormal ends, the normal boundary, powers of two, the largest values.
EDGE_F32 = (0.0, -0.0, 1e-45, -1e-45, 1.1754942e-38, 1.1754944e-38, 0.5, 1.0, -1.0, 2.0, 0.75, 3.4028235e38, -3.4028235e38,
            2.0**-126, 2.0**127, 16777216.0, 16777217.0)


def f64(value: float) -> np.float64:
    """A float argument as the vector files hold it (a float64 scalar)."""
    return np.float64(value)


def small_lengths(max_len: int = 70) -> st.SearchStrategy[int]:
    """Lengths biased to 0, 1 and odd values, at most ``max_len``."""
    return st.one_of(st.sampled_from([0, 1, 2, 3, 4, 5, 7, 31, 33]), st.integers(0, max_len))


def _elements() -> st.SearchStrategy[float]:
    return st.one_of(float32_values(), st.sampled_from(EDGE_F32))


@st.composite
def f32_vectors(draw: Any, length: Any = None, max_len: int = 70) -> np.ndarray:
    """1-d float32 arrays of edge-case values; sometimes a few values repeated (ties, all zeros)."""
    n = draw(small_lengths(max_len)) if length is None else length
    pool = draw(st.one_of(st.just(None), st.lists(_elements(), min_size=1, max_size=3)))
    elements = _elements() if pool is None else st.sampled_from(pool)
    return draw(hnp.arrays(np.float32, (n,), elements=elements))


@st.composite
def f32_arrays(draw: Any, max_dims: int = 3, max_side: int = 9) -> np.ndarray:
    """float32 arrays of 1 to ``max_dims`` dimensions with edge-case values."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=0, max_side=max_side))
    flat = draw(f32_vectors(length=int(np.prod(shape))))
    return flat.reshape(shape)


def trit_vectors(length: int) -> st.SearchStrategy[np.ndarray]:
    """int8 trits of ``length``."""
    return hnp.arrays(np.int8, (length,), elements=st.integers(-1, 1))


def trit_arrays(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """int8 trits of ``shape``."""
    return hnp.arrays(np.int8, shape, elements=st.integers(-1, 1))


def int8_arrays(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """int8 arrays over the whole range (wrap-around edges included)."""
    return hnp.arrays(np.int8, shape, elements=st.one_of(st.sampled_from([-128, -127, -1, 0, 1, 126, 127]), st.integers(-128, 127)))


def draw_words(n: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
    """The spec's Philox words of elements ``0..n-1`` for these counter fields (the reference computes them)."""
    return get_backend("numpy").philox_bits(n, seed, stream, step, tensor)


def uniforms(n: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
    """The spec's float32 uniforms of elements ``0..n-1``."""
    return get_backend("numpy").uniform_f32(n, seed, stream, step, tensor)


def spread_f32(n: int, seed: int, scale: float = 1.0) -> np.ndarray:
    """Deterministic float32 data ``(u - 0.5) * scale`` from the spec's uniforms (cheap large inputs)."""
    return (uniforms(n, seed, 0, 0, 0) - np.float32(0.5)) * np.float32(scale)


def rarely(one_in: int = 10) -> st.SearchStrategy[bool]:
    """True about once in ``one_in`` draws (an error path; shrinks to False)."""
    return st.sampled_from([False] * (one_in - 1) + [True])


def mostly(valid: list, invalid: list, one_in: int = 10) -> st.SearchStrategy[Any]:
    """A value of ``valid``, or about once in ``one_in`` draws one of ``invalid``."""
    return rarely(one_in).flatmap(lambda bad: st.sampled_from(invalid if bad else valid))


def power_of_two_f32() -> st.SearchStrategy[float]:
    """Powers of two over the float32 range, subnormal ones included."""
    return st.integers(-149, 127).map(lambda e: float(np.ldexp(np.float32(1), e)))
