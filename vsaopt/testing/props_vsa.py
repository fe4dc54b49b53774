"""Identity properties of the VSA algebra: trit algebra (:mod:`vsaopt.vsa.trit`) and MAP model (:mod:`vsaopt.vsa.map`).

Each check runs a Hypothesis test asserting that the public operation returns
the same bytes on ``candidate`` as on ``reference``, or raises the same typed
error on both.  The strategies below add VSA-shaped inputs to
:mod:`vsaopt.testing.strategies`: operand pairs of one shape, stacks of
vectors to bundle (with ties), query/memory pairs ``(D,)|(N, D)`` against
``(D,)|(M, D)``, and long rows that cross the 8192-element blocks of the spec's
summation order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .. import vsa
from ..backend import to_device
from ..errors import OptimError
from ..vsa import map as hd
from . import assert_bit_equal
from .strategies import float32_arrays, lengths, seeds, shapes, trit_arrays, views

__all__ = [
    "PROPERTIES",
    "trit_pairs",
    "trit_stacks",
    "query_shapes",
    "map_arrays",
    "map_pairs",
    "map_queries",
    "cancelling_queries",
    "long_float_queries",
]

#: Float magnitudes of bundled MAP vectors stay below this, so no sum of up to 8 overflows to Inf.
BUNDLE_MAX = float(np.float32(1e30))


def _outcome(call: Callable[[Any], Any], be: Any) -> Any:
    try:
        return call(be)
    except OptimError as exc:
        return type(exc).__name__


def _same(candidate: Any, reference: Any, what: str, call: Callable[[Any], Any]) -> None:
    """``call(backend)`` gives the same bytes (or raises the same typed error) on both backends."""
    want = _outcome(call, reference)
    got = _outcome(call, candidate)
    if isinstance(want, str) or isinstance(got, str):
        assert got == want, f"{what}: {got!r} on {candidate.name} vs {want!r} on {reference.name}"
    else:
        assert_bit_equal(got, to_device(candidate, want), what)


# --- strategies -----------------------------------------------------------------


@st.composite
def trit_pairs(draw: Any, max_side: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Two trit arrays of one shape (1-d to 3-d), each possibly a non-contiguous view."""
    shp = draw(shapes(max_side=max_side))
    return draw(trit_arrays(shape=shp)), draw(trit_arrays(shape=shp))


@st.composite
def trit_stacks(draw: Any) -> np.ndarray:
    """``(k, d, ...)`` trit stacks, ``1 <= k <= 9``; even ``k`` and few distinct rows make ties common."""
    k = draw(st.integers(1, 9))
    rest = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=30))
    if draw(st.booleans()):
        rows = draw(trit_arrays(shape=(draw(st.integers(1, 3)),) + rest))
        pick = draw(st.lists(st.integers(0, rows.shape[0] - 1), min_size=k, max_size=k))
        return np.stack([rows[i] for i in pick])
    return draw(trit_arrays(shape=(k,) + rest))


@st.composite
def query_shapes(draw: Any, max_d: int = 200) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shapes ``(D,)`` or ``(N, D)`` and ``(D,)`` or ``(M, D)`` with one ``D`` (``N, M`` in 0..4)."""
    d = draw(lengths(max_d))
    a = draw(st.sampled_from([(d,), (draw(st.integers(0, 4)), d)]))
    b = draw(st.sampled_from([(d,), (draw(st.integers(0, 4)), d)]))
    return a, b


def _int8_elements() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([-1, 1]), st.integers(-128, 127))


@st.composite
def map_arrays(draw: Any, shape: Any = None, family: str | None = None, bounded: bool = False) -> np.ndarray:
    """MAP inputs: finite float arrays (float32, sometimes float16/float64) or int8 arrays (often bipolar).

    ``bounded`` keeps float magnitudes at most :data:`BUNDLE_MAX`.
    """
    shp = draw(shapes()) if shape is None else shape
    fam = family or draw(st.sampled_from(["float", "int8"]))
    if fam == "int8":
        return draw(views(draw(hnp.arrays(np.int8, shp, elements=_int8_elements()))))
    if bounded:
        elems = st.one_of(st.floats(-BUNDLE_MAX, BUNDLE_MAX, width=32),
                          st.sampled_from([0.0, -0.0, 1e-45, -1e-45, 1.0, -1.0]))
        arr = draw(hnp.arrays(np.float32, shp, elements=elems))
        return draw(views(arr))
    arr = draw(float32_arrays(shape=shp))
    dtype = draw(st.sampled_from([np.float32, np.float32, np.float64, np.float16]))
    if dtype == np.float16:  # stay finite: Inf * 0 would make a NaN, whose payload the spec leaves open
        return np.clip(arr, -65504, 65504).astype(np.float16)
    return arr.astype(dtype, copy=False)


@st.composite
def map_pairs(draw: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two MAP arrays of one shape and one family."""
    shp = draw(shapes())
    fam = draw(st.sampled_from(["float", "int8"]))
    return draw(map_arrays(shape=shp, family=fam)), draw(map_arrays(shape=shp, family=fam))


@st.composite
def map_queries(draw: Any) -> tuple[np.ndarray, np.ndarray]:
    """A query/memory pair of MAP arrays (see :func:`query_shapes`) of one family."""
    sa, sb = draw(query_shapes())
    fam = draw(st.sampled_from(["float", "int8"]))
    return draw(map_arrays(shape=sa, family=fam)), draw(map_arrays(shape=sb, family=fam))


@st.composite
def cancelling_queries(draw: Any, min_d: int = 1, max_d: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``(N, D)`` / ``(M, D)`` pairs whose dot products are order-sensitive even after rounding to float32.

    Ordinary values of magnitude about 1 (over a few decades), plus pairs of
    huge products ``+B`` and ``-B`` planted at random positions: ``B`` absorbs
    whatever its lane adds between the two, so another summation order gives a
    visibly different result.
    """
    d = draw(st.integers(min_d, max_d))
    g = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def rows(count: int) -> np.ndarray:
        return (g.standard_normal((count, d)) * 10.0 ** g.integers(-3, 3, (count, d))).astype(np.float32)

    a, b = rows(draw(st.integers(1, 3))), rows(draw(st.integers(1, 3)))
    pairs = min(d // 2, draw(st.integers(0, 6)))
    if pairs:
        pos = g.choice(d, size=2 * pairs, replace=False)
        big = (10.0 ** g.uniform(8, 30, (a.shape[0], pairs))).astype(np.float32)
        a[:, pos[:pairs]], a[:, pos[pairs:]] = big, -big
        b[:, pos] = 1.0
    return a, b


def long_float_queries() -> st.SearchStrategy[tuple[np.ndarray, np.ndarray]]:
    """:func:`cancelling_queries` with rows of 8000 to 4*8192+100 elements (one to five blocks of the spec's sum)."""
    return st.one_of(
        st.sampled_from([8191, 8192, 8193, 16385, 3 * 8192 + 1, 4 * 8192 + 3]).flatmap(lambda d: cancelling_queries(d, d)),
        cancelling_queries(8000, 4 * 8192 + 100),
    )


# --- trit model -------------------------------------------------------------------


def check_bind(candidate: Any, reference: Any) -> None:
    """vsa.bind and vsa.unbind on trit arrays of every shape, into a new array and into ``out=`` (holding other bytes)."""

    @given(trit_pairs())
    def prop(pair: tuple[np.ndarray, np.ndarray]) -> None:
        a, b = pair
        for fn in (vsa.bind, vsa.unbind):
            _same(candidate, reference, f"vsa.{fn.__name__}", lambda be: fn(to_device(be, a), to_device(be, b), backend=be))
            out = to_device(candidate, np.full(a.shape, 7, np.int8))
            got = fn(to_device(candidate, a), to_device(candidate, b), out=out, backend=candidate)
            assert got is out, f"vsa.{fn.__name__}(out=) returned another array"
            assert_bit_equal(out, to_device(candidate, fn(a, b, backend=reference)), f"vsa.{fn.__name__}(out=)")

    prop()


def check_bundle(candidate: Any, reference: Any) -> None:
    """vsa.bundle (majority with ties) of 1 to 9 vectors."""

    @given(trit_stacks())
    def prop(v: np.ndarray) -> None:
        _same(candidate, reference, "vsa.bundle", lambda be: vsa.bundle(to_device(be, v), backend=be))

    prop()


def check_permute(candidate: Any, reference: Any) -> None:
    """vsa.permute by any shift, including huge and negative ones."""

    @given(trit_arrays(), st.one_of(st.integers(-50, 50), st.integers(-(2**63), 2**63 - 1)))
    def prop(x: np.ndarray, shifts: int) -> None:
        _same(candidate, reference, "vsa.permute", lambda be: vsa.permute(to_device(be, x), shifts, backend=be))

    prop()


def check_similarities(candidate: Any, reference: Any) -> None:
    """vsa.dot_similarity, cosine_similarity and hamming_similarity for every query shape."""

    @given(query_shapes().flatmap(lambda s: st.tuples(trit_arrays(shape=s[0]), trit_arrays(shape=s[1]))))
    def prop(pair: tuple[np.ndarray, np.ndarray]) -> None:
        a, b = pair
        for fn in (vsa.dot_similarity, vsa.cosine_similarity, vsa.hamming_similarity):
            _same(candidate, reference, f"vsa.{fn.__name__}", lambda be: fn(to_device(be, a), to_device(be, b), backend=be))

    prop()


def check_random(candidate: Any, reference: Any) -> None:
    """vsa.random over the whole seed range and any sparsity."""

    @given(st.integers(0, 5), lengths(200), seeds(), st.one_of(st.sampled_from([0.0, 1 / 3, 0.5, 1.0]), st.floats(0, 1)))
    def prop(n: int, dim: int, seed: int, sparsity: float) -> None:
        _same(candidate, reference, "vsa.random", lambda be: vsa.random(n, dim, seed, sparsity, backend=be))

    prop()


# --- MAP model --------------------------------------------------------------------


def check_map_elementwise(candidate: Any, reference: Any) -> None:
    """map.bind / unbind, permute and hard_quantize on float (incl. float16/64) and int8 arrays."""

    @given(map_pairs(), st.integers(-100, 100))
    def prop(pair: tuple[np.ndarray, np.ndarray], shifts: int) -> None:
        a, b = pair
        _same(candidate, reference, "map.bind", lambda be: hd.bind(to_device(be, a), to_device(be, b), backend=be))
        _same(candidate, reference, "map.unbind", lambda be: hd.unbind(to_device(be, a), to_device(be, b), backend=be))
        _same(candidate, reference, "map.permute", lambda be: hd.permute(to_device(be, a), shifts, backend=be))
        _same(candidate, reference, "map.hard_quantize", lambda be: hd.hard_quantize(to_device(be, a), backend=be))

    prop()


def check_map_bundle(candidate: Any, reference: Any) -> None:
    """map.bundle: float32 sums in row order (order-sensitive values), int8 into int32."""

    @given(st.integers(1, 8).flatmap(
        lambda k: hnp.array_shapes(min_dims=1, max_dims=2, max_side=30).flatmap(
            lambda rest: map_arrays(shape=(k,) + rest, bounded=True))))
    def prop(v: np.ndarray) -> None:
        _same(candidate, reference, "map.bundle", lambda be: hd.bundle(to_device(be, v), backend=be))

    prop()


def _check_map_similarity_pair(candidate: Any, reference: Any, a: np.ndarray, b: np.ndarray) -> None:
    for fn in (hd.dot_similarity, hd.cosine_similarity, hd.hamming_similarity):
        _same(candidate, reference, f"map.{fn.__name__}", lambda be: fn(to_device(be, a), to_device(be, b), backend=be))


def check_map_similarities(candidate: Any, reference: Any) -> None:
    """map.dot_similarity, cosine_similarity, hamming_similarity for every query shape and family."""

    @given(st.one_of(map_queries(), cancelling_queries()))
    def prop(pair: tuple[np.ndarray, np.ndarray]) -> None:
        _check_map_similarity_pair(candidate, reference, *pair)

    prop()


def check_map_similarities_long(candidate: Any, reference: Any) -> None:
    """MAP similarities of rows that span several 8192-element blocks of the spec's sum."""

    @given(long_float_queries())
    def prop(pair: tuple[np.ndarray, np.ndarray]) -> None:
        _check_map_similarity_pair(candidate, reference, *pair)

    prop()


#: Property name -> ``check(candidate, reference)``.
PROPERTIES: dict[str, Callable[[Any, Any], None]] = {
    "vsa.bind/unbind": check_bind,
    "vsa.bundle": check_bundle,
    "vsa.permute": check_permute,
    "vsa.similarities": check_similarities,
    "vsa.random": check_random,
    "map.bind/permute/hard_quantize": check_map_elementwise,
    "map.bundle": check_map_bundle,
    "map.similarities": check_map_similarities,
    "map.similarities_long": check_map_similarities_long,
}
