"""The ternary hyperdimensional algebra: identity across backends, algebraic laws, errors, golden cases."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from vsaopt import golden, rng, vsa
from vsaopt.arraycodec import encode
from vsaopt.backends.numpy import reduce as ref_reduce
from vsaopt.backends.numpy import vsa as ref_vsa
from vsaopt.errors import ConfigError, DTypeError, ShapeError
from vsaopt.golden import vsa as golden_vsa
from vsaopt.testing import assert_bit_equal
from vsaopt.testing.strategies import trit_arrays



def test_golden_cases_agree(fast_backend, reference):
    """Every golden case gives the same encoded outputs (or the same error) on each backend."""
    cases = golden_vsa.cases()
    assert len(cases) >= 10
    errors = 0
    for case in cases:
        enc = {"op": case["op"], "inputs": encode(case["inputs"])}
        want = golden.run_case(golden_vsa, reference, enc)
        errors += "error" in want
        assert golden.run_case(golden_vsa, fast_backend, enc) == want, case["comment"]
    assert errors >= 5


def test_docstring_examples():
    result = doctest.testmod(vsa.trit, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 10


# --- bind / unbind -------------------------------------------------------------------


def test_bind_table(backend):
    """bind and unbind of all nine trit pairs, against the residue arithmetic written out."""
    a, b = (g.reshape(-1).astype(np.int8) for g in np.meshgrid([-1, 0, 1], [-1, 0, 1], indexing="ij"))
    trit = {0: 0, 1: 1, 2: -1}
    want_bind = np.array([trit[(int(x) - int(y)) % 3] for x, y in zip(a, b)], np.int8)
    want_unbind = np.array([trit[(int(x) + int(y)) % 3] for x, y in zip(a, b)], np.int8)
    assert_bit_equal(vsa.bind(a, b, backend=backend), want_bind)
    assert_bit_equal(vsa.unbind(a, b, backend=backend), want_unbind)


@given(trit_arrays().flatmap(lambda a: st.tuples(st.just(a), trit_arrays(shape=a.shape))))
def test_bind_laws(pair):
    a, b = pair
    bound = vsa.bind(a, b, backend="numpy")
    assert bound.shape == a.shape and bound.dtype == np.int8
    assert_bit_equal(vsa.unbind(bound, b, backend="numpy"), np.ascontiguousarray(a, dtype=np.int8))
    assert_bit_equal(vsa.bind(b, a, backend="numpy"), -bound)  # anti-commutative
    assert_bit_equal(vsa.bind(a, np.zeros_like(a), backend="numpy"), np.ascontiguousarray(a, dtype=np.int8))
    assert_bit_equal(vsa.bind(a, a, backend="numpy"), np.zeros(a.shape, np.int8))


# --- bundle -------------------------------------------------------------------------


@given(trit_arrays())
def test_bundle_of_one_is_itself(x):
    assert_bit_equal(vsa.bundle(x[None], backend="numpy"), np.ascontiguousarray(x, dtype=np.int8))


@given(hnp.arrays(np.int8, st.tuples(st.integers(2, 40)), elements=st.integers(-1, 1)).flatmap(
    lambda a: st.tuples(st.just(a), hnp.arrays(np.int8, a.shape, elements=st.integers(-1, 1)))))
def test_bundle_majority_rules(pair):
    a, b = pair
    # a twice outvotes b wherever a is nonzero; where a is 0, b decides.
    assert_bit_equal(vsa.bundle(np.stack([a, a, b]), backend="numpy"), np.where(a != 0, a, b).astype(np.int8))
    # opposite votes tie to 0
    assert_bit_equal(vsa.bundle(np.stack([a, -a]), backend="numpy"), np.zeros(a.shape, np.int8))


@given(st.integers(1, 9).flatmap(lambda k: hnp.arrays(np.int8, (k, 23), elements=st.integers(-1, 1))), st.randoms())
def test_bundle_order_invariant_and_is_sign_of_sum(v, rnd):
    order = list(range(v.shape[0]))
    rnd.shuffle(order)
    got = vsa.bundle(v, backend="numpy")
    assert_bit_equal(vsa.bundle(v[order], backend="numpy"), got)
    assert_bit_equal(got, np.sign(v.astype(np.int64).sum(axis=0)).astype(np.int8))


def test_bundle_keeps_trailing_shape(backend):
    v = vsa.random(12, 6, seed=5, backend=backend).reshape(4, 3, 6)
    assert vsa.bundle(v, backend=backend).shape == (3, 6)


# --- permute ------------------------------------------------------------------------


@given(trit_arrays(), st.integers(-(2**63) + 1, 2**63 - 1))  # -s must be a valid shift too
def test_permute_round_trip_and_roll(x, s):
    p = vsa.permute(x, s, backend="numpy")
    assert_bit_equal(vsa.permute(p, -s, backend="numpy"), np.ascontiguousarray(x, dtype=np.int8))
    if x.shape[-1]:
        assert_bit_equal(p, np.ascontiguousarray(np.roll(x, s % x.shape[-1], axis=-1), dtype=np.int8))
        assert_bit_equal(vsa.permute(x, x.shape[-1], backend="numpy"), np.ascontiguousarray(x, dtype=np.int8))


# --- similarities -------------------------------------------------------------------


@given(hnp.arrays(np.int8, st.tuples(st.integers(1, 5), st.integers(1, 60)), elements=st.integers(-1, 1)))
def test_similarity_sanity(a):
    nnz = (a != 0).sum(axis=1)
    cos = vsa.cosine_similarity(a, a, backend="numpy")
    assert cos.dtype == np.float32 and cos.shape == (a.shape[0], a.shape[0])
    assert_bit_equal(np.diag(cos).copy(), np.where(nnz > 0, 1.0, 0.0).astype(np.float32))
    assert np.all(np.abs(cos) <= 1.0)
    assert_bit_equal(cos, cos.T.copy())
    dots = vsa.dot_similarity(a, a, backend="numpy")
    assert_bit_equal(np.diag(dots).copy(), nnz.astype(np.int64))
    assert_bit_equal(dots, a.astype(np.int64) @ a.astype(np.int64).T)
    ham = vsa.hamming_similarity(a, a, backend="numpy")
    assert_bit_equal(np.diag(ham).copy(), np.full(a.shape[0], a.shape[1], np.int64))


def test_similarity_shapes(backend):
    q, m = vsa.random(2, 33, seed=1, backend=backend), vsa.random(5, 33, seed=2, backend=backend)
    for fn in (vsa.dot_similarity, vsa.cosine_similarity, vsa.hamming_similarity):
        assert fn(q[0], m[0], backend=backend).shape == ()
        assert fn(q[0], m, backend=backend).shape == (5,)
        assert fn(q, m[0], backend=backend).shape == (2,)
        assert fn(q, m, backend=backend).shape == (2, 5)
        assert fn(q[:0], m, backend=backend).shape == (0, 5)


def test_cosine_value():
    a = np.array([1, 1, 1, 0, 0, -1], np.int8)
    b = np.array([1, -1, 1, 1, 0, 0], np.int8)
    want = np.float32(np.float64(1) / np.sqrt(np.float64(4 * 4)))
    assert_bit_equal(vsa.cosine_similarity(a, b, backend="numpy"), np.array(want, np.float32))


def test_spec_sum_rows_matches_spec_sum():
    """The reference's row-vectorized summation is the spec's order, row by row (multi-block lengths too)."""
    g = np.random.default_rng(12)
    for d in (0, 1, 31, 33, 8191, 8192, 8193, 2 * 8192 + 40, 5 * 8192 + 7):
        v = g.standard_normal((3, d)) * 10.0 ** g.integers(-25, 25, (3, d))
        assert_bit_equal(ref_vsa.spec_sum_rows(v), np.array([ref_reduce.spec_sum(r) for r in v], np.float64))


# --- random -------------------------------------------------------------------------


def test_random_follows_definition(backend):
    n, dim, seed, sparsity = 3, 41, 2**64 - 2, 0.25
    w = rng.random_bits(n * dim, seed, rng.Stream.VSA_RANDOM, 0, 0, backend="numpy")
    u = (w >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)
    want = np.where(u < np.float32(sparsity), 0, np.where(w & 1 == 0, 1, -1)).astype(np.int8).reshape(n, dim)
    got = vsa.random(n, dim, seed, sparsity, backend=backend)
    assert_bit_equal(np.asarray(got), want)


def test_random_reproducible_and_seeded():
    a = vsa.random(4, 100, seed=9, backend="numpy")
    assert_bit_equal(vsa.random(4, 100, seed=9, backend="numpy"), a)
    assert not np.array_equal(vsa.random(4, 100, seed=10, backend="numpy"), a)
    assert vsa.random(0, 5, seed=0, backend="numpy").shape == (0, 5)
    assert (vsa.random(1, 64, seed=1, sparsity=0.0, backend="numpy") != 0).all()
    assert not vsa.random(1, 64, seed=1, sparsity=1.0, backend="numpy").any()


@pytest.mark.parametrize("sparsity", [1 / 3, 0.1, 0.9])
def test_random_statistics(sparsity):
    """Zero fraction and sign balance lie inside binomial bounds at alpha = 1e-9 (cannot flake in practice)."""
    n = 200_000
    t = vsa.random(1, n, seed=2024, sparsity=sparsity, backend="numpy").reshape(-1)
    p0 = float(np.ceil(np.float32(sparsity) * 2**24)) / 2**24  # P(u < s) on the 2^-24 grid
    zeros = int((t == 0).sum())
    lo, hi = stats.binom.interval(1 - 1e-9, n, p0)
    assert lo <= zeros <= hi
    nonzero = n - zeros
    lo, hi = stats.binom.interval(1 - 1e-9, nonzero, 0.5)
    assert lo <= int((t == 1).sum()) <= hi


# --- errors -------------------------------------------------------------------------

T3 = np.array([1, 0, -1], np.int8)
ERRORS = [
    (lambda: vsa.bind(T3, np.zeros(4, np.int8)), ShapeError, "a, b"),
    (lambda: vsa.bind(np.array([2, 0, 0], np.int8), T3), ConfigError, "a"),
    (lambda: vsa.unbind(T3, np.array([1.0, 0.0, 0.0])), DTypeError, "b"),
    (lambda: vsa.bundle(np.zeros((0, 4), np.int8)), ShapeError, "vectors"),
    (lambda: vsa.bundle(np.array(1, np.int8)), ShapeError, "vectors"),
    (lambda: vsa.permute(T3, 1.5), DTypeError, "shifts"),
    (lambda: vsa.permute(np.array(1, np.int8)), ShapeError, "x"),
    (lambda: vsa.dot_similarity(T3, np.zeros(4, np.int8)), ShapeError, "a, b"),
    (lambda: vsa.cosine_similarity(np.zeros((2, 2, 3), np.int8), T3), ShapeError, "a"),
    (lambda: vsa.hamming_similarity(T3, np.array([0, 0, 3])), ConfigError, "b"),
    (lambda: vsa.random(-1, 4, seed=0), ConfigError, "n"),
    (lambda: vsa.random(2, -4, seed=0), ConfigError, "dim"),
    (lambda: vsa.random(2**20, 2**20, seed=0), ConfigError, "n, dim"),
    (lambda: vsa.random(1, 4, seed=-1), ConfigError, "seed"),
    (lambda: vsa.random(1, 4, seed=1.0), DTypeError, "seed"),
    (lambda: vsa.random(1, 4, seed=0, sparsity=1.5), ConfigError, "sparsity"),
    (lambda: vsa.random(1, 4, seed=0, sparsity="x"), DTypeError, "sparsity"),
]


@pytest.mark.parametrize("call, error, name", ERRORS, ids=[f"{i}-{e.__name__}" for i, (_, e, _) in enumerate(ERRORS)])
def test_errors(call, error, name):
    with pytest.raises(error) as info:
        call()
    assert str(info.value).startswith(name + ":")


def test_bundle_of_one_1d_vector_is_a_shape_error(backend):
    """bundle takes a stack of shape (k, d, ...); a lone vector is not read as k scalars."""
    with pytest.raises(ShapeError) as info:
        vsa.bundle(T3, backend=backend)
    assert str(info.value).startswith("vectors:") and "1-d" in str(info.value)
