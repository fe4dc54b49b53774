"""Ternary gradient accumulation: memory held, unbiasedness, the threshold rule, reproducibility, errors."""

import numpy as np
import pytest
from scipy import stats

from vsaopt import ternary
from vsaopt.accumulator import COUNT_MAX, OptimizerStats, TernaryGradientAccumulator, TernaryOptimizerWrapper
from vsaopt.config import TernaryConfig
from vsaopt.errors import BackendError, CheckpointError, ConfigError, DTypeError, NonFiniteError, ShapeError
from vsaopt.testing import assert_bit_equal, to_host

SHAPES = [("layer1.weight", (16, 32)), ("layer1.bias", (16,)), ("layer2.weight", (8, 16))]


def grads(seed, scale=1.0, shapes=SHAPES):
    rng = np.random.Generator(np.random.PCG64(seed))
    return {n: (rng.standard_normal(s) * scale).astype(np.float32) for n, s in shapes}


def on(be, g):
    return {k: be.xp.asarray(v) for k, v in g.items()}


def held_counts(state):
    """The held count arrays of an accumulator state dict, in tensor order."""
    arrays = state["arrays"]
    return [arrays[f"counts.{i}"] for i in range(sum(k.startswith("counts.") for k in arrays))]


def state_bytes(acc):
    s = acc.state_dict()
    a, h = s["arrays"], s["header"]["state"]
    return [c.tobytes() for c in held_counts(s)] + [a[k].tobytes() for k in ("exp", "bound", "has_scale", "scale_sum")] + [
        h["count"],
        h["calls"],
    ]


# --- cross-backend identity -----------------------------------------------------


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("stochastic", [True, False])
def test_every_backend_gives_the_reference_bytes_on_a_long_run(fast_backend, reference, stochastic, bits):
    """140 steps with scales jumping by 100x and back: rescales, halvings, same bytes everywhere."""
    cfg = TernaryConfig(use_stochastic_rounding=stochastic, seed=2**64 - 3)
    ref = TernaryGradientAccumulator(SHAPES, cfg, backend=reference, count_bits=bits)
    cand = TernaryGradientAccumulator(SHAPES, cfg, backend=fast_backend, count_bits=bits)
    for k in range(140):
        g = grads(k, scale=(100.0, 1.0, 0.01)[k % 3])
        ref.accumulate(g)
        cand.accumulate(on(fast_backend, g))
    assert state_bytes(cand) == state_bytes(ref)
    rm, cm = ref.get_accumulated(), cand.get_accumulated()
    for n, _ in SHAPES:
        assert_bit_equal(cm[n], fast_backend.xp.asarray(rm[n]), n)


# --- memory --------------------------------------------------------------------------


def test_state_is_int8_counts_plus_per_tensor_scalars(backend):
    acc = TernaryGradientAccumulator([("w", (768, 3072)), ("b", (3072,))], backend=backend)
    acc.accumulate({"w": np.ones((768, 3072), np.float32), "b": np.ones(3072, np.float32)})
    n = 768 * 3072 + 3072
    state = acc.state_dict()
    assert [c.dtype for c in held_counts(state)] == [np.int8, np.int8]
    assert all(state["arrays"][k].shape == (2,) for k in ("exp", "bound", "has_scale", "scale_sum"))
    assert acc.nbytes == n + 2 * (2 + 2 + 1 + 8)
    assert acc.float32_nbytes == 4 * n
    assert acc.float32_nbytes / acc.nbytes > 3.99
    assert acc.memory_savings() == pytest.approx(1 - acc.nbytes / (4 * n))


def test_nibble_counts_hold_eight_times_less(backend):
    acc = TernaryGradientAccumulator([("w", (768, 3072)), ("b", (3071,))], backend=backend, count_bits=4)
    acc.accumulate({"w": np.ones((768, 3072), np.float32), "b": np.ones(3071, np.float32)})
    state = acc.state_dict()
    assert [c.dtype for c in held_counts(state)] == [np.uint8, np.uint8]
    assert [c.shape for c in held_counts(state)] == [(768 * 3072 // 2,), (1536,)]
    assert acc.float32_nbytes / acc.nbytes > 7.99
    assert acc.memory_savings() > 0.874


def test_wrapper_reports_the_measured_saving(backend):
    w = TernaryOptimizerWrapper(SHAPES, TernaryConfig(accumulation_steps=2), backend=backend)
    w.step(grads(0))
    stats_ = w.get_stats()
    assert stats_.memory_savings == w.accumulator.memory_savings()
    assert 0.7 < stats_.memory_savings < 0.75


# --- unbiasedness ------------------------------------------------------------------------


def _crate_estimate(steps, seed):
    """vsa-optim-rs 0.1.1: TernGrad per step (scale = max|g_k|), then sum(trits) * mean(scales) / K."""
    trits, scales = [], []
    for k, g in enumerate(steps):
        t, s = ternary.quantize_stochastic(g, seed=seed, step=k, backend="numpy")
        trits.append(t.astype(np.float64))
        scales.append(float(s))
    return np.sum(trits, axis=0) * np.mean(scales) / len(steps)


@pytest.mark.parametrize("bits", [8, 4])
def test_stochastic_mean_is_unbiased_when_scales_differ_by_100x(bits):
    """One-sample t-tests over 300 seeds of <estimate - true mean, u> for three fixed directions u.

    The micro-batches alternate scales 0.01 and 1 (100x), and the small ones
    share a direction the large ones do not, so a scale-mixing estimator is
    visibly biased.  Runs use distinct seeds, hence independent Philox draws;
    each statistic is a mean of 300 iid values, and the t-test (scipy.stats)
    rejects at p < 1e-7 each: a correct implementation fails with probability
    below 3e-7.  With 4-bit counts the eighth step halves the counts first.  The crate's estimator, run on the same data, must be rejected
    (p < 1e-7), which shows the test has the power to see the bias.
    """
    n, runs = 256, 300
    rng = np.random.Generator(np.random.PCG64(2024))
    common = np.abs(rng.standard_normal(n))
    steps = []
    for k in range(8):
        if k % 2:
            steps.append((rng.standard_normal(n) * 1.0).astype(np.float32))
        else:
            steps.append(((common + 0.3 * rng.standard_normal(n)) * 0.01).astype(np.float32))
    true = np.mean(np.stack(steps).astype(np.float64), axis=0)
    directions = [np.ones(n), np.sign(true), rng.standard_normal(n)]
    ours = np.empty((runs, len(directions)))
    crate = np.empty((runs, len(directions)))
    for r in range(runs):
        acc = TernaryGradientAccumulator([("g", (n,))], TernaryConfig(seed=r), backend="numpy", count_bits=bits)
        for g in steps:
            acc.accumulate({"g": g})
        est = acc.get_accumulated()["g"].astype(np.float64)
        ours[r] = [(est - true) @ u for u in directions]
        crate[r] = [(_crate_estimate(steps, 10_000 + r) - true) @ u for u in directions]
    p_ours = stats.ttest_1samp(ours, 0.0).pvalue
    p_crate = stats.ttest_1samp(crate, 0.0).pvalue
    assert np.all(p_ours > 1e-7), p_ours
    assert np.any(p_crate < 1e-7), p_crate


def test_rescaling_alone_is_unbiased():
    """Counts of 1..127 rescaled by 2**-s: the mean over 2000 seeds is within a binomial bound of c / 2**s."""
    from vsaopt.backend import get_backend

    be = get_backend("numpy")
    c = np.array([1, 3, 5, 7, 127, -1, -3, -127, 64, -64], np.int8)
    for shift in (1, 3, 7):
        total = np.zeros(c.size)
        for seed in range(2000):
            total += be.accum_rescale(c.copy(), shift, seed, 5, 0, 0)
        frac = (c.astype(np.int64) % (1 << shift)) / (1 << shift)
        lo = stats.binom.ppf(1e-9, 2000, frac) + 2000 * np.floor(c / (1 << shift))
        hi = stats.binom.isf(1e-9, 2000, frac) + 2000 * np.floor(c / (1 << shift))
        assert np.all((total >= lo) & (total <= hi)), (shift, total, lo, hi)


# --- the headroom rule: counts halved only when a measured count is at the maximum ------------------


def _rounding_variance(exp: int, steps: int) -> float:
    """Upper bound of the variance of one element of the mean of ``steps`` micro-batches of 1.0 at final scale 2**exp.

    An add at scale ``2**E`` keeps a +1 with ``p = 2**-E``: variance ``4**E p (1 - p) <= 2**E``
    in the units of the sum; halving a count by stochastic rounding adds at most ``4**E / 4``,
    and the halvings happen at ``E = 1, 2, ..., exp``, which sums to at most ``4**exp / 3``.
    ``E`` never decreases, so over ``steps`` adds ``Var(sum) <= steps 2**exp + 4**exp / 3``;
    the mean divides the sum by ``steps``.
    """
    return (steps * 2.0**exp + 4.0**exp / 3) / steps**2


def _check_mean_of_ones(acc, steps: int, n: int) -> None:
    """The mean is unbiased within 6 standard deviations (element average) and its spread within the bound."""
    bits = acc.count_bits
    exp = int(acc.state_dict()["arrays"]["exp"][0])
    mean = to_host(acc.get_accumulated()["g"]).astype(np.float64)
    var = _rounding_variance(exp, steps)
    # the elements' draws are independent given the past, so their average has variance var / n
    assert abs(mean.mean() - 1.0) <= 6 * np.sqrt(var / n), (bits, steps, exp, mean.mean())
    assert np.sqrt(np.mean((mean - 1.0) ** 2)) <= 1.5 * np.sqrt(var), (bits, steps, exp)
    # the scale grows with the sum, not with the number of steps: a count reaches C = 127 (7) only
    # while the elements' mean count is a fraction of C (at least C / 16 here, C / 4 typically);
    # the worst-case rule of spec version 6 reached 2**19 at 64 steps of 4-bit counts
    assert 2.0**exp <= max(1.0, 16.0 * steps / COUNT_MAX[bits]), (bits, steps, exp)


@pytest.mark.parametrize("bits", [8, 4])
def test_the_mean_of_many_micro_batches_of_one_stays_at_the_rounding_level(bits):
    """Means of 64, 100 and 4096 micro-batches of 1.0: 1 within the stochastic-rounding tolerance of their scale.

    Before the measured headroom rule, 4-bit counts gave a mean of 2.0 after 64
    steps and 0.0 after 100; 8-bit counts 0.0 after 2048.
    """
    n = 256
    acc = TernaryGradientAccumulator([("g", (n,))], TernaryConfig(seed=5), backend="numpy", count_bits=bits)
    ones = {"g": np.ones(n, np.float32)}
    for k in range(1, 4097):
        acc.accumulate(ones)
        if k in (64, 100, 4096):
            _check_mean_of_ones(acc, k, n)
    counts = to_host(acc._load(0))
    assert counts.dtype == np.int8 and 0 <= counts.min() and counts.max() <= int(acc._bound[0]) <= COUNT_MAX[bits]


def test_threshold_mode_halves_only_at_a_measured_maximum():
    """400 threshold-mode steps of 1.0 with 4-bit counts: h grows with the sum; the mean stays 1 within its tolerance.

    The worst-case rule halved every third step and raised "too many halvings" after 389 steps.
    """
    n = 256
    cfg = TernaryConfig(use_stochastic_rounding=False, seed=9)
    acc = TernaryGradientAccumulator([("g", (n,))], cfg, backend="numpy", count_bits=4)
    ones = {"g": np.ones(n, np.float32)}
    for _ in range(400):
        acc.accumulate(ones)
    _check_mean_of_ones(acc, 400, n)  # the scale sum is exactly 400: the unit is 2**h, as in stochastic mode


def test_no_overflow_error_for_gradients_near_one_after_5000_steps():
    """Gradients in [0.9, 1] with 8-bit counts: no NonFiniteError and a scale of 2**9 at most after 5000 steps.

    The worst-case rule's exponent grew by one every 63 steps: 2**78 after 5000 steps, NonFiniteError at 8128.
    """
    rng = np.random.Generator(np.random.PCG64(3))
    steps = (0.9 + 0.1 * rng.random((5000, 2))).astype(np.float32)
    acc = TernaryGradientAccumulator([("g", (2,))], TernaryConfig(seed=1), backend="numpy")
    for g in steps:
        acc.accumulate({"g": g})
    total = steps.astype(np.float64).sum(axis=0)
    exp = int(acc.state_dict()["arrays"]["exp"][0])
    assert exp <= 9
    mean = to_host(acc.get_accumulated()["g"]).astype(np.float64)
    assert np.all(np.abs(mean - total / 5000) <= 6 * np.sqrt(_rounding_variance(exp, 5000)))


def test_large_gradients_reach_the_float32_limit_only_when_the_sum_does():
    """Gradients of 2**120 go on for 600 steps (the worst-case rule raised at 569); 2**126 raises only past 2**133.

    The sum of k steps of 2**126 is k 2**126; the accumulator raises when a count would need
    E = 128, i.e. when the represented sum nears 127 * 2**127, beyond the float32 maximum (< 2**128).
    """
    acc = TernaryGradientAccumulator([("g", (3,))], TernaryConfig(seed=2), backend="numpy")
    big = {"g": np.full(3, 2.0**120, np.float32)}
    for _ in range(600):
        acc.accumulate(big)
    assert int(acc.state_dict()["arrays"]["exp"][0]) <= 124
    acc = TernaryGradientAccumulator([("g", (3,))], TernaryConfig(seed=2), backend="numpy")
    huge = {"g": np.full(3, 2.0**126, np.float32)}
    steps = 0
    with pytest.raises(NonFiniteError, match="float32 range"):
        while True:
            before = state_bytes(acc)
            acc.accumulate(huge)
            steps += 1
    assert state_bytes(acc) == before
    assert steps * 2.0**126 >= 2.0**133


def test_a_halving_is_planned_from_the_measured_counts_and_a_later_error_changes_nothing():
    """Tensor 0 at the count maximum (a measured halving is planned), tensor 1 out of range: nothing changes."""
    acc = TernaryGradientAccumulator([("a", (4,)), ("b", (2,))], TernaryConfig(seed=4), backend="numpy", count_bits=4)
    for _ in range(7):
        acc.accumulate({"a": np.ones(4, np.float32), "b": np.ones(2, np.float32)})
    before = state_bytes(acc)
    with pytest.raises(NonFiniteError):
        acc.accumulate({"a": np.ones(4, np.float32), "b": np.full(2, 3e38, np.float32)})
    assert state_bytes(acc) == before
    acc.accumulate({"a": np.ones(4, np.float32), "b": np.ones(2, np.float32)})
    assert acc.state_dict()["arrays"]["exp"].tolist() == [1, 1]


def test_opposite_signs_are_never_halved():
    """200 steps alternating +1 and -1 (counts 0 and 1): the worst-case bound passes 127, the exponent stays 0."""
    acc = TernaryGradientAccumulator([("g", (5,))], backend="numpy", count_bits=8)
    for k in range(200):
        acc.accumulate({"g": np.full(5, 1.0 if k % 2 == 0 else -1.0, np.float32)})
    assert int(acc.state_dict()["arrays"]["exp"][0]) == 0
    assert to_host(acc.get_accumulated()["g"]).tolist() == [0.0] * 5


def test_count_abs_max_is_exact_on_every_backend(backend):
    c = np.array([3, -128, 127, 0, -7], np.int8)
    assert backend.count_abs_max(backend.xp.asarray(c)) == 128
    assert backend.count_abs_max(backend.xp.asarray(c[2:])) == 127
    assert backend.count_abs_max(backend.xp.asarray(np.zeros(0, np.int8))) == 0
    assert type(backend.count_abs_max(backend.xp.asarray(c))) is int


def test_count_abs_max_of_the_numba_backend_is_its_own_kernel():
    """A fast backend that lacked the kernel would have to fail, not borrow the reference's."""
    from vsaopt.backend import backend_status, get_backend

    if backend_status()["numba"] != "available":
        pytest.skip("numba is not available")
    assert get_backend("numba").count_abs_max.__module__.endswith("numba.accum")


def test_accumulate_refuses_a_count_past_the_exact_divisor():
    from vsaopt.accumulator import MAX_COUNT

    acc = TernaryGradientAccumulator([("g", (2,))], backend="numpy")
    acc.accumulate({"g": np.ones(2, np.float32)})
    state = acc.state_dict()
    state["header"]["state"]["count"] = state["header"]["state"]["calls"] = MAX_COUNT + 1
    with pytest.raises(CheckpointError):
        acc.load_state_dict(state)
    acc._count = MAX_COUNT  # reachable only after 2**53 calls
    before = state_bytes(acc)
    with pytest.raises(ConfigError, match="count"):
        acc.accumulate({"g": np.ones(2, np.float32)})
    assert state_bytes(acc) == before


# --- the threshold rule ---------------------------------------------------------------------------


def test_threshold_mode_follows_the_rule_and_the_least_squares_scale(backend):
    g = np.array([0.9, -0.1, -2.0, 0.3, 0.05, -0.6], np.float32)
    cfg = TernaryConfig(use_stochastic_rounding=False, ternary_threshold=0.5)
    acc = TernaryGradientAccumulator([("g", (6,))], cfg, backend=backend)
    acc.accumulate({"g": backend.xp.asarray(g)})
    want, _ = ternary.quantize_deterministic(g, ratio=0.5, backend="numpy")
    assert to_host(held_counts(acc.state_dict())[0]).tolist() == want.tolist() == [1, 0, -1, 0, 0, -1]
    alpha = np.float32((0.9 + 2.0 + 0.6) / 3)
    assert_bit_equal(to_host(acc.get_accumulated()["g"]), (want.astype(np.float64) * float(alpha)).astype(np.float32))


def test_threshold_mode_is_biased():
    """Documented: entries below the threshold vanish, so the mean is not recovered."""
    g = np.array([1.0, 0.1, 0.1, 0.1], np.float32)
    acc = TernaryGradientAccumulator([("g", (4,))], TernaryConfig(use_stochastic_rounding=False), backend="numpy")
    for _ in range(4):
        acc.accumulate({"g": g})
    assert to_host(acc.get_accumulated()["g"]).tolist() == [1.0, 0.0, 0.0, 0.0]


# --- reproducibility --------------------------------------------------------------------------------


def test_same_seed_same_bytes_and_another_seed_differs(backend):
    def run(seed):
        acc = TernaryGradientAccumulator(SHAPES, TernaryConfig(seed=seed), backend=backend)
        for k in range(5):
            acc.accumulate(on(backend, grads(k, scale=10.0 ** (k - 2))))
        return state_bytes(acc), {k: to_host(v).tobytes() for k, v in acc.get_accumulated().items()}

    assert run(11) == run(11)
    assert run(11)[0] != run(12)[0]


@pytest.mark.parametrize("bits", [8, 4])
def test_state_dict_round_trip_after_measured_halvings_continues_identically(backend, bits):
    """Saved while the bound holds a measured maximum (and after halvings): the resumed run gives the same bytes."""
    one = {"g": np.ones(6, np.float32)}
    a = TernaryGradientAccumulator([("g", (6,))], TernaryConfig(seed=8), backend=backend, count_bits=bits)
    for _ in range(COUNT_MAX[bits] + 9):
        a.accumulate(on(backend, one))
    assert int(a.state_dict()["arrays"]["exp"][0]) >= 1
    b = TernaryGradientAccumulator([("g", (6,))], TernaryConfig(seed=8), backend=backend, count_bits=bits)
    b.load_state_dict(a.state_dict())
    for _ in range(2 * COUNT_MAX[bits]):
        a.accumulate(on(backend, one))
        b.accumulate(on(backend, one))
    assert state_bytes(a) == state_bytes(b)


@pytest.mark.parametrize("bits", [8, 4])
def test_state_dict_round_trip_continues_identically(backend, bits):
    a = TernaryGradientAccumulator(SHAPES, TernaryConfig(seed=3), backend=backend, count_bits=bits)
    for k in range(3):
        a.accumulate(on(backend, grads(k)))
    saved = a.state_dict()
    b = TernaryGradientAccumulator(SHAPES, TernaryConfig(seed=3), backend=backend, count_bits=bits)
    b.load_state_dict(saved)
    for k in range(3, 6):
        a.accumulate(on(backend, grads(k, 50.0)))
        b.accumulate(on(backend, grads(k, 50.0)))
    assert state_bytes(a) == state_bytes(b)


def test_mismatched_or_tampered_state_is_rejected_and_changes_nothing():
    a = TernaryGradientAccumulator(SHAPES, TernaryConfig(seed=3), backend="numpy")
    a.accumulate(grads(0))
    before = state_bytes(a)
    good = a.state_dict()
    other = TernaryGradientAccumulator(SHAPES, TernaryConfig(seed=4), backend="numpy").state_dict()
    bad_bound = {"header": good["header"], "arrays": dict(good["arrays"], bound=np.zeros(3, np.int16))}
    bad_counts = {"header": good["header"], "arrays": dict(good["arrays"], **{"counts.0": good["arrays"]["counts.0"].astype(np.int16)})}
    missing = {"header": good["header"], "arrays": {k: v for k, v in good["arrays"].items() if k != "exp"}}
    packed = TernaryGradientAccumulator(SHAPES, TernaryConfig(seed=3), backend="numpy", count_bits=4).state_dict()
    for state in (other, bad_bound, bad_counts, missing, packed):
        with pytest.raises(CheckpointError):
            a.load_state_dict(state)
        assert state_bytes(a) == before


# --- API of the crate ----------------------------------------------------------------------------------


def test_count_reset_and_ready_for_update(backend):
    acc = TernaryGradientAccumulator(SHAPES, TernaryConfig(accumulation_steps=2), backend=backend)
    assert acc.count == 0 and not acc.ready_for_update()
    assert all(to_host(v).tolist() == np.zeros(s).tolist() for (n, s), v in zip(SHAPES, acc.get_accumulated().values()))
    acc.accumulate(on(backend, grads(0)))
    acc.accumulate(on(backend, grads(1)))
    assert acc.count == 2 and acc.ready_for_update()
    acc.reset()
    assert acc.count == 0 and all(not to_host(c).any() for c in held_counts(acc.state_dict()))


def test_zero_gradients_keep_the_mean_over_all_steps(backend):
    acc = TernaryGradientAccumulator([("g", (3,))], backend=backend)
    acc.accumulate({"g": np.full(3, 1.0, np.float32)})
    acc.accumulate({"g": np.zeros(3, np.float32)})
    assert to_host(acc.get_accumulated()["g"]).tolist() == [0.5, 0.5, 0.5]


def test_float64_and_float16_are_converted_to_float32(backend):
    g32 = grads(4)
    a = TernaryGradientAccumulator(SHAPES, backend=backend)
    b = TernaryGradientAccumulator(SHAPES, backend=backend)
    a.accumulate(g32)
    b.accumulate({k: v.astype(np.float64) for k, v in g32.items()})
    assert state_bytes(a) == state_bytes(b)
    a.accumulate({k: v.astype(np.float16) for k, v in g32.items()})


def test_wrapper_steps_updates_and_state():
    w = TernaryOptimizerWrapper(SHAPES, TernaryConfig(accumulation_steps=4), backend="numpy")
    assert [w.step(grads(k)) for k in range(4)] == [False, False, False, True]
    out = w.get_gradients_for_update()
    assert sorted(out) == sorted(n for n, _ in SHAPES) and all(v.dtype == np.float32 for v in out.values())
    assert w.accumulator.count == 0
    assert w.step(grads(5)) is False
    s = w.get_stats()
    assert (s.step_count, s.update_count, s.accumulation_steps) == (5, 1, 4)
    assert str(s).startswith("Steps: 5 | Updates: 1 | Memory saved: ")
    w.load_state(16, 4)
    assert (w.step_count, w.update_count) == (16, 4)
    w.reset_state()
    assert (w.step_count, w.update_count) == (0, 0)
    with pytest.raises(ConfigError):
        w.load_state(-1, 0)
    assert OptimizerStats(1, 0, 0.5, 8).to_dict()["memory_savings"] == 0.5


# --- bad input -------------------------------------------------------------------------------------------


BAD = [
    ({}, ShapeError),
    ([("layer1.weight", None)], DTypeError),
    ({**grads(0), "extra": np.zeros(3, np.float32)}, ShapeError),
    ({k: v for k, v in grads(0).items() if k != "layer1.bias"}, ShapeError),
    ({**grads(0), "layer1.bias": np.zeros(15, np.float32)}, ShapeError),
    ({**grads(0), "layer1.bias": np.zeros(16, np.int32)}, DTypeError),
    ({**grads(0), "layer1.bias": np.zeros(16, np.complex64)}, DTypeError),
    ({**grads(0), "layer2.weight": np.full((8, 16), np.nan, np.float32)}, NonFiniteError),
    ({**grads(0), "layer2.weight": np.full((8, 16), -np.inf, np.float32)}, NonFiniteError),
]


@pytest.mark.parametrize("stochastic,bits", [(True, 8), (False, 8), (True, 4)])
@pytest.mark.parametrize("bad,error", BAD)
def test_bad_gradients_raise_typed_errors_and_change_nothing(bad, error, stochastic, bits):
    cfg = TernaryConfig(use_stochastic_rounding=stochastic)
    acc = TernaryGradientAccumulator(SHAPES, cfg, backend="numpy", count_bits=bits)
    acc.accumulate(grads(1, scale=0.001))
    before = state_bytes(acc)
    with pytest.raises(error):
        acc.accumulate(bad)
    assert state_bytes(acc) == before


def test_a_scale_beyond_float32_is_rejected_and_changes_nothing():
    """max |g| > 2**127 needs a scale of 2**128; the first tensor is fine, the last is not."""
    acc = TernaryGradientAccumulator(SHAPES, backend="numpy")
    acc.accumulate(grads(1))
    before = state_bytes(acc)
    with pytest.raises(NonFiniteError):
        acc.accumulate({**grads(0), "layer2.weight": np.full((8, 16), 3e38, np.float32)})
    assert state_bytes(acc) == before


def test_bad_constructor_arguments():
    with pytest.raises(ConfigError):
        TernaryGradientAccumulator([], backend="numpy")
    with pytest.raises(ConfigError):
        TernaryGradientAccumulator([("a", (2,)), ("a", (3,))], backend="numpy")
    with pytest.raises(ConfigError):
        TernaryGradientAccumulator([("a", (-1,))], backend="numpy")
    with pytest.raises(ConfigError):
        TernaryGradientAccumulator([("a", (2,))], config={"seed": 1}, backend="numpy")
    with pytest.raises(ConfigError):
        TernaryGradientAccumulator([("a", (2,))], backend="no-such-backend")
    for bits in (2, 16, True, "8"):
        with pytest.raises(ConfigError):
            TernaryGradientAccumulator([("a", (2,))], backend="numpy", count_bits=bits)


def test_an_array_of_another_device_kind_is_rejected():
    class FakeCupy:
        __module__ = "cupy._core"
        dtype = np.dtype(np.float32)
        shape = (2,)

    acc = TernaryGradientAccumulator([("a", (2,))], backend="numpy")
    with pytest.raises(BackendError):
        acc.accumulate({"a": FakeCupy()})


@pytest.mark.parametrize("n", [0, 1, 5, 6, 19, 20])
def test_nibble_unpack_ignores_bytes_past_n_counts_on_every_backend(backend, reference, n):
    packed = (np.arange(10, dtype=np.uint8) * 17).astype(np.uint8)
    want = reference.nibble_unpack(packed, n)
    got = backend.nibble_unpack(backend.xp.asarray(packed), n)
    assert to_host(got).tobytes() == want.tobytes() and got.shape == (n,)


# --- probes: edge inputs around the headroom rule --------------------------------------------------


def test_threshold_mode_with_an_empty_and_a_zero_tensor_never_halves():
    """Tensors that never gain a count used to be halved every third call (4-bit) until "too many halvings" at 389."""
    cfg = TernaryConfig(use_stochastic_rounding=False)
    acc = TernaryGradientAccumulator([("e", (0,)), ("z", (3,))], cfg, backend="numpy", count_bits=4)
    for _ in range(400):
        acc.accumulate({"e": np.zeros(0, np.float32), "z": np.zeros(3, np.float32)})
    assert acc.state_dict()["arrays"]["exp"].tolist() == [0, 0]


def test_count_bits_may_be_a_numpy_integer():
    acc = TernaryGradientAccumulator([("g", (3,))], backend="numpy", count_bits=np.int64(4))
    assert acc.count_bits == 4 and type(acc.count_bits) is int
    for bad in (np.bool_(True), np.float64(4.0), np.int8(5)):
        with pytest.raises(ConfigError, match="count_bits"):
            TernaryGradientAccumulator([("g", (3,))], backend="numpy", count_bits=bad)


def test_count_abs_max_refuses_counts_that_are_not_int8(backend):
    with pytest.raises(DTypeError, match="counts"):
        backend.count_abs_max(backend.xp.asarray(np.array([300, -5], np.int16)))


def test_error_benchmark_measures_the_collapse_and_its_fix():
    from vsaopt.benchmarks.accumulator_error import accumulator_error

    rows = accumulator_error((8, 64), elements=32, count_bits=(4,), gradients=("constant",))
    got = {(r.rule, r.micro_batches): r for r in rows}
    assert got[("ideal", 64)].relative_error == 0.0  # p = 1: exact without a count limit
    assert got[("measured", 64)].exponent <= 7 and got[("measured", 64)].relative_error < 1.0
    old = accumulator_error((64,), elements=32, count_bits=(4,), gradients=("constant",), rules=("worst_case",))
    assert old[0].exponent == 19 and old[0].relative_error == 1.0  # the spec 6 rule: the mean collapsed to 0


@pytest.mark.parametrize("kwargs", [
    {"micro_batches": "12"}, {"micro_batches": (2.5,)}, {"micro_batches": (0,)}, {"micro_batches": ()},
    {"elements": True}, {"elements": 0}, {"seed": -1}, {"count_bits": (3,)}, {"gradients": ("uniform",)},
    {"rules": ("best",)}, {"rules": "ideal"},
])
def test_error_benchmark_checks_its_arguments_first(kwargs):
    from vsaopt.benchmarks.accumulator_error import accumulator_error
    from vsaopt.errors import OptimError

    with pytest.raises(OptimError):
        accumulator_error(**{"micro_batches": (1,), "elements": 4, **kwargs})
