"""vsaopt.advise: the noise-scale estimator, the gate model, the measurement, the result object, typed errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import vsaopt
from vsaopt.advise import Advice, advise, batch_ladder, estimate_noise_scale, noise_ratio
from vsaopt.advise.gate_model import expected_cosine, simulated_skip_share
from vsaopt.errors import ConfigError, DTypeError, NonFiniteError, ShapeError


class PerSampleProblem:
    """N fixed per-sample gradients ``G + e_i``: the true gradient and the noise trace are known exactly.

    ``loss_and_gradients(idx)`` is the mean of the rows ``idx`` (a mean loss), so a batch drawn with
    replacement has ``E|g_B|^2 = |G|^2 + S / B`` with ``S`` the population trace of the ``e_i``.
    """

    def __init__(self, n: int = 2000, dims: int = 50, noise: float = 3.0, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        g = rng.standard_normal(dims)
        e = rng.standard_normal((n, dims)) * noise
        e -= e.mean(axis=0)
        self.rows = (g + e).astype(np.float64)
        true = self.rows.mean(axis=0)
        self.true_noise_scale = float(((self.rows - true) ** 2).sum(axis=1).mean() / (true @ true))
        self.n, self.dims, self.calls = n, dims, 0

    def __call__(self, idx: np.ndarray):
        self.calls += 1
        grad = self.rows[idx].mean(axis=0).astype(np.float32)
        return float(grad @ grad), {"w": grad.reshape(5, -1)}

    @property
    def shapes(self):
        return [("w", (5, self.dims // 5))]


def test_namespace_exports_the_function_and_the_result():
    assert vsaopt.advise is advise and vsaopt.Advice is Advice
    assert "advise" in vsaopt.__all__


def test_estimator_formulas_are_exact_on_expected_norms():
    # |G|^2 = 2, S = 12: E|g_4|^2 = 2 + 3 = 5, E|g_16|^2 = 2 + 0.75 = 2.75
    ns = estimate_noise_scale([5.0, 5.0, 5.0], [2.75, 2.75, 2.75], 4, 16, seed=1)
    assert ns.gradient_sq == pytest.approx(2.0) and ns.trace == pytest.approx(12.0)
    assert ns.value == pytest.approx(6.0) and ns.low == ns.high == pytest.approx(6.0)


def test_estimator_recovers_a_known_noise_scale_from_sampled_gradients():
    problem = PerSampleProblem()
    advice = advise(problem, problem.shapes, problem.n, 32, rounds=40, small_batch=4, big_factor=16, seed=3,
                    run_steps=20)
    ns = advice.noise_scale
    assert ns.low <= problem.true_noise_scale <= ns.high
    assert ns.value == pytest.approx(problem.true_noise_scale, rel=0.25)
    # the consecutive-gradient estimate at fixed weights measures the same noise: 32 (1 - rho) / rho
    assert advice.noise_scale_rho == pytest.approx(problem.true_noise_scale, rel=0.35)


def test_unresolved_signal_is_an_infinite_noise_scale_and_round_trips_json():
    u = np.linspace(-1.0, 1.0, 10).astype(np.float32)
    calls = []

    def alternating(idx):  # +u, -u, +u, ...: every mean of an even number of draws is 0, |G|^2 estimates negative
        calls.append(1)
        return 0.0, {"w": u if len(calls) % 2 else -u}

    advice = advise(alternating, [("w", (10,))], 500, 16, rounds=6, seed=0, run_steps=30)
    assert advice.noise_scale.gradient_sq < 0 and advice.noise_scale.value == math.inf
    assert all(r.skip["phase"].value == 0.0 for r in advice.rows[:-1])
    back = Advice.from_json(advice.to_json())
    assert back.to_dict() == advice.to_dict() and back.noise_scale.value == math.inf
    assert "unresolved" in str(advice)


def test_the_same_seed_gives_the_same_advice_and_another_seed_other_draws():
    problem = PerSampleProblem(n=400, dims=10)
    a = advise(problem, problem.shapes, problem.n, 16, rounds=4, seed=5, run_steps=40)
    b = advise(problem, problem.shapes, problem.n, 16, rounds=4, seed=5, run_steps=40)
    c = advise(problem, problem.shapes, problem.n, 16, rounds=4, seed=6, run_steps=40)
    assert a.to_json() == b.to_json()
    assert a.noise_scale != c.noise_scale


def _linear_problem(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = (x @ np.arange(6, dtype=np.float32) + 0.5 * rng.standard_normal(n)).astype(np.float32)
    w = np.zeros(6, np.float32)

    def loss_and_gradients(idx):
        r = x[idx] @ w - y[idx]
        return float(r @ r / len(idx)), {"w": 2 * x[idx].T @ r / len(idx)}

    def update(grads):
        w[...] -= 0.02 * grads["w"]

    return loss_and_gradients, update, w


def test_with_an_update_the_drift_is_measured_and_the_run_is_bounded():
    fn, update, w = _linear_problem()
    advice = advise(fn, {"w": (6,)}, 256, 16, update=update, rounds=4, measure_steps=40, run_steps=50, seed=0)
    m = advice.measurement
    assert m["drift_measured"] and len(advice.drift_cosines) == 5
    assert m["training_steps"] == 40 and np.any(w != 0)
    # per round: 8 small gradients, the fixed batch before and after each of 5 steps; plus the training steps
    assert m["gradient_evaluations"] == 4 * (8 + 1 + 5) + 40
    assert advice.drift_angle[1] <= advice.drift_angle[0] <= advice.drift_angle[2]
    assert [r.batch_size for r in advice.rows] == batch_ladder(16, 256) == [16, 32, 64, 128, 256]


def test_result_prints_a_table_with_a_verdict_and_has_the_plot_data():
    fn, update, _ = _linear_problem()
    advice = advise(fn, {"w": (6,)}, 256, 16, update=update, rounds=4, measure_steps=20, run_steps=50, seed=0)
    text = str(advice)
    assert text.splitlines()[0].split()[:3] == ["batch", "noise/signal", "cosine"]
    assert advice.verdict.startswith("at batch 16, ") and advice.verdict in text
    data = advice.plot_data()
    assert data["batch_size"] == [16, 32, 64, 128, 256]
    assert len(data["phase_low"]) == 5 and all(lo <= v <= hi for lo, v, hi in
                                               zip(data["phase_low"], data["phase_value"], data["phase_high"]))
    assert json.loads(advice.to_json())["verdict"] == advice.verdict


def test_noise_ratio_uses_the_finite_population_and_full_batch_has_none():
    assert noise_ratio(100.0, 10, None) == 10.0
    assert noise_ratio(100.0, 10, 11) == pytest.approx(1.0)
    assert noise_ratio(math.inf, 11, 11) == 0.0


def test_gate_model_shares_follow_the_gate():
    assert simulated_skip_share("phase", math.inf, 0.0, 60, seed=0) == 0.0
    assert simulated_skip_share("phase", 0.0, 0.0, 60, seed=0) > 0.7
    # a cosine of 0.8 (nu = 0.25) allows one PREDICT step after each real one at safety 2
    assert 0.3 < simulated_skip_share("phase", 0.24, 0.0, 200, seed=0) <= 0.5
    assert expected_cosine(0.25, 0.0) == pytest.approx(0.8)


@pytest.mark.parametrize("kwargs, error, name", [
    ({"batch_size": 0}, ConfigError, "batch_size"),
    ({"batch_size": 401}, ConfigError, "batch_size"),
    ({"batch_size": True}, DTypeError, "batch_size"),
    ({"batch_size": 2.0}, DTypeError, "batch_size"),
    ({"n_samples": 1}, ConfigError, "n_samples"),
    ({"rounds": 1}, ConfigError, "rounds"),
    ({"rounds": 10, "measure_steps": 20, "update": lambda g: None}, ConfigError, "measure_steps"),
    ({"measure_steps": 10**6}, ConfigError, "measure_steps"),
    ({"seed": -1}, ConfigError, "seed"),
    ({"big_factor": 1}, ConfigError, "big_factor"),
    ({"update": 3}, DTypeError, "update"),
    ({"on_progress": "x"}, DTypeError, "on_progress"),
    ({"parameter_shapes": [("w", (2, -1))]}, ConfigError, "parameter_shapes"),
    ({"loss_and_gradients": None}, DTypeError, "loss_and_gradients"),
])
def test_bad_arguments_raise_typed_errors_before_any_call(kwargs, error, name):
    problem = PerSampleProblem(n=400, dims=10)
    args = {"loss_and_gradients": problem, "parameter_shapes": problem.shapes, "n_samples": 400, "batch_size": 16}
    args.update(kwargs)
    with pytest.raises(error, match=name):
        advise(**args)
    assert problem.calls == 0


@pytest.mark.parametrize("returned, error", [
    ({"w": np.zeros((2, 2), np.float32)}, ShapeError),
    ({"v": np.zeros(10, np.float32)}, ShapeError),
    ({"w": np.full(10, np.nan, np.float32)}, NonFiniteError),
    ({"w": np.zeros(10, np.int32)}, DTypeError),
    ("not a mapping", DTypeError),
])
def test_bad_gradients_from_the_callback_name_it(returned, error):
    with pytest.raises(error, match=r"loss_and_gradients"):
        advise(lambda idx: (0.0, returned), [("w", (10,))], 100, 8, rounds=2)


def test_a_callback_that_does_not_return_a_pair_is_refused():
    with pytest.raises(DTypeError, match=r"loss_and_gradients: expected a \(loss, gradients\) pair"):
        advise(lambda idx: {"w": np.zeros(10, np.float32)}, [("w", (10,))], 100, 8, rounds=2)


@pytest.mark.parametrize("text, message", [
    ("[]", "expected a JSON object"),
    ("{}", "missing field"),
    ('{"batch_size": 1}', "missing field"),
    ("not json", "Advice: invalid JSON"),
])
def test_malformed_json_is_a_config_error(text, message):
    with pytest.raises(ConfigError, match=message):
        Advice.from_json(text)


def test_a_tampered_field_is_a_config_error():
    fn, update, _ = _linear_problem()
    d = json.loads(advise(fn, {"w": (6,)}, 256, 16, rounds=2, run_steps=20, seed=0).to_json())
    d["drift_angle"] = [0.1]
    with pytest.raises(ConfigError, match="drift_angle"):
        Advice.from_dict(d)
