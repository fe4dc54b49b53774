"""Prediction kernels: spec'd arithmetic on the reference, byte identity of every backend."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vsaopt.protocol import PREDICTION_KERNELS
from vsaopt.testing import assert_bit_equal, to_host

F32 = np.float32
finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
scalar32 = st.floats(min_value=-1e6, max_value=1e6, width=32, allow_nan=False)


def vec(n):
    return hnp.arrays(np.float32, n, elements=finite32)


def dev(be, *arrays):
    return [be.xp.asarray(a) for a in arrays]


def test_every_backend_lists_the_prediction_kernels(backend):
    for name in PREDICTION_KERNELS:
        assert callable(getattr(backend, name)), name


def test_reference_follows_the_spelled_out_order(reference):
    # Values chosen so that a fused multiply-add would round differently.
    b = np.array([1.0, -0.0, 3.0], F32)
    v = np.array([1 + 2**-23, 0.0, -1e-8], F32)
    r = np.array([1 - 2**-24, -0.0, 2.0], F32)
    dt, w = F32(1 - 2**-23), F32(0.5)
    expected = np.array([F32(F32(b[i] + F32(v[i] * dt)) + F32(r[i] * w)) for i in range(3)], F32)
    assert_bit_equal(reference.predict_linear(b, v, r, dt, w), expected)
    assert np.signbit(reference.predict_linear(b, v, r, dt, w)[1]) == np.signbit(F32(F32(-0.0 + 0.0) + F32(-0.0 * 0.5)))
    m = F32(0.9)
    prev, curr = v, r
    exp_m = np.array([F32(curr[i] + F32(m * F32(curr[i] - prev[i]))) for i in range(3)], F32)
    assert_bit_equal(reference.momentum_extrapolate(prev, curr, m), exp_m)


def test_predict_linear_identical(fast_backend, reference):
    @given(st.integers(0, 300).flatmap(lambda n: st.tuples(vec(n), vec(n), vec(n), scalar32, scalar32)))
    def check(args):
        b, v, r, dt, w = args
        with np.errstate(all="ignore"):
            expected = reference.predict_linear(b, v, r, F32(dt), F32(w))
        got = fast_backend.predict_linear(*dev(fast_backend, b, v, r), F32(dt), F32(w))
        assert_bit_equal(to_host(got), expected)

    check()


def test_momentum_and_axpy_identical(fast_backend, reference):
    @given(st.integers(0, 300).flatmap(lambda n: st.tuples(vec(n), vec(n), scalar32)))
    def check(args):
        p, c, m = args
        with np.errstate(all="ignore"):
            e1 = reference.momentum_extrapolate(p, c, F32(m))
            e2 = reference.axpy(p, F32(m), c)
        assert_bit_equal(to_host(fast_backend.momentum_extrapolate(*dev(fast_backend, p, c), F32(m))), e1)
        assert_bit_equal(to_host(fast_backend.axpy(*dev(fast_backend, p), F32(m), *dev(fast_backend, c))), e2)

    check()


def test_residual_update_identical(fast_backend, reference):
    @given(st.integers(0, 200).flatmap(lambda n: st.tuples(vec(n), vec(n), vec(n), vec(n), st.integers(0, 50), st.floats(0, 1, width=32))))
    def check(args):
        r, g, b, v, dt, d = args
        o = F32(1.0 - float(F32(d)))
        with np.errstate(all="ignore"):
            expected = reference.residual_update(r, g, b, v, F32(dt), F32(d), o)
        got = fast_backend.residual_update(*dev(fast_backend, r, g, b, v), F32(dt), F32(d), o)
        assert_bit_equal([to_host(x) for x in got], list(expected))

    check()


def test_wls_fit_identical(fast_backend, reference):
    @given(
    st.integers(1, 6).flatmap(
        lambda k: st.tuples(
            hnp.arrays(np.float32, st.tuples(st.just(k), st.integers(0, 150)), elements=st.floats(-1e4, 1e4, width=32)),
            st.permutations(list(range(k))),
            st.lists(st.floats(0, 1), min_size=k, max_size=k),
            st.lists(st.integers(-20, 0), min_size=k, max_size=k),
        )
    )
)
    def check(args):
        hist, perm, w, t = args
        rows = np.array(perm, np.int64)
        w = np.array(w)
        wt = w * np.array(t, np.float64)
        sums = (float(w.sum()), float(wt.sum()), float((wt * np.array(t)).sum()), 0.37)
        expected = reference.wls_fit(hist, rows, w, wt, *sums)
        got = fast_backend.wls_fit(*dev(fast_backend, hist), rows, w, wt, *sums)
        assert_bit_equal([to_host(x) for x in got], list(expected))

    check()


def test_wls_fit_recovers_a_line(reference):
    steps = np.array([0, 1, 3, 4, 7], np.float64)
    t = steps - steps[-1]
    hist = (2.0 + 0.5 * steps[:, None] * np.ones((1, 4))).astype(F32)
    w = 0.9 ** np.arange(4, -1, -1.0)
    wt = w * t
    sw, swt, swt2 = w.sum(), wt.sum(), (wt * t).sum()
    base, vel = reference.wls_fit(hist, np.arange(5), w, wt, sw, swt, swt2, 1 / (sw * swt2 - swt * swt))
    np.testing.assert_allclose(base, 5.5, rtol=1e-6)
    np.testing.assert_allclose(vel, 0.5, rtol=1e-6)


@pytest.mark.skipif(os.environ.get("VSAOPT_SKIP_SUBPROCESS") == "1", reason="subprocess tests disabled")
def test_numba_parallel_variants_identical(reference, tmp_path):
    pytest.importorskip("numba")
    code = textwrap.dedent(
        """
        import numpy as np
        from vsaopt.backend import get_backend
        from vsaopt.backends.numba import _config
        assert _config.PARALLEL_MIN == 1000
        nb, ref = get_backend("numba"), get_backend("numpy")
        rng = np.random.default_rng(3)
        n = 70001 * 2
        a, b, c, d = (rng.standard_normal(n).astype(np.float32) for _ in range(4))
        pairs = [
            (nb.predict_linear(a, b, c, 3, 0.5), ref.predict_linear(a, b, c, 3, 0.5)),
            (nb.momentum_extrapolate(a, b, 0.9), ref.momentum_extrapolate(a, b, 0.9)),
            (nb.axpy(a, 0.3, b), ref.axpy(a, 0.3, b)),
        ]
        pairs += list(zip(nb.residual_update(a, b, c, d, 2, 0.95, 0.05), ref.residual_update(a, b, c, d, 2, 0.95, 0.05)))
        hist = rng.standard_normal((4, n)).astype(np.float32)
        rows = np.array([1, 2, 3, 0]); w = np.array([0.7, 0.8, 0.9, 1.0]); wt = w * np.array([-3.0, -2, -1, 0])
        pairs += list(zip(nb.wls_fit(hist, rows, w, wt, 3.4, -4.4, 8.6, 0.3), ref.wls_fit(hist, rows, w, wt, 3.4, -4.4, 8.6, 0.3)))
        assert all(x.tobytes() == y.tobytes() for x, y in pairs)
        print("ok", len(pairs))
        """
    )
    env = dict(os.environ, VSAOPT_PARALLEL_MIN="1000")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "ok 7"


def _cut_vectors(draw, rows, exponent):
    """``rows`` float32 vectors of up to 3 blocks and a tail, magnitudes ``10**-exponent .. 10**exponent``, and cuts anywhere.

    Returns ``(cuts, rng, vectors)``: sorted cut positions (repeats allowed), the generator that drew the vectors.
    """
    n = draw(st.integers(0, 3 * 8192 + 70))
    seed = draw(st.integers(0, 2**32 - 1))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=6)))
    rng = np.random.default_rng(seed)
    scale = F32(10.0) ** rng.integers(-exponent, exponent + 1, size=(rows, n)).astype(F32)
    return cuts, rng, (rng.standard_normal((rows, n)).astype(F32) * scale).astype(F32)


@st.composite
def gather_inputs(draw):
    """Pieces of a vector of up to 3 blocks (cut anywhere), with optional ``prev`` and ``pred``, magnitudes 1e-30..1e30."""
    cuts, rng, (x, prev, pred) = _cut_vectors(draw, 3, 30)
    n = x.shape[0]
    kind = draw(st.sampled_from(["none", "array", "linear"]))
    if kind == "linear":  # a least-squares prediction, computed in the pass
        b, v, r = (rng.standard_normal((3, n)) * 100).astype(F32)
        pred = (b, v, r, F32(draw(st.integers(0, 9))), F32(draw(st.floats(0, 1, width=32))))
    return np.split(x, cuts), x, (prev if draw(st.booleans()) else None), (None if kind == "none" else pred)


def _sum_bytes(sums):
    return [None if s is None else np.float64(s).tobytes() for s in sums]


def test_gather_stats_identical(fast_backend, reference):
    @given(gather_inputs())
    def check(args):
        pieces, x, prev, pred = args
        expected_out = np.empty_like(x)
        expected = reference.gather_stats(pieces, expected_out, prev, pred)
        out = fast_backend.xp.empty(x.shape[0], dtype=fast_backend.xp.float32)
        def on(a):
            if isinstance(a, tuple):
                return (*dev(fast_backend, *a[:3]), *a[3:])
            return None if a is None else dev(fast_backend, a)[0]

        got = fast_backend.gather_stats([on(p) for p in pieces], out, on(prev), on(pred))
        assert_bit_equal(to_host(out), x)
        assert_bit_equal(expected_out, x)
        assert _sum_bytes(got) == _sum_bytes(expected)

    check()


def test_gather_stats_are_the_spec_sums_of_the_concatenation(reference):
    rng = np.random.default_rng(3)
    x, prev, pred = (rng.standard_normal((3, 20000)) * 1e20 ** rng.standard_normal((3, 20000))).astype(F32)
    out = np.empty_like(x)
    sums = reference.gather_stats(np.split(x, [5, 8190, 8200, 16385]), out, prev, pred)
    X, P, Q = x.reshape(1, -1), prev.reshape(1, -1), pred.reshape(1, -1)
    assert _sum_bytes(sums) == _sum_bytes([reference.row_sumsq(X)[0], reference.dot(X, P)[0, 0], reference.dot(X, Q)[0, 0],
                                           reference.row_sumsq(Q)[0]])
    naive = float(np.sum(x.astype(np.float64) * prev.astype(np.float64)))
    assert naive != sums[1]  # the magnitudes make the order visible: only the spec's order gives these bytes
    assert reference.gather_stats([x], out, None, None)[1:] == (None, None, None)
    b, v, r = prev, pred, x
    linear = reference.gather_stats([x], out, None, (b, v, r, F32(2.0), F32(0.5)))
    assert _sum_bytes(linear) == _sum_bytes(reference.gather_stats([x], out, None, reference.predict_linear(b, v, r, F32(2.0), F32(0.5))))


def test_gather_stats_sum_of_squares_is_not_finite_exactly_when_an_input_is_not(backend):
    for bad in (np.inf, -np.inf, np.nan):
        x = np.ones(9000, F32)
        x[8191] = bad
        out = backend.xp.empty(9000, dtype=backend.xp.float32)
        g2 = backend.gather_stats(dev(backend, x[:100], x[100:]), out, None, None)[0]
        assert not np.isfinite(g2)
    assert np.isfinite(backend.gather_stats(dev(backend, np.full(10, 3.4e38, F32)), backend.xp.empty(10, dtype=backend.xp.float32), None, None)[0])


def test_predict_linear_writes_into_out(backend, reference):
    rng = np.random.default_rng(8)
    b, v, r = rng.standard_normal((3, 5000)).astype(F32)
    expected = reference.predict_linear(b, v, r, F32(3.0), F32(0.25))
    out = backend.xp.full(5000, np.nan, dtype=backend.xp.float32)
    got = backend.predict_linear(*dev(backend, b, v, r), F32(3.0), F32(0.25), out=out)
    assert got is out
    assert_bit_equal(to_host(out), expected)


def test_residual_update_writes_in_place(backend, reference):
    """``out`` may be the residual itself and ``err`` a given array: the same bytes as new arrays."""
    rng = np.random.default_rng(9)
    r, g, b, v = rng.standard_normal((4, 5000)).astype(F32)
    expected = reference.residual_update(r, g, b, v, F32(3.0), F32(0.9), F32(0.1))
    res, err = dev(backend, r, np.full(5000, np.nan, F32))
    got = backend.residual_update(res, *dev(backend, g, b, v), F32(3.0), F32(0.9), F32(0.1), out=res, err=err)
    assert got[0] is res and got[1] is err
    assert_bit_equal([to_host(res), to_host(err)], list(expected))


def test_wls_fit_writes_into_out(backend, reference):
    rng = np.random.default_rng(10)
    hist = rng.standard_normal((4, 5000)).astype(F32)
    rows, w, wt = np.array([2, 0, 3], np.int64), np.array([0.8, 0.9, 1.0]), np.array([-1.6, -0.9, 0.0])
    sums = (2.7, -2.5, 4.1, 0.4)
    expected = reference.wls_fit(hist, rows, w, wt, *sums)
    out = tuple(dev(backend, *np.full((2, 5000), np.nan, F32)))
    got = backend.wls_fit(*dev(backend, hist), rows, w, wt, *sums, out=out)
    assert got[0] is out[0] and got[1] is out[1]
    assert_bit_equal([to_host(x) for x in out], list(expected))


@pytest.mark.parametrize("small", [0, 1 << 18], ids=["streamed", "copied-first"])
def test_gather_stats_numba_paths_identical(reference, monkeypatch, small):
    """numba's paths give the reference's bytes: pieces streamed one call each (lanes carried across them) or copied first."""
    pytest.importorskip("numba")
    from vsaopt.backend import get_backend
    from vsaopt.backends.numba import record

    monkeypatch.setattr(record, "SMALL", small)
    nb = get_backend("numba")

    @given(gather_inputs())
    def check(args):
        pieces, x, prev, pred = args
        expected = reference.gather_stats(pieces, np.empty_like(x), prev, pred)
        out = np.empty_like(x)
        assert _sum_bytes(nb.gather_stats(pieces, out, prev, pred)) == _sum_bytes(expected)
        assert_bit_equal(out, x)

    check()


def test_gather_stats_parallel_path_identical(reference, monkeypatch):
    """Pieces of any size through numba's prange path (chunks of whole blocks of the concatenation in parallel) give the serial bytes."""
    pytest.importorskip("numba")
    from vsaopt.backend import get_backend
    from vsaopt.backends.numba import parallel_threshold, record

    monkeypatch.setattr(record, "SMALL", 0)  # every piece its own call
    nb = get_backend("numba")

    @given(gather_inputs())
    def check(args):
        pieces, x, prev, pred = args
        expected_out = np.empty_like(x)
        expected = reference.gather_stats(pieces, expected_out, prev, pred)
        out = np.empty_like(x)
        with parallel_threshold(1):
            got = nb.gather_stats(pieces, out, prev, pred)
        assert_bit_equal(out, x)
        assert _sum_bytes(got) == _sum_bytes(expected)

    check()


@st.composite
def residual_inputs(draw):
    """A correction's operands over up to 3 blocks, cut into segments anywhere (empty ones included), with edge values mixed in."""
    cuts, rng, (r, g, b, v) = _cut_vectors(draw, 4, 20)
    n = r.shape[0]
    edge = np.array([0.0, -0.0, 1e-45, -1e-45, 3e38, -3e38], F32)
    for a in (r, g, b):
        if n:
            idx = rng.integers(0, n, size=min(n, 6))
            a[idx] = edge[: idx.shape[0]]
    dt, w = F32(draw(st.integers(0, 9))), F32(draw(st.floats(0, 1, width=32)))
    decay = F32(draw(st.sampled_from([0.0, 0.5, 0.9, 0.95, 1.0])))
    return (r, g, b, v, dt, w, decay, F32(1.0 - float(decay))), np.array([0, *cuts, n], np.int64)


def _residual_result(got, residual):
    dot_pred, sumsq_pred, err_abs, bits = got
    return (to_host(residual).tobytes(), np.float64(dot_pred).tobytes(), np.float64(sumsq_pred).tobytes(),
            np.asarray(err_abs, np.float64).tobytes(), np.asarray(bits, np.uint32).tobytes())


def test_residual_stats_is_the_composition_of_the_spec_kernels(reference):
    """The reference: ``residual_update`` in place, ``dot`` / ``row_sumsq`` of ``predict_linear``, ``abs_stats`` per segment."""
    rng = np.random.default_rng(4)
    n = 20000
    r, g, b, v = (rng.standard_normal((4, n)) * 1e12 ** rng.uniform(-2, 2, (4, n))).astype(F32)
    bounds = np.array([0, 5, 8190, 8200, 16385, n], np.int64)
    args = (F32(3.0), F32(0.75), F32(0.95), F32(0.05))
    pred = reference.predict_linear(b, v, r, args[0], args[1])
    new, err = reference.residual_update(r, g, b, v, args[0], args[2], args[3])
    res = r.copy()
    got = reference.residual_stats(res, g, b, v, *args, bounds)
    assert_bit_equal(res, new)
    assert _sum_bytes(got[:2]) == _sum_bytes([reference.dot(g.reshape(1, -1), pred.reshape(1, -1))[0, 0],
                                              reference.row_sumsq(pred.reshape(1, -1))[0]])
    segs = list(zip(bounds, bounds[1:]))
    assert got[2].tobytes() == np.array([reference.abs_stats(err[lo:hi])[0] for lo, hi in segs]).tobytes()
    assert got[3].tolist() == [reference.abs_stats(new[lo:hi])[1] for lo, hi in segs]
    naive = float(np.sum(np.abs(err[5:8190].astype(np.float64))))
    assert naive != got[2][1]  # the magnitudes make the order visible: only the spec's order gives these bytes


def test_residual_stats_identical(fast_backend, reference):
    """Every backend gives the reference's bytes: the residual written in place, both sums, every segment's statistics."""
    @given(residual_inputs())
    def check(drawn):
        (r, g, b, v, *scalars), bounds = drawn
        with np.errstate(all="ignore"):
            res = r.copy()
            expected = _residual_result(reference.residual_stats(res, g, b, v, *scalars, bounds), res)
        dres, *ops = dev(fast_backend, r, g, b, v)
        got = _residual_result(fast_backend.residual_stats(dres, *ops, *scalars, bounds), dres)
        assert got == expected

    check()


def test_residual_stats_reports_an_overflowed_residual_without_raising(backend):
    """Overflow to Inf is the IEEE result (schedule.md §6.3): the segment's bit maximum says so; nothing raises."""
    r, g, b, v = (np.full(40, 1.0, F32) for _ in range(4))
    g[33] = F32(3e38)
    b[33] = F32(-3e38)  # e = g - b overflows
    res = dev(backend, r)[0]
    _, _, err_abs, bits = backend.residual_stats(res, *dev(backend, g, b, v), F32(0.0), F32(1.0), F32(0.5), F32(0.5),
                                                 np.array([0, 32, 40], np.int64))
    assert np.isfinite(err_abs[0]) and np.isinf(err_abs[1])
    assert int(bits[0]) < 0x7F800000 <= int(bits[1])


def test_residual_stats_rejects_bounds_that_do_not_run_from_0_to_n(backend):
    """A decreasing bound (a segment of negative length) is a ShapeError before anything is written, on every backend."""
    from vsaopt.errors import ShapeError

    r, g, b, v = (np.ones(40, F32) for _ in range(4))
    for bounds in ([0, 30, 20, 40], [0, 30], [5, 40], [0, 50], []):
        res = dev(backend, r)[0]
        with pytest.raises(ShapeError, match="bounds"):
            backend.residual_stats(res, *dev(backend, g, b, v), F32(1.0), F32(1.0), F32(0.5), F32(0.5), np.array(bounds, np.int64))
        assert_bit_equal(to_host(res), r)
