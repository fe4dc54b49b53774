"""vsaopt.train: the regression data set and head, pass-unit accounting, controls matched to phase's realized schedule, telemetry."""

import json

import numpy as np
import pytest

pytest.importorskip("sklearn")

from click.testing import CliRunner  # noqa: E402

from vsaopt.cli.commands import cli  # noqa: E402
from vsaopt.phase import DeterministicPhaseConfig, PhaseConfig  # noqa: E402
from vsaopt.train import MLP, ModeResult, RunResult, TrainSettings, load_dataset, run_training  # noqa: E402
from vsaopt.train.controls import plan_controls, reuse_mask, skip_mask, small_batch_size  # noqa: E402
from vsaopt.train.data import holdout  # noqa: E402

TELEMETRY_KEYS = {"prediction_cosine", "rho", "quality", "noise_scale", "predict_budget"}


# --- data and model ----------------------------------------------------------------------------


def test_iris_is_a_stratified_classification():
    ds = load_dataset("iris", seed=2, backend="numpy")
    assert (ds.n_classes, ds.n_outputs, ds.is_regression) == (3, 3, False)
    assert [(ds.y_test == c).sum() for c in range(3)] == [10, 10, 10]


def test_diabetes_is_an_unstratified_standardized_regression():
    a = load_dataset("diabetes", seed=5, backend="numpy")
    b = load_dataset("diabetes", seed=5, backend="numpy")
    assert a.is_regression and a.n_outputs == 1 and a.n_classes == 0
    assert a.y_train.dtype == np.float32 and np.array_equal(a.y_test, b.y_test)
    assert a.x_train.shape[0] + a.x_test.shape[0] == 442 and a.x_test.shape[0] == round(442 * 0.2)
    # the target is standardized with the training rows' statistics
    assert abs(float(a.y_train.mean())) < 1e-5 and abs(float(a.y_train.std()) - 1.0) < 1e-5
    assert not np.array_equal(a.y_test, load_dataset("diabetes", seed=6, backend="numpy").y_test)


def test_holdout_splits_only_the_training_rows():
    ds = load_dataset("diabetes", seed=0, backend="numpy")
    val = holdout(ds, 0.25, seed=1, backend="numpy")
    train_rows = {r.tobytes() for r in ds.x_train}
    test_rows = {r.tobytes() for r in ds.x_test}
    held = [r.tobytes() for r in val.x_test]
    assert all(r in train_rows for r in held) and not any(r in test_rows for r in held)
    assert val.x_train.shape[0] + val.x_test.shape[0] == ds.x_train.shape[0]
    assert {r.tobytes() for r in val.x_train}.isdisjoint(held)


def test_mse_head_gradient_matches_finite_differences(numeric_gradient):
    net = MLP([3, 5, 1], seed=4, backend="numpy", loss="mse", matmul="blas")  # float64: the ordered product is float32
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=7)
    for k in net.params:
        net.params[k] = net.params[k].astype(np.float64)
    loss, grads = net.loss_and_gradients(x, y)
    z = net.logits(x)[:, 0]
    assert loss == pytest.approx(float(np.mean((z - y) ** 2)), rel=1e-12)
    numeric = numeric_gradient(net, x, y)
    for k, p in net.params.items():
        for i in np.ndindex(p.shape):
            assert grads[k][i] == pytest.approx(numeric[k][i], rel=1e-5, abs=1e-8), (k, i)


# --- pass units and targets ---------------------------------------------------------------------


def _mode(name, backward, forward, metric_values, metric="accuracy", batch_fraction=1.0):
    steps = len(backward)
    evals = list(range(0, steps + 1, 2))
    acc = metric_values if metric == "accuracy" else []
    loss = metric_values if metric == "mse" else [1.0] * len(evals)
    return ModeResult(name, ["FULL"] * steps, backward, forward, [0.1 * (i + 1) for i in range(steps)], [None] * steps,
                      evals, [0.1 * s for s in evals], acc, loss, metric=metric, batch_fraction=batch_fraction)


def test_pass_units_count_forward_one_and_backward_two():
    r = _mode("phase", [True, False, False, True], [True, True, False, True], [0.1, 0.5, 0.9])
    assert r.step_pass_units() == [3.0, 1.0, 0.0, 3.0] and r.pass_units == 7.0
    assert r.backward_skipped_share == 0.5
    half = _mode("small_batch", [True] * 4, [True] * 4, [0.1, 0.5, 0.9], batch_fraction=0.5)
    assert half.pass_units == 6.0
    assert r.pass_units_to(0.5) == 4.0 and r.pass_units_to(0.95) is None


def test_speedups_and_drops_of_a_classification():
    base = _mode("baseline", [True] * 4, [True] * 4, [0.1, 0.8, 0.9])
    fast = _mode("phase", [True, False, True, False], [True, False, True, False], [0.1, 0.9, 0.88])
    run = RunResult(TrainSettings(steps=4).to_dict(), "m", {"baseline": base, "phase": fast})
    assert run.metric == "accuracy" and run.target_metric == pytest.approx(0.895)
    assert run.pass_units_to_target("baseline") == 12.0 and run.pass_units_to_target("phase") == 3.0
    assert run.pass_speedup("phase") == 4.0
    assert run.speedup("phase") == pytest.approx(0.4 / 0.2)
    assert run.metric_drop("phase") == pytest.approx(2.0)


def test_a_regression_target_is_lower_mse():
    base = _mode("baseline", [True] * 4, [True] * 4, [1.0, 0.6, 0.5], metric="mse")
    good = _mode("phase", [True] * 4, [True] * 4, [1.0, 0.52, 0.6], metric="mse")
    bad = _mode("skip", [True] * 4, [True] * 4, [1.0, 0.9, 0.8], metric="mse")
    run = RunResult(TrainSettings(steps=4).to_dict(), "m", {"baseline": base, "phase": good, "skip": bad})
    assert run.metric == "mse" and not base.higher_is_better
    assert run.target_metric == pytest.approx(0.525) and run.target_accuracy is None
    assert run.time_to_target("phase") == pytest.approx(0.2)  # 0.52 <= 0.525: reached at the second evaluation
    assert run.time_to_target("skip") is None and run.pass_speedup("skip") is None
    assert run.metric_drop("phase") == pytest.approx(20.0) and run.metric_drop("baseline") == 0.0
    summary = run.summary()["phase"]
    assert summary["metric"] == "mse" and summary["higher_is_better"] is False and "final_test_accuracy" not in summary


def test_a_regression_run_reports_test_mse():
    s = TrainSettings(dataset="diabetes", steps=20, hidden=(8,), batch_size=32, lr=0.01, eval_every=5, backend="numpy",
                      timing_warmup_steps=0)
    run = run_training(s, ["phase"])
    base = run.modes["baseline"]
    assert base.metric == "mse" and base.eval_accuracy == [] and len(base.eval_loss) == 5
    assert base.eval_loss[-1] < base.eval_loss[0]  # it learns
    assert RunResult.from_json(run.to_json()) == run


# --- controls ------------------------------------------------------------------------------------


def test_control_plan_follows_the_realized_schedule():
    backward = [True, False, True, True, False, False, False, True, False, True]
    plan = plan_controls(backward, batch_size=64, seed=3)
    assert plan.skip.sum() == backward.count(False) and not plan.skip[0]
    assert plan.reuse.tolist() == [not b for b in backward]
    assert plan.small_batch == round(64 / (10 / 5))
    assert small_batch_size(5, 100, 1) == 1 and small_batch_size(64, 10, 10) == 64
    assert np.array_equal(skip_mask(40, 13, seed=9), skip_mask(40, 13, seed=9))
    assert reuse_mask([True, True]).tolist() == [False, False]


@pytest.mark.parametrize("preset", ["risky_fixed", "recommended"])
def test_controls_copy_phase_in_a_run(preset):
    configs = {"phase_config": getattr(PhaseConfig, preset)(), "deterministic_config": getattr(DeterministicPhaseConfig, preset)()}
    s = TrainSettings(dataset="wine", steps=40, hidden=(8,), batch_size=142, lr=0.05, eval_every=10, backend="numpy",
                      interleave=7, timing_warmup_steps=5, **configs)  # full batch: the gate may let it predict
    run = run_training(s, ["phase", "skip", "reuse", "small_batch"])
    assert list(run.modes) == ["baseline", "phase", "skip", "reuse", "small_batch"]
    phase, skip, reuse, small = (run.modes[m] for m in ("phase", "skip", "reuse", "small_batch"))
    skipped = phase.steps - phase.backward_passes
    assert skip.steps - skip.backward_passes == skipped and skip.backward[0]
    assert reuse.backward == phase.backward
    assert set(reuse.phase) <= {"FULL", "REUSE"} and reuse.phase.count("REUSE") == skipped
    assert small.backward_passes == small.steps == 40
    assert small.batch_fraction == small_batch_size(142, 40, phase.backward_passes) / 142
    if preset == "risky_fixed":
        assert skipped > 0 and small.batch_fraction < 1
    # the controls' wall-clock reference: a baseline run of their own round
    assert phase.baseline_eval_time == [] and len(skip.baseline_eval_time) == len(skip.eval_time)
    assert skip.baseline_eval_time == reuse.baseline_eval_time != run.modes["baseline"].eval_time


def test_a_control_wall_speedup_uses_the_baseline_of_its_round():
    base = _mode("baseline", [True] * 4, [True] * 4, [0.1, 0.8, 0.9])
    skip = _mode("skip", [True] * 4, [True] * 4, [0.1, 0.9, 0.9])
    run = RunResult(TrainSettings(steps=4).to_dict(), "m", {"baseline": base, "skip": skip})
    assert run.speedup("skip") == pytest.approx(0.4 / 0.2)  # the first round's baseline reaches 0.895 at 0.4 s
    skip.baseline_eval_time = [0.0, 1.0, 3.0]  # its round's baseline was slower
    assert run.speedup("skip") == pytest.approx(3.0 / 0.2)
    assert run.pass_speedup("skip") == 2.0  # pass units do not depend on the clock


def test_telemetry_is_recorded_at_real_gradient_steps_and_written_to_json(tmp_path):
    out = tmp_path / "run.json"
    args = ["train", "--dataset", "wine", "--steps", "20", "--hidden", "8", "--batch-size", "16", "--eval-every", "5",
            "--backend", "numpy", "--preset", "risky_fixed", "--json", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "pass units" in result.output and "skip" in result.output and "telemetry at step" in result.output
    doc = json.loads(out.read_text())
    for mode in ("phase", "deterministic"):
        r = doc["modes"][mode]
        assert len(r["telemetry"]) == 20
        assert [t is not None for t in r["telemetry"]] == r["backward"]
        measured = [t for t in r["telemetry"] if t is not None]
        assert all(TELEMETRY_KEYS <= set(t) for t in measured)
        assert measured[-1]["samples"] > 0 and -1.0 <= measured[-1]["rho"] <= 1.0
        # the batch size was passed: a noise scale B (1 - rho) / rho wherever rho > 0
        for t in measured:
            positive = t["rho"] is not None and t["rho"] > 0
            assert (t["noise_scale"] is not None) == positive
            if positive:
                assert t["noise_scale"] == pytest.approx(16 * (1 - t["rho"]) / t["rho"], rel=1e-6)
        assert any(t["noise_scale"] is not None for t in measured)
        assert r["summary"]["pass_units"] == 3 * r["summary"]["backward_passes"]
    assert doc["modes"]["baseline"]["telemetry"] == [] and doc["modes"]["skip"]["telemetry"] == []
    assert set(doc["summary"]["phase"]) >= {"pass_units_to_target", "pass_speedup", "wall_speedup", "metric_drop"}
