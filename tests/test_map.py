"""The MAP hyperdimensional model: identity across backends, arithmetic as specified, errors, golden cases."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vsaopt import golden
from vsaopt.arraycodec import encode
from vsaopt.backends.numpy import reduce as ref_reduce
from vsaopt.errors import DTypeError, NonFiniteError, ShapeError
from vsaopt.golden import map as golden_map
from vsaopt.testing import assert_bit_equal, props_vsa
from vsaopt.vsa import map as hd


bipolar = hnp.arrays(np.int8, st.tuples(st.integers(1, 4), st.integers(1, 50)), elements=st.sampled_from([-1, 1]))
finite_f32 = st.floats(-1e6, 1e6, width=32)


def test_golden_cases_agree(fast_backend, reference):
    """Every golden case gives the same encoded outputs (or the same error) on each backend."""
    cases = golden_map.cases()
    assert len(cases) >= 10
    errors = 0
    for case in cases:
        enc = {"op": case["op"], "inputs": encode(case["inputs"])}
        want = golden.run_case(golden_map, reference, enc)
        errors += "error" in want
        assert golden.run_case(golden_map, fast_backend, enc) == want, case["comment"]
    assert errors >= 5


def test_float64_kernels_identical(fast_backend, reference):
    """dot and row_sumsq kernels return the same float64 bytes: the summation order itself, before rounding to float32."""

    @given(st.one_of(props_vsa.cancelling_queries(), props_vsa.long_float_queries()))
    def prop(pair):
        a, b = (np.ascontiguousarray(x) for x in pair)
        on = fast_backend.xp.asarray
        assert_bit_equal(fast_backend.dot(on(a), on(b)), on(reference.dot(a, b)), "dot")
        assert_bit_equal(fast_backend.row_sumsq(on(a)), on(reference.row_sumsq(a)), "row_sumsq")

    prop()


def test_docstring_examples():
    result = doctest.testmod(hd, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 8


# --- bind, bundle, permute ----------------------------------------------------------


@given(bipolar.flatmap(lambda a: st.tuples(st.just(a), hnp.arrays(np.int8, a.shape, elements=st.sampled_from([-1, 1])))))
def test_bipolar_bind_is_self_inverse(pair):
    a, b = pair
    for x, y in ((a, b), (a.astype(np.float32), b.astype(np.float32))):
        bound = hd.bind(x, y, backend="numpy")
        assert bound.dtype == x.dtype
        assert_bit_equal(hd.unbind(bound, y, backend="numpy"), x)
        assert_bit_equal(hd.bind(y, x, backend="numpy"), bound)


def test_bind_dtypes(backend):
    a16 = np.array([0.5, -3.0], np.float16)
    got = hd.bind(a16, np.array([2.0, 2.0]), backend=backend)  # float16 with float64: both become float32
    assert_bit_equal(got, np.array([1.0, -6.0], np.float32))
    assert_bit_equal(hd.bind(np.array([-128, 127], np.int8), np.array([-1, 127], np.int8), backend=backend),
                     np.array([-128, 1], np.int8))  # int8 wraps modulo 2**8


@given(st.integers(1, 8).flatmap(lambda k: hnp.arrays(np.float32, (k, 17), elements=finite_f32)))
def test_float_bundle_is_row_order_float32_sum(v):
    want = v[0].copy()
    for row in v[1:]:
        want = want + row
    assert_bit_equal(hd.bundle(v, backend="numpy"), want)
    assert_bit_equal(hd.bundle(v[:1], backend="numpy"), v[0])


def test_bundle_order_is_part_of_the_result(backend):
    v = np.array([[1e8], [1.0], [-1e8]], np.float32)
    assert_bit_equal(hd.bundle(v, backend=backend), np.array([0.0], np.float32))
    assert_bit_equal(hd.bundle(v[[0, 2, 1]], backend=backend), np.array([1.0], np.float32))


def test_int8_bundle_does_not_wrap(backend):
    v = np.full((300, 3), 127, np.int8)
    v[:, 1] = -128
    assert_bit_equal(hd.bundle(v, backend=backend), np.array([38100, -38400, 38100], np.int32))


@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 30)), elements=finite_f32), st.integers(-99, 99))
def test_permute_round_trip(x, s):
    assert_bit_equal(hd.permute(hd.permute(x, s, backend="numpy"), -s, backend="numpy"), x)
    assert_bit_equal(hd.permute(x, s, backend="numpy"), np.roll(x, s, axis=-1))


# --- similarities -------------------------------------------------------------------


@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 60)), elements=finite_f32))
def test_float_similarity_sanity(a):
    sumsq = np.array([ref_reduce.spec_sum(r.astype(np.float64) ** 2) for r in a])
    cos = hd.cosine_similarity(a, a, backend="numpy")
    assert cos.dtype == np.float32 and cos.shape == (a.shape[0], a.shape[0])
    big = np.sqrt(sumsq) * np.sqrt(sumsq) >= hd.EPS  # not clamped: self-cosine is exactly 1
    assert np.all(np.diag(cos)[big] == 1.0)
    assert np.all(np.abs(cos) <= 1.0)
    assert_bit_equal(cos, cos.T.copy())
    assert_bit_equal(np.diag(hd.dot_similarity(a, a, backend="numpy")).copy(), sumsq.astype(np.float32))
    ham = hd.hamming_similarity(a, a, backend="numpy")
    assert_bit_equal(np.diag(ham).copy(), np.full(a.shape[0], a.shape[1], np.int64))


@given(bipolar)
def test_bipolar_similarity_values(a):
    d = a.shape[1]
    dots = hd.dot_similarity(a, a, backend="numpy")
    assert_bit_equal(dots, a.astype(np.int64) @ a.astype(np.int64).T)
    cos = hd.cosine_similarity(a, a, backend="numpy")
    assert_bit_equal(cos, (dots.astype(np.float64) / (np.sqrt(np.float64(d)) * np.sqrt(np.float64(d)))).astype(np.float32))
    ham = hd.hamming_similarity(a, a, backend="numpy")
    assert_bit_equal(ham, (d + dots) // 2)  # equal positions of bipolar vectors


def test_dot_is_spec_sum_rounded_once():
    g = np.random.default_rng(3)
    a = (g.standard_normal(20000) * 10.0 ** g.integers(-8, 8, 20000)).astype(np.float32)
    b = (g.standard_normal(20000)).astype(np.float32)
    want = np.float32(ref_reduce.spec_sum(a.astype(np.float64) * b.astype(np.float64)))
    assert_bit_equal(hd.dot_similarity(a, b, backend="numpy"), np.array(want))


def test_similarity_shapes(backend):
    q = np.ones((2, 9), np.float32)
    m = np.ones((5, 9), np.float32)
    for fn in (hd.dot_similarity, hd.cosine_similarity, hd.hamming_similarity):
        assert fn(q[0], m[0], backend=backend).shape == ()
        assert fn(q[0], m, backend=backend).shape == (5,)
        assert fn(q, m[0], backend=backend).shape == (2,)
        assert fn(q, m, backend=backend).shape == (2, 5)


def test_zero_vector_cosine_is_zero(backend):
    assert_bit_equal(hd.cosine_similarity(np.zeros(4, np.float32), np.ones(4, np.float32), backend=backend),
                     np.array(0.0, np.float32))


def test_hard_quantize(backend):
    x = np.array([0.5, 0.0, -0.0, -1e-45, 1e-45], np.float32)
    assert_bit_equal(hd.hard_quantize(x, backend=backend), np.array([1, -1, -1, -1, 1], np.float32))
    assert_bit_equal(hd.hard_quantize(np.array([3, 0, -5], np.int8), backend=backend), np.array([1, -1, -1], np.int8))
    assert_bit_equal(hd.hard_quantize(np.array([0.5, -2.0]), backend=backend), np.array([1, -1], np.float32))


# --- errors -------------------------------------------------------------------------

F3 = np.array([1.0, -1.0, 0.5], np.float32)
ERRORS = [
    (lambda: hd.bind(F3, np.ones(4, np.float32)), ShapeError, "a, b"),
    (lambda: hd.bind(F3, np.array([1, -1, 1], np.int8)), DTypeError, "a, b"),
    (lambda: hd.bind(np.array([1, 2, 3], np.int32), np.array([1, 2, 3], np.int32)), DTypeError, "a"),
    (lambda: hd.bind(F3, np.array([True, False, True])), DTypeError, "b"),
    (lambda: hd.bundle(np.zeros((0, 3), np.float32)), ShapeError, "vectors"),
    (lambda: hd.bundle(np.float32(1.0)), ShapeError, "vectors"),
    (lambda: hd.bundle(np.ones((2, 3), np.complex64)), DTypeError, "vectors"),
    (lambda: hd.permute(F3, 0.5), DTypeError, "shifts"),
    (lambda: hd.permute(np.array(1.0, np.float32)), ShapeError, "x"),
    (lambda: hd.dot_similarity(F3, np.ones(4, np.float32)), ShapeError, "a, b"),
    (lambda: hd.dot_similarity(np.ones((2, 2, 3), np.float32), F3), ShapeError, "a"),
    (lambda: hd.cosine_similarity(np.array([1.0, np.nan, 0.0], np.float32), F3), NonFiniteError, "a"),
    (lambda: hd.hamming_similarity(F3, np.array([np.inf, 0.0, 0.0])), NonFiniteError, "b"),
    (lambda: hd.dot_similarity(np.array([1, -1, 1], np.int8), F3), DTypeError, "a, b"),
    (lambda: hd.hard_quantize(np.array([np.nan], np.float32)), NonFiniteError, "x"),
    (lambda: hd.hard_quantize(np.array([1], np.uint8)), DTypeError, "x"),
]


@pytest.mark.parametrize("call, error, name", ERRORS, ids=[f"{i}-{e.__name__}" for i, (_, e, _) in enumerate(ERRORS)])
def test_errors(call, error, name):
    with pytest.raises(error) as info:
        call()
    assert str(info.value).startswith(name + ":")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_bind_and_bundle_refuse_non_finite_input_like_the_similarities(backend, bad):
    x = np.array([1.0, bad, 0.5], np.float32)
    calls = [
        (lambda: hd.bind(x, F3, backend=backend), "a"),
        (lambda: hd.unbind(F3, x, backend=backend), "b"),
        (lambda: hd.bundle(np.stack([F3, x]), backend=backend), "vectors"),
    ]
    for call, name in calls:
        with pytest.raises(NonFiniteError) as info:
            call()
        assert str(info.value).startswith(name + ":")


def test_bind_of_finite_inputs_may_still_overflow_to_inf(backend):
    got = hd.bind(np.array([3e38], np.float32), np.array([10.0], np.float32), backend=backend)
    assert_bit_equal(got, np.array([np.inf], np.float32))


def test_bundle_of_one_1d_vector_is_a_shape_error(backend):
    with pytest.raises(ShapeError) as info:
        hd.bundle(F3, backend=backend)
    assert str(info.value).startswith("vectors:") and "1-d" in str(info.value)
