"""Hypothesis strategies for vsaopt inputs: the edge cases every backend must agree on.

Float arrays mix ordinary, huge, tiny and subnormal magnitudes, exact zeros of
both signs and repeated values; shapes are 1-d to 3-d with lengths 0, 1, odd
and not multiples of 4, 5 or 32; arrays may arrive as non-contiguous views.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = [
    "lengths",
    "shapes",
    "float32_values",
    "float32_arrays",
    "trit_arrays",
    "views",
    "seeds",
    "u32",
]

F32_MAX = float(np.finfo(np.float32).max)


def lengths(max_len: int = 300) -> st.SearchStrategy[int]:
    """Array lengths biased to 0, 1, odd values and non-multiples of 4, 5, 32."""
    return st.one_of(
        st.sampled_from([0, 1, 2, 3, 5, 7, 31, 33, 63, 65, 127, 129]),
        st.integers(0, max_len),
    )


def shapes(max_dims: int = 3, max_side: int = 40) -> st.SearchStrategy[tuple[int, ...]]:
    """Shapes of 1 to ``max_dims`` dimensions, sides from 0 to ``max_side``."""
    return hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=0, max_side=max_side)


def float32_values(scale: str | None = None) -> st.SearchStrategy[float]:
    """float32 values: ordinary, huge (near the float32 max), tiny and subnormal, and signed zeros."""
    base = st.floats(width=32, allow_nan=False, allow_infinity=False, allow_subnormal=True)
    special = st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-45, -1e-45, 1.17e-38, F32_MAX, -F32_MAX, 3e38, 1e-30])
    ordinary = st.floats(-4.0, 4.0, width=32)
    return st.one_of(ordinary, base, special)


@st.composite
def float32_arrays(draw: Any, shape: Any = None, dtype: Any = np.float32, max_side: int = 40) -> np.ndarray:
    """float32 arrays (or ``dtype``) of 1-d to 3-d shapes with the edge cases above.

    Sometimes every element is drawn from a few values (ties, all zeros), sometimes
    the array is a non-contiguous view.
    """
    shp = draw(shapes(max_side=max_side)) if shape is None else shape
    pool = draw(st.one_of(st.just(None), st.lists(float32_values(), min_size=1, max_size=3)))
    elements = float32_values() if pool is None else st.sampled_from(pool)
    arr = draw(hnp.arrays(np.float32, shp, elements=elements)).astype(dtype)
    return draw(views(arr))


@st.composite
def trit_arrays(draw: Any, shape: Any = None, max_side: int = 40) -> np.ndarray:
    """int8 arrays with values in {-1, 0, +1}, possibly as non-contiguous views."""
    shp = draw(shapes(max_side=max_side)) if shape is None else shape
    arr = draw(hnp.arrays(np.int8, shp, elements=st.integers(-1, 1)))
    return draw(views(arr))


@st.composite
def views(draw: Any, arr: np.ndarray) -> np.ndarray:
    """``arr`` itself, or an array with the same values seen through a strided or reversed view."""
    how = draw(st.sampled_from(["contiguous", "strided", "reversed"]))
    if how == "contiguous" or arr.ndim == 0:
        return arr
    if how == "strided":
        spread = np.zeros(arr.shape[:-1] + (arr.shape[-1] * 2,), dtype=arr.dtype)
        spread[..., ::2] = arr
        return spread[..., ::2]
    return np.ascontiguousarray(arr[..., ::-1])[..., ::-1]


def seeds() -> st.SearchStrategy[int]:
    """Seeds over the whole key range ``[0, 2**64)``, including both ends."""
    return st.one_of(st.sampled_from([0, 1, 2**32 - 1, 2**32, 2**64 - 1]), st.integers(0, 2**64 - 1))


def u32() -> st.SearchStrategy[int]:
    """Counter words ``[0, 2**32)``, including both ends."""
    return st.one_of(st.sampled_from([0, 1, 2**31, 2**32 - 1]), st.integers(0, 2**32 - 1))


#: Sides of matmul operands: the kernels' unrolling and chunk edges, and anything up to 40.
MATMUL_SIDES = st.one_of(st.sampled_from([0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 33]), st.integers(0, 40))


@st.composite
def matmul_operands(draw: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)`` float32, ``(n, k)`` and ``(k, m)``, C-contiguous, with edge values; sometimes cancelling columns."""
    n, k, m = draw(MATMUL_SIDES), draw(MATMUL_SIDES), draw(MATMUL_SIDES)
    a = np.ascontiguousarray(draw(float32_arrays(shape=(n, k))))
    b = np.ascontiguousarray(draw(float32_arrays(shape=(k, m))))
    if k >= 2 and draw(st.booleans()):  # a[:, 1] b[1] cancels a[:, 0] b[0]: the order of the sum shows
        a[:, 1] = a[:, 0]
        b[1] = -b[0]
    return a, b
