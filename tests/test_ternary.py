"""Ternary quantizers: the threshold rule, unbiased stochastic rounding, errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from vsaopt import reductions, ternary
from vsaopt.errors import ConfigError, DTypeError, NonFiniteError
from vsaopt.testing import assert_bit_equal, to_host
from vsaopt.testing.strategies import float32_arrays


def test_threshold_rule_example(backend):
    x = backend.xp.asarray(np.array([0.9, -0.1, -2.0, 0.3, 0.4125, -0.4125], np.float32))
    trits, scale = ternary.quantize_deterministic(x, backend=backend)
    # mean |x| = 4.125 / 6 = 0.6875, threshold 0.34375
    assert to_host(trits).tolist() == [1, 0, -1, 0, 1, -1]
    assert scale == np.float32(2.0)


@given(float32_arrays(), st.floats(0, 3))
def test_threshold_rule_matches_its_definition(x, ratio):
    trits, scale = ternary.quantize_deterministic(x, ratio=ratio, backend="numpy")
    flat = x.reshape(-1).astype(np.float64)
    mean = np.float32(reductions.abs_sum(x, backend="numpy") / flat.size) if flat.size else np.float32(0)
    with np.errstate(over="ignore"):
        t = np.float32(ratio) * mean
    expected = np.where(x > t, 1, np.where(x < -t, -1, 0)).astype(np.int8)
    assert_bit_equal(trits, expected)
    assert scale == (np.abs(x).max() if x.size else 0)


@given(float32_arrays())
def test_stochastic_trits_keep_sign_and_support(x):
    trits, scale = ternary.quantize_stochastic(x, seed=3, backend="numpy")
    assert trits.shape == x.shape and trits.dtype == np.int8
    assert np.all(trits * np.sign(x) >= 0)  # never the opposite sign
    assert np.all(trits[x == 0] == 0)
    if x.size and scale > 0:
        assert np.all(trits[np.abs(x) == scale] == np.sign(x[np.abs(x) == scale]))  # p = 1 is certain


def test_stochastic_is_unbiased(backend):
    """Per element, the count of nonzero trits over 400 seeds is Binomial(400, |x|/s)."""
    x = np.array([0.05, -0.25, 0.5, -0.75, 0.9, 1.0, -0.01, 0.33], np.float32)
    seeds = 400
    counts = np.zeros(x.size)
    for seed in range(seeds):
        t, s = ternary.quantize_stochastic(backend.xp.asarray(x), seed=seed, step=7, backend=backend)
        counts += np.abs(to_host(t))
        assert s == np.float32(1.0)
    p = np.abs(x).astype(np.float64)
    # Two-sided binomial acceptance region at 1e-9 per element (a Bonferroni bound
    # over 8 elements): a correct implementation fails with probability < 1e-8.
    lo, hi = stats.binom.ppf(0.5e-9, seeds, p), stats.binom.isf(0.5e-9, seeds, p)
    assert np.all((counts >= lo) & (counts <= hi)), (counts, lo, hi)


def test_stochastic_mean_estimate_converges():
    """The average of s * t over many independent steps approaches x (a Hoeffding bound)."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(512) * np.exp(rng.standard_normal(512))).astype(np.float32)
    steps = 300
    total = np.zeros(x.size)
    for step in range(steps):
        t, s = ternary.quantize_stochastic(x, seed=11, step=step, backend="numpy")
        total += t * np.float64(s)
    s = float(np.abs(x).max())
    # |s t - x| <= 2s; Hoeffding: P(|mean - x| > eps) <= 2 exp(-steps eps^2 / (8 s^2)); eps for 1e-9 / 512.
    eps = s * np.sqrt(8 * np.log(2 * 512 / 1e-9) / steps)
    assert np.all(np.abs(total / steps - x) <= eps)


def test_reproducible_and_step_dependent():
    x = np.linspace(-1, 1, 101, dtype=np.float32)
    a, _ = ternary.quantize_stochastic(x, seed=5, step=1, backend="numpy")
    b, _ = ternary.quantize_stochastic(x, seed=5, step=1, backend="numpy")
    c, _ = ternary.quantize_stochastic(x, seed=5, step=2, backend="numpy")
    assert_bit_equal(a, b)
    assert not np.array_equal(a, c)


def test_float64_input_is_rounded_to_float32():
    x64 = np.array([0.1, -0.7, 0.3], np.float64)
    assert_bit_equal(
        ternary.quantize_deterministic(x64, backend="numpy"),
        ternary.quantize_deterministic(x64.astype(np.float32), backend="numpy"),
    )


@pytest.mark.parametrize("fn", ["quantize_deterministic", "quantize_stochastic"])
@pytest.mark.parametrize(
    "x, error",
    [
        (np.array([1, 2], np.int32), DTypeError),
        (np.array([True, False]), DTypeError),
        (np.array([1.0, np.nan], np.float32), NonFiniteError),
        (np.array([np.inf], np.float64), NonFiniteError),
        (np.array([1e300], np.float64), NonFiniteError),  # overflows float32
        ([[1.0], [2.0, 3.0]], DTypeError),
    ],
)
def test_bad_input(fn, x, error, backend):
    if backend.name == "cupy" and isinstance(x, list):
        pytest.skip("cupy takes cupy arrays")
    with pytest.raises(error, match="x"):
        if fn == "quantize_deterministic":
            ternary.quantize_deterministic(x, backend=backend)
        else:
            ternary.quantize_stochastic(x, seed=0, backend=backend)


@pytest.mark.parametrize("kwargs", [{"threshold": -1.0}, {"threshold": np.nan}, {"ratio": -0.5}, {"ratio": "a"}])
def test_bad_threshold(kwargs):
    with pytest.raises((ConfigError, DTypeError), match="threshold|ratio"):
        ternary.quantize_deterministic(np.ones(3, np.float32), backend="numpy", **kwargs)
