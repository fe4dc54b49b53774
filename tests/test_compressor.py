"""VSA gradient compression: matrix-free projection, round trips, fidelity bounds, serialization, errors."""

import dataclasses
import math
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import stats

from vsaopt.compressor import THRESHOLD_RATIO, VSAGradientCompressor, hypervector_dim
from vsaopt.config import VSAConfig
from vsaopt.errors import ConfigError, DTypeError, EncodingError, NonFiniteError, ShapeError
from vsaopt.benchmarks.fidelity import dense_projection_cosine, fidelity_table, make_gradients
from vsaopt.projection import MAX_BLOCK, SRHTProjection, hadamard_blocks, padded_length
from vsaopt.testing import assert_bit_equal, to_host
from vsaopt.testing.strategies import float32_arrays, seeds
from vsaopt.wire import CompressedGradients

SHAPES = [("fc1.weight", (32, 48)), ("fc1.bias", (32,)), ("fc2.weight", (10, 32)), ("fc2.bias", (10,))]
MODES = [("bundled", False), ("per_tensor", False), ("per_tensor", True)]


def grads(seed, shapes=SHAPES):
    return make_gradients(shapes, "lowrank", seed)


def cos(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- cross-backend identity -----------------------------------------------------------


@pytest.mark.parametrize("mode,ef", MODES)
def test_a_large_layer_gives_the_reference_bytes(fast_backend, reference, mode, ef):
    """A 300 x 500 weight (two 2**16 Hadamard blocks and smaller ones) on every backend."""
    shapes = [("w", (300, 500)), ("b", (500,))]
    g = grads(3, shapes)
    cfg = VSAConfig(dimension=256, compression_ratio=0.05, seed=9)
    ref = VSAGradientCompressor(shapes, cfg, reference, mode=mode, error_feedback=ef)
    cand = VSAGradientCompressor(shapes, cfg, fast_backend, mode=mode, error_feedback=ef)
    for _ in range(2):
        mr, mc = ref.compress(g), cand.compress({k: fast_backend.xp.asarray(v) for k, v in g.items()})
        assert mc.to_json() == mr.to_json()
        dr, dc = ref.decompress(mr), cand.decompress(mc)
        for n, _ in shapes:
            assert_bit_equal(dc[n], fast_backend.xp.asarray(dr[n]), n)


# --- the projection -----------------------------------------------------------------------


def test_layout_pads_little_and_blocks_are_powers_of_two():
    for n in (1, 5, 64, 65, 1000, 150_000, 768 * 3072):
        nprime = padded_length(n)
        assert n <= nprime < n + max(64, n)
        if n > 64:
            assert nprime - n < 64
        segs = hadamard_blocks(nprime)
        assert sum(b * c for _, b, c in segs) == nprime
        assert all(b & (b - 1) == 0 and b <= MAX_BLOCK for _, b, _ in segs)


def test_d_at_least_padded_length_is_an_isometry(backend):
    x = make_gradients([("x", (1000,))], seed=1)["x"]
    p = SRHTProjection(1000, 1024, seed=5, backend=backend)
    y = to_host(p.forward(backend.xp.asarray(x)))
    assert np.linalg.norm(y) == pytest.approx(np.linalg.norm(x), rel=1e-5)
    np.testing.assert_allclose(to_host(p.transpose(backend.xp.asarray(y))), x, atol=1e-5)


def test_unit_gain_is_an_orthogonal_projection_and_a_contraction():
    """n = N (no padding): idempotent and Pythagorean; with padding still ||x - Px||^2 <= ||x||^2 - ||y||^2."""
    x = make_gradients([("x", (3008,))], seed=2)["x"]
    p = SRHTProjection(3008, 400, seed=5, gain="unit", backend="numpy")
    px = p.transpose(p.forward(x))
    ppx = p.transpose(p.forward(px))
    np.testing.assert_allclose(ppx, px, atol=1e-5)  # idempotent
    assert float(x @ x) == pytest.approx(float(px @ px) + float((x - px) @ (x - px)), rel=1e-5)  # Pythagoras
    x = x[:3000].copy()
    p = SRHTProjection(3000, 400, seed=5, gain="unit", backend="numpy")
    y = p.forward(x).astype(np.float64)
    r = x - p.transpose(y.astype(np.float32))
    assert float(r @ r) <= float(x @ x) - float(y @ y) + 1e-4 * float(x @ x)


def test_unbiased_gain_round_trip_is_unbiased_over_draws():
    """E[transpose(forward(x))] = x and E||forward(x)||^2 = ||x||^2: t-tests over 400 steps (p > 1e-7)."""
    x = make_gradients([("x", (300,))], seed=3)["x"].astype(np.float64)
    p = SRHTProjection(300, 30, seed=1, backend="numpy")
    u = np.random.Generator(np.random.PCG64(4)).standard_normal(300)
    err, energy = [], []
    for step in range(400):
        y = p.forward(x.astype(np.float32), step=step)
        err.append([(p.transpose(y, step=step) - x) @ u, (p.transpose(y, step=step) - x) @ x])
        energy.append(float(y.astype(np.float64) @ y) - float(x @ x))
    assert np.all(stats.ttest_1samp(np.array(err), 0.0).pvalue > 1e-7)
    assert stats.ttest_1samp(energy, 0.0).pvalue > 1e-7


def test_no_matrix_is_stored_and_memory_is_linear():
    """Peak Python-heap memory of compress and decompress (numpy reference) is O(n), not n x d."""
    shape = (512, 1024)
    n = shape[0] * shape[1]
    comp = VSAGradientCompressor([("w", shape)], VSAConfig(), "numpy", mode="per_tensor")
    g = {"w": make_gradients([("w", shape)], seed=0)["w"]}
    comp.compress(g)
    tracemalloc.start()
    try:
        msg = comp.compress(g)
        peak_c = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        comp.decompress(msg)
        peak_d = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    dense = 4 * n * comp.dims[0]
    assert peak_c < 12 * 4 * n and peak_d < 12 * 4 * n, (peak_c, peak_d, dense)
    assert not any(hasattr(v, "nbytes") and v.nbytes >= 4 * n for v in vars(comp).values())


# --- compressor round trips ----------------------------------------------------------------


@pytest.mark.parametrize("use_ternary", [True, False])
@pytest.mark.parametrize("mode,ef", MODES)
def test_round_trip_shapes_dtypes_and_serialization(backend, mode, ef, use_ternary):
    cfg = VSAConfig(dimension=300, compression_ratio=0.2, use_ternary=use_ternary, seed=3)
    comp = VSAGradientCompressor(SHAPES, cfg, backend, mode=mode, error_feedback=ef)
    g = {k: backend.xp.asarray(v) for k, v in grads(0).items()}
    msg = comp.compress(g)
    out = comp.decompress(msg)
    assert list(out) == [n for n, _ in SHAPES]
    for n, s in SHAPES:
        assert out[n].shape == s and out[n].dtype == np.float32 and comp._be.owns(out[n])
    again = CompressedGradients.from_json(msg.to_json())
    assert again.to_json() == msg.to_json()
    for n, _ in SHAPES:
        assert_bit_equal(comp.decompress(again)[n], out[n], n)
    assert len(msg.payload) == (1 if mode == "bundled" else len(SHAPES))
    per = (lambda d: -(-d // 4)) if use_ternary else (lambda d: 4 * d)
    assert msg.nbytes == sum(per(d) for d in ([comp.dims[0]] if mode == "bundled" else comp.dims)) + 6 * len(SHAPES)
    st_ = comp.get_compression_stats()
    assert st_.original_params == sum(math.prod(s) for _, s in SHAPES)
    assert st_.memory_saving == pytest.approx(1 - msg.nbytes / (4 * st_.original_params))
    assert st_.compression_ratio == pytest.approx(comp.compressed_dim / st_.original_params)


def test_determinism_and_fresh_draws(backend):
    cfg = VSAConfig(dimension=256, seed=8)
    a = VSAGradientCompressor(SHAPES, cfg, backend)
    b = VSAGradientCompressor(SHAPES, cfg, backend)
    g = grads(1)
    m1, m2 = a.compress(g), b.compress(g)
    assert m1.to_json() == m2.to_json()
    m3 = a.compress(g)
    assert m3.step == 1 and m3.to_json() != m1.to_json()  # a fresh projection each call
    d1, d1b = a.decompress(m1), b.decompress(m1)
    for n, _ in SHAPES:
        assert_bit_equal(d1[n], d1b[n])
    other = VSAGradientCompressor(SHAPES, VSAConfig(dimension=256, seed=9), backend).compress(g)
    assert other.payload[0].tobytes() != m1.payload[0].tobytes()


def test_clear_cache_changes_nothing():
    comp = VSAGradientCompressor(SHAPES, VSAConfig(dimension=256), "numpy")
    g = grads(2)
    msg = comp.compress(g)
    before = comp.decompress(msg)
    comp.clear_cache()
    after = comp.decompress(msg)
    for n, _ in SHAPES:
        assert_bit_equal(after[n], before[n])


def test_dimension_rule_of_the_crate():
    assert hypervector_dim(768 * 3072, VSAConfig()) == 235929
    assert hypervector_dim(100, VSAConfig(dimension=1)) == 256
    comp = VSAGradientCompressor([("w", (768, 3072)), ("b", (10,))], VSAConfig(), "numpy", mode="per_tensor")
    assert comp.dims == (235929, 16)


# --- fidelity ----------------------------------------------------------------------------------


def _strata_energy_bound(z, m, delta=1e-9):
    """Hoeffding lower bound on ||S z||^2 for one uniform sample in each of m strata of [0, N)."""
    nprime = z.size
    lo = (np.arange(m + 1, dtype=np.int64) * nprime) // m
    z2 = z.astype(np.float64) ** 2
    means = np.add.reduceat(z2, lo[:-1]) / np.diff(lo)
    maxes = np.maximum.reduceat(z2, lo[:-1])
    return float(means.sum() - math.sqrt(math.log(1 / delta) * float(maxes @ maxes) / 2))


@given(float32_arrays(max_side=60), st.floats(0.02, 0.5), seeds(), st.integers(0, 3))
def test_fidelity_bound_per_tensor_unit_gain(x, ratio, seed, step):
    """cos(g, decompress(compress(g))) >= 2 sqrt(r (1 - r)) * flat(y) * ||y|| / ||g||, with ||y||^2 >= E - t.

    Per-tensor mode with unit gain (error feedback, first call) reconstructs
    g' = R^T (HD)^T S^T y' with y' the ternarized y = S H D R g (R pads with
    zeros, R^T truncates), so <g, g'> = <y, y'> and ||g'|| <= ||y'||, hence
    cos(g, g') >= cos(y, y') ||y|| / ||g||.  Threshold t = r mean|y| (r = 0.75)
    keeps k coordinates with sum |y| >= (1 - r + r k/m) ||y||_1, giving
    cos(y, y') >= 2 sqrt(r (1 - r)) ||y||_1 / (sqrt(m) ||y||_2) for every k.
    The energy ||y||^2 is a sum of one sample per stratum: Hoeffding gives
    ||y||^2 >= sum_j mean_j(z^2) - sqrt(ln(1/delta) sum_j max_j(z^2)^2 / 2)
    except with probability delta = 1e-9, with z = H D g known exactly.
    """
    g = x.astype(np.float32).reshape(-1)
    n = g.size
    assume(n > 0 and np.abs(g).max() > 0)
    # Keep the reconstruction inside float32's normal range: beyond 2**100 it may overflow (NonFiniteError,
    # tested apart); below 2**-100 its elements round to subnormals, which the bound does not model.
    if np.abs(g).max() >= 2.0**100:
        g = (g * np.float32(2.0**-40)).astype(np.float32)
    elif np.abs(g).max() < 2.0**-100:
        g = (g.astype(np.float64) * 2.0**60).astype(np.float32)
    shape = [("g", (n,))]
    comp = VSAGradientCompressor(shape, VSAConfig(dimension=1, compression_ratio=ratio, seed=seed), "numpy",
                                 mode="per_tensor", error_feedback=True)
    for _ in range(step):  # advance the draw without changing the residual: compress zeros
        comp.compress({"g": np.zeros(n, np.float32)})
    e = comp._projection(0)
    # the compressor's power-of-two prescale (exact here; cosines are invariant under it)
    gs = np.ldexp(g.astype(np.float64), -math.frexp(float(np.abs(g).max()))[1]).astype(np.float32)
    assume(np.linalg.norm(gs.astype(np.float64)) > 1e-30)
    out = comp.decompress(comp.compress({"g": g}))["g"]
    z = SRHTProjection(n, e.nprime, seed, gain="unit", backend="numpy").forward(gs, step=step)
    y = SRHTProjection(n, e.d, seed, gain="unit", backend="numpy").forward(gs, step=step)[: e.m].astype(np.float64)
    gnorm = float(np.linalg.norm(gs.astype(np.float64)))
    ynorm = float(np.linalg.norm(y))
    assert ynorm**2 >= _strata_energy_bound(z, e.m) - 1e-5 * gnorm**2
    assume(ynorm > 0)
    flat = float(np.abs(y).sum()) / (math.sqrt(e.m) * ynorm)
    bound = 2 * math.sqrt(THRESHOLD_RATIO * (1 - THRESHOLD_RATIO)) * flat * ynorm / gnorm
    c = cos(g, out) if np.abs(out).max() > 0 else 0.0
    assert c >= bound - 1e-3, (c, bound)



def test_gaussian_fidelity_matches_the_projection_prediction():
    """Per tensor, unbiased gain: cosine within 0.02 of sqrt(m/N) * c_q.

    c_q = E|y| 1[|y| > t] / sqrt(P(|y| > t)) = 0.8999 is the cosine of a standard
    Gaussian with its least-squares ternarization at t = 0.75 E|y|.
    """
    t = THRESHOLD_RATIO * math.sqrt(2 / math.pi)
    gauss = 2 * stats.norm.pdf(t) / math.sqrt(2 * stats.norm.sf(t))
    g = make_gradients([("w", (256, 1024))], "gaussian", 1)
    for ratio in (0.05, 0.2):
        comp = VSAGradientCompressor([("w", (256, 1024))], VSAConfig(dimension=1, compression_ratio=ratio), mode="per_tensor")
        m = min(comp.dims[0], padded_length(256 * 1024))
        c = cos(g["w"], comp.decompress(comp.compress(g))["w"])
        assert abs(c - math.sqrt(m / padded_length(256 * 1024)) * gauss) < 0.02, (ratio, c)
        assert c > dense_projection_cosine(256 * 1024, comp.dims[0]) * gauss - 0.02


def test_a_single_tensor_bundle_equals_per_tensor_fidelity():
    """With one tensor the majority bundle is the bound vector itself: unbinding is exact."""
    shape = [("w", (64, 64))]
    g = grads(5, shape)
    cfg = VSAConfig(dimension=1024, seed=2)
    a = VSAGradientCompressor(shape, cfg, "numpy").decompress(VSAGradientCompressor(shape, cfg, "numpy").compress(g))
    b = VSAGradientCompressor(shape, cfg, "numpy", mode="per_tensor")
    assert b.dims == (1024,)
    assert_bit_equal(a["w"], b.decompress(b.compress(g))["w"])


def test_error_feedback_telescopes_and_stays_bounded():
    """sum_k g'_k = K g - e_K exactly up to rounding, and the residual stays bounded (mean error ~ 1/K)."""
    shape = [("w", (64, 128))]
    g = grads(6, shape)["w"]
    comp = VSAGradientCompressor(shape, VSAConfig(dimension=1, compression_ratio=0.1), mode="per_tensor", error_feedback=True)
    total = np.zeros(g.shape)
    norms = []
    for k in range(1, 121):
        total += comp.decompress(comp.compress({"w": g}))["w"]
        norms.append(float(np.linalg.norm(comp._residuals[0])))
    res = comp._residuals[0].reshape(g.shape).astype(np.float64)
    np.testing.assert_allclose(total + res, 120 * g.astype(np.float64), atol=1e-3 * np.abs(120 * g).max())
    gn = float(np.linalg.norm(g))
    assert max(norms) < 2 * padded_length(g.size) / comp.dims[0] * gn  # contraction: ||e|| <~ 2 N/m ||g||
    assert np.linalg.norm(total / 120 - g) / gn < 0.2
    comp.reset_error_feedback()
    assert not comp._residuals[0].any() and comp.residual_nbytes == 4 * g.size


def test_fidelity_table_rows():
    rows = fidelity_table([("w", (64, 96)), ("b", (96,))], ratios=(0.05, 0.5), backend="numpy")
    assert len(rows) == 2 * 3 * 2
    for r in rows:
        assert -1 <= r.cosine <= 1 and r.rel_l2 >= 0
        assert r.dense_cosine == pytest.approx(1 / math.sqrt(1 + r.params / r.compressed_dim))
        assert r.cosine > 0.5 * r.predicted_cosine
    hi = [r.cosine for r in rows if r.compression_ratio == 0.5]
    lo = [r.cosine for r in rows if r.compression_ratio == 0.05]
    assert min(hi) > max(lo)


# --- bad input ---------------------------------------------------------------------------------------


BAD = [
    ({}, ShapeError),
    ("not a mapping", DTypeError),
    ({**grads(0), "extra": np.zeros(2, np.float32)}, ShapeError),
    ({k: v for k, v in grads(0).items() if k != "fc2.bias"}, ShapeError),
    ({**grads(0), "fc2.bias": np.zeros(11, np.float32)}, ShapeError),
    ({**grads(0), "fc2.bias": np.zeros(10, np.int64)}, DTypeError),
    ({**grads(0), "fc2.bias": np.full(10, np.nan, np.float32)}, NonFiniteError),
    ({**grads(0), "fc2.bias": np.full(10, np.inf, np.float32)}, NonFiniteError),
]


@pytest.mark.parametrize("mode,ef", MODES)
@pytest.mark.parametrize("bad,error", BAD)
def test_bad_gradients_raise_and_change_nothing(bad, error, mode, ef):
    comp = VSAGradientCompressor(SHAPES, VSAConfig(dimension=256), "numpy", mode=mode, error_feedback=ef)
    comp.compress(grads(1))
    res = None if comp._residuals is None else [r.copy() for r in comp._residuals]
    with pytest.raises(error):
        comp.compress(bad)
    assert comp.step == 1
    if res is not None:
        assert all(np.array_equal(a, b) for a, b in zip(res, comp._residuals))


@pytest.mark.parametrize("mode,ef", MODES)
def test_a_reconstruction_beyond_float32_is_rejected(mode, ef):
    comp = VSAGradientCompressor([("w", (9,))], VSAConfig(dimension=4, seed=0), "numpy", mode=mode, error_feedback=ef)
    g = {"w": np.array([0] + [3.4028235e38] * 8, np.float32)}
    try:
        msg = comp.compress(g)
    except NonFiniteError:
        assert ef and comp.step == 0 and not comp._residuals[0].any()  # the residual would overflow
        return
    with pytest.raises(NonFiniteError):
        comp.decompress(msg)


def test_residual_overflow_is_rejected_and_changes_nothing():
    shape = [("w", (4,))]
    comp = VSAGradientCompressor(shape, VSAConfig(dimension=1, seed=1), "numpy", mode="per_tensor", error_feedback=True)
    comp.compress({"w": np.array([3e38, -3e38, 1e38, 0], np.float32)})
    res = comp._residuals[0].copy()
    assert np.abs(res).max() > 1e37
    with pytest.raises(NonFiniteError):
        comp.compress({"w": (np.sign(res) * np.float32(3.4e38)).astype(np.float32)})
    assert np.array_equal(res, comp._residuals[0]) and comp.step == 1


def test_decompress_rejects_messages_of_other_compressors():
    cfg = VSAConfig(dimension=256, seed=4)
    comp = VSAGradientCompressor(SHAPES, cfg, "numpy")
    msg = comp.compress(grads(0))
    cases = [
        (VSAGradientCompressor(SHAPES, VSAConfig(dimension=256, seed=5), "numpy"), ConfigError),
        (VSAGradientCompressor(SHAPES, VSAConfig(dimension=512, seed=4), "numpy"), ConfigError),
        (VSAGradientCompressor(SHAPES, VSAConfig(dimension=256, seed=4, use_ternary=False), "numpy"), ConfigError),
        (VSAGradientCompressor(SHAPES, cfg, "numpy", mode="per_tensor"), ConfigError),
        (VSAGradientCompressor(SHAPES[:3], cfg, "numpy"), ShapeError),
        (VSAGradientCompressor([(n, s[::-1]) for n, s in SHAPES], cfg, "numpy"), ShapeError),
        (VSAGradientCompressor([("x" + n, s) for n, s in SHAPES], cfg, "numpy"), ShapeError),
    ]
    for other, error in cases:
        with pytest.raises(error):
            other.decompress(msg)
        assert other.step == 0
    with pytest.raises(ConfigError):
        comp.decompress(msg.to_dict())


def test_malformed_messages_are_rejected():
    comp = VSAGradientCompressor(SHAPES, VSAConfig(dimension=256), "numpy")
    d = comp.compress(grads(0)).to_dict()
    bad_codes = {**d, "payload": [{**d["payload"][0], "hex": "ff" * 64}]}
    short = {**d, "payload": [{**d["payload"][0], "hex": "00" * 10, "shape": [10]}]}
    wrong_dtype = {**d, "payload": [{**d["payload"][0], "dtype": "int8"}]}
    nan_scale = {**d, "tensors": [{**d["tensors"][0], "scale": {"dtype": "float32", "shape": [1], "hex": "0000c07f"}}] + d["tensors"][1:]}
    for data in (bad_codes, short, wrong_dtype, nan_scale):
        with pytest.raises(EncodingError):
            comp.decompress(CompressedGradients.from_dict(data))
    for data in ({**d, "format": "other"}, {k: v for k, v in d.items() if k != "tensors"}, [1, 2]):
        with pytest.raises(EncodingError):
            CompressedGradients.from_dict(data)
    with pytest.raises(EncodingError):
        CompressedGradients.from_json("{not json")
    wrong_step = CompressedGradients.from_dict({**d, "step": 2**32})
    with pytest.raises(ConfigError):
        comp.decompress(wrong_step)


def test_bad_constructor_arguments():
    with pytest.raises(ConfigError):
        VSAGradientCompressor(SHAPES, VSAConfig(), "numpy", mode="bundled", error_feedback=True)
    with pytest.raises(ConfigError):
        VSAGradientCompressor(SHAPES, VSAConfig(), "numpy", mode="stacked")
    with pytest.raises(ConfigError):
        VSAGradientCompressor(SHAPES, {"dimension": 3}, "numpy")
    with pytest.raises(ConfigError):
        VSAGradientCompressor([], VSAConfig(), "numpy")
    with pytest.raises(ConfigError):
        VSAGradientCompressor(SHAPES, VSAConfig(), "numpy", error_feedback=1)


def _tampered(msg, **changes):
    """``msg`` with every tensor's metadata changed as given."""
    return dataclasses.replace(msg, tensors=tuple(dataclasses.replace(t, **changes) for t in msg.tensors))


@pytest.mark.parametrize("mode,ef", MODES)
@pytest.mark.parametrize("use_ternary", [True, False])
@pytest.mark.parametrize("exponent", [0, 100])
def test_overflowing_messages_raise_without_warnings(backend, mode, ef, use_ternary, exponent):
    """A scale, coordinates or prescale that overflow float32: NonFiniteError, and no numpy warnings escape."""
    comp = VSAGradientCompressor(SHAPES, VSAConfig(dimension=256, seed=2, use_ternary=use_ternary), backend,
                                 mode=mode, error_feedback=ef)
    msg = comp.compress(grads(0))
    if use_ternary:
        bad = _tampered(msg, scale=3e38, exponent=exponent)
    else:
        bad = _tampered(_filled_payload(msg, np.float32(3e38)), exponent=exponent)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(NonFiniteError, match="exceeds the float32 range"):
            comp.decompress(bad)


def _filled_payload(msg, value):
    """``msg`` with every payload coordinate set to ``value`` (float32 messages)."""
    return dataclasses.replace(msg, payload=tuple(np.full_like(p, value) for p in msg.payload))


@pytest.mark.parametrize("scale", [1e300, float("inf"), float("nan"), -1.0])
def test_scales_that_are_not_finite_float32_are_encoding_errors(scale):
    comp = VSAGradientCompressor(SHAPES, VSAConfig(dimension=256), "numpy")
    msg = comp.compress(grads(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(EncodingError, match="scale"):
            comp.decompress(_tampered(msg, scale=scale))


def test_float64_beyond_float32_is_reported_as_such():
    comp = VSAGradientCompressor(SHAPES, VSAConfig(dimension=256), "numpy")
    g = {k: v.astype(np.float64) for k, v in grads(0).items()}
    g["fc2.bias"][3] = 1e300
    with pytest.raises(NonFiniteError, match=r"fc2\.bias.*beyond the float32 range"):
        comp.compress(g)
    assert comp.step == 0
