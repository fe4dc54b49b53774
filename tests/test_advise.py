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


# --- the measured row: the presets' own trainers on the measurement's steps --------------------------------------------


def _full_batch_quadratic(n=64, dims=8, lr=0.02, seed=0):
    """Least squares at full batch: smooth, predictable gradients; ``update`` records what it was given."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dims)).astype(np.float32)
    y = (x @ rng.standard_normal(dims).astype(np.float32)).astype(np.float32)
    w = np.zeros(dims, np.float32)
    state = {"last_real": None, "given": []}

    def loss_and_gradients(idx):
        r = x[idx] @ w - y[idx]
        g = {"w": (2 * x[idx].T @ r / len(idx)).astype(np.float32)}
        state["last_real"] = g["w"].copy()
        return float(r @ r / len(idx)), g

    def update(grads):
        state["given"].append(np.array(grads["w"], copy=True))
        w[...] -= lr * np.asarray(grads["w"])

    return loss_and_gradients, update, state


def test_the_measured_row_counts_the_phase_presets_own_skips_and_trains_with_its_predictions():
    fn, update, state = _full_batch_quadratic()
    seen = []

    def recording_update(grads):  # which steps got a prediction instead of this step's real gradient
        seen.append(not np.array_equal(np.asarray(grads["w"]), state["last_real"]))
        update(grads)

    advice = advise(fn, {"w": (8,)}, 64, 64, update=recording_update, rounds=4, measure_steps=40, run_steps=40, seed=0)
    how = advice.measurement["measured_batch"]["phase"]
    assert advice.here.measured and not any(r.measured for r in advice.rows[1:])
    assert how["measured_steps"] == 40 == len(seen)
    assert how["measured_skipped"] == sum(seen) > 20          # predictable: the gate opened
    # the whole run was measured at full batch: the driving preset's share is exact
    band = advice.here.skip["phase"]
    assert band.low == band.value == band.high == sum(seen) / 40
    # the phase preset reuses the last real gradient: every prediction is an earlier real one
    assert all(any(np.array_equal(g, h) for h in state["given"][:i]) for i, g in enumerate(state["given"]) if seen[i])
    assert "phase preset on the measured run: skipped" in str(advice)


def test_a_noise_dominated_problem_is_measured_as_closed_with_a_narrow_band():
    problem = PerSampleProblem(n=2000, dims=50, noise=30.0)

    def update(grads):  # the per-sample rows do not depend on weights: an update changes nothing
        pass

    advice = advise(problem, problem.shapes, problem.n, 16, update=update, rounds=4, measure_steps=80, run_steps=300,
                    seed=0)
    for preset in ("phase", "deterministic"):
        band = advice.here.skip[preset]
        assert band.value == 0.0 and band.high <= 0.05
    assert not advice.pays


def test_measured_band_rules_follow_the_gate_mechanics():
    from vsaopt.advise.extrapolate import TailEvidence, measured_share

    at_cap = [False, True, True, True, True] * 12   # 60 steps at the cap (4 of 5)
    full = TailEvidence(ceiling=0.0, full_batch=True)
    band, how = measured_share(at_cap, 300, full)
    assert band.value == pytest.approx(0.8) and band.high == pytest.approx(0.8) and band.low < 0.8
    assert how["tail_steps"] == 240 and how["count_interval"] == [48.0, 48.0]
    # below full batch the noise grows: the tail may close, so the low end is the count alone
    mini, _ = measured_share(at_cap, 300, TailEvidence(ceiling=0.8, full_batch=False))
    assert mini.low <= 48 / 300 and mini.high == pytest.approx(0.8, abs=0.01)
    # a trapped least-squares preset skips nothing more; an untrapped one may still shut (low end of the tail 0)
    ls = dict(full_batch=True, drives=False, can_trap=True, driving_count=48)
    trapped, _ = measured_share(at_cap[:30] + [False] * 30, 300, TailEvidence(ceiling=0.0, trapped=True, **ls))
    assert trapped.value == pytest.approx(24 / 300) and trapped.high <= 48 / 300 + 1e-12
    open_, _ = measured_share(at_cap, 300, TailEvidence(ceiling=0.0, **ls))
    assert open_.low < 0.2 < 0.8 - 1e-9 <= open_.high
    # a run no longer than the measurement has no tail
    short, how = measured_share(at_cap, 50, full)
    assert how["tail_steps"] == 0 and short.value == short.low == short.high == 40 / 50
    with pytest.raises(ValueError):
        measured_share([], 10, full)


def test_counting_helpers():
    from vsaopt.advise.extrapolate import first_stretch, poisson_interval, skip_runs

    assert skip_runs([]) == [] and skip_runs([True] * 3) == [3]
    assert first_stretch([False, True, False, True, False, False, True]) == 2 and first_stretch([False] * 5) == 0
    lo, hi = poisson_interval(0)
    assert lo == 0.0 and hi == pytest.approx(math.log(10.0), rel=1e-6)     # P(X = 0 | mu) = 0.1
    lo, hi = poisson_interval(7, level=0.9)
    assert lo < 7 < hi


def test_model_rows_are_widened_by_the_models_error_at_the_measured_batch():
    from vsaopt.advise.model_error import MODEL_MARGIN

    fn, update, _ = _linear_problem(n=256)
    advice = advise(fn, {"w": (6,)}, 256, 16, update=update, rounds=4, measure_steps=40, run_steps=100, seed=0)
    here = advice.here
    error = {p: here.skip[p].value - here.model_skip[p].value for p in here.skip}
    for row in advice.rows[1:]:
        for preset, band in row.skip.items():
            margin = max(abs(error[preset]), MODEL_MARGIN)
            assert band.low <= max(0.0, band.value - margin) + 1e-12
            assert band.high >= min(0.8, band.value + margin) - 1e-12 or band.high >= 0.8 - 1e-12
        assert row.skip["deterministic"].low == 0.0
    back = Advice.from_json(advice.to_json())
    assert back.here.measured and back.here.model_skip == here.model_skip


def test_the_advised_band_holds_a_real_run_of_the_same_setting():
    from vsaopt.advise.bundled import advise_bundled
    from vsaopt.train.results import TrainSettings
    from vsaopt.train.run import run_training

    settings = TrainSettings(dataset="iris", steps=150, seed=0, batch_size=120, lr=0.0316, momentum=0.9, hidden=(16,),
                             eval_every=150, backend="numpy", timing_warmup_steps=0, interleave=0)
    run = run_training(settings, ["phase"])
    advice = advise_bundled("iris", None, (16,), lr=0.0316, seed=0, backend="numpy", run_steps=150, rounds=4,
                            measure_steps=60)
    realized = run.modes["phase"].backward_skipped_share
    assert realized > 0.2 and advice.here.skip["phase"].contains(realized)


def test_shares_equal_to_within_rounding_count_as_equal():
    from vsaopt.advise import ShareBand
    from vsaopt.advise.result import BatchAdvice

    thirty_of_300 = 1 - 270 / 300                       # 0.1 less one rounding
    assert thirty_of_300 < 0.1 and ShareBand(0.1, 0.1, 0.1).contains(thirty_of_300)
    band = ShareBand(thirty_of_300, 0.0, 0.2)
    assert BatchAdvice(16, 1.0, 0.5, {"phase": band, "deterministic": band}).pays
    assert not ShareBand(0.1, 0.1, 0.1).contains(0.1 + 1e-6)


def test_calibration_compares_each_seeds_advice_with_its_own_run():
    from vsaopt.benchmarks.advise_calibration import calibrate
    from vsaopt.train.suite_matrix import SuiteSetting

    (row,) = calibrate([SuiteSetting("iris", None, (8,), 60)], seeds=[0, 1], backend="numpy")
    assert [a.seed for a in row.advices] == [0, 1] and all(a.here.measured for a in row.advices)
    for preset in ("phase", "deterministic"):
        per_seed = [a.here.skip[preset].contains(r) for a, r in zip(row.advices, row.realized_per_seed[preset])]
        assert row.contained(preset) == all(per_seed)
        assert row.contained_median(preset) == row.advice.here.skip[preset].contains(row.realized[preset])
        assert 0.0 <= row.band_width(preset) <= 1.0
    assert row.verdict_right == all(a.pays == (r >= 0.1 - 1e-9)
                                    for a, r in zip(row.advices, row.realized_per_seed["phase"]))
    json.dumps(row.to_dict(), allow_nan=False)


def test_predicted_gradients_reach_update_in_the_dtype_the_callback_returned():
    fn32, update32, state = _full_batch_quadratic()
    dtypes = []

    def fn64(idx):
        loss, g = fn32(idx)
        return loss, {"w": g["w"].astype(np.float64)}

    def update(grads):
        dtypes.append(grads["w"].dtype)
        update32({"w": grads["w"].astype(np.float32)})

    advice = advise(fn64, {"w": (8,)}, 64, 64, update=update, rounds=4, measure_steps=40, run_steps=40, seed=0)
    assert advice.measurement["measured_batch"]["phase"]["measured_skipped"] > 0
    assert set(dtypes) == {np.dtype(np.float64)}
