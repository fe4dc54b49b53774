"""vsaopt.train and ``vsaopt train``: data split, MLP backward pass, optimizer, runs and their JSON."""

import json
import math

import numpy as np
import pytest

pytest.importorskip("sklearn")

from click.testing import CliRunner  # noqa: E402

from vsaopt.cli.commands import cli  # noqa: E402
from vsaopt.errors import ConfigError, DTypeError, OptimError, ShapeError  # noqa: E402
from vsaopt.phase import DeterministicPhaseConfig, PhaseConfig  # noqa: E402
from vsaopt.train import MLP, RunResult, SGDMomentum, TrainSettings, batch_schedule, load_dataset, run_training  # noqa: E402
from vsaopt.train.run import nominal_predict_share  # noqa: E402


# --- data -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["digits", "wine", "breast_cancer"])
def test_split_is_deterministic_disjoint_and_stratified(name):
    a = load_dataset(name, seed=3, backend="numpy")
    b = load_dataset(name, seed=3, backend="numpy")
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert a.x_train.dtype == np.float32
    # no test row also appears in training
    train_rows = {r.tobytes() for r in a.x_train}
    assert sum(r.tobytes() in train_rows for r in a.x_test) <= 2  # digits holds a few duplicate images
    # every class keeps its share (within one sample) in the test split
    all_y = np.concatenate([a.y_train, a.y_test])
    for c in np.unique(all_y):
        share = (all_y == c).sum() * 0.2
        assert abs((a.y_test == c).sum() - share) <= 1
    # standardized with training statistics
    assert np.abs(a.x_train.mean(axis=0)).max() < 1e-4


def test_split_depends_on_the_seed():
    a = load_dataset("digits", seed=0, backend="numpy")
    b = load_dataset("digits", seed=1, backend="numpy")
    assert not np.array_equal(a.y_test, b.y_test)


def test_unknown_dataset_is_a_config_error():
    with pytest.raises(ConfigError, match="dataset"):
        load_dataset("mnist")


def test_batch_schedule_covers_each_epoch_once():
    b = batch_schedule(100, 10, 25, seed=4)
    assert b.shape == (25, 10)
    for epoch in range(2):
        assert sorted(b[epoch * 10 : (epoch + 1) * 10].ravel()) == list(range(100))
    assert not np.array_equal(b[:10], b[10:20])
    assert np.array_equal(b, batch_schedule(100, 10, 25, seed=4))


# --- model and optimizer --------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[5, 3], [5, 7, 3], [4, 6, 5, 3]])
def test_mlp_backward_matches_finite_differences(sizes, numeric_gradient):
    net = MLP(sizes, seed=1, backend="numpy", matmul="blas")  # float64 parameters: the ordered product is float32 only
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, sizes[0]))
    y = rng.integers(0, sizes[-1], 9)
    for k in net.params:  # float64 copy: finite differences need the precision
        net.params[k] = net.params[k].astype(np.float64) + rng.normal(scale=0.1, size=net.params[k].shape)
    loss, grads = net.loss_and_gradients(x, y)
    assert loss == pytest.approx(net.loss(x, y), rel=1e-12)
    numeric = numeric_gradient(net, x, y)
    for k in net.params:
        assert grads[k].shape == net.params[k].shape
        np.testing.assert_allclose(grads[k], numeric[k], rtol=1e-5, atol=1e-8, err_msg=k)


def test_mlp_float32_gradients_and_same_init_for_same_seed():
    a = MLP([64, 32, 10], seed=7, backend="numpy")
    b = MLP([64, 32, 10], seed=7, backend="numpy")
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    ds = load_dataset("digits", backend="numpy")
    loss, grads = a.loss_and_gradients(ds.x_train[:16], ds.y_train[:16])
    assert all(g.dtype == np.float32 for g in grads.values())
    assert 0 < loss < 10


def test_training_reduces_the_loss():
    ds = load_dataset("digits", backend="numpy")
    net = MLP([64, 32, 10], seed=0, backend="numpy")
    opt = SGDMomentum(net.params, lr=0.05, momentum=0.9)
    before = net.loss(ds.x_train, ds.y_train)
    for idx in batch_schedule(ds.x_train.shape[0], 64, 60, seed=0):
        opt.step(net.loss_and_gradients(ds.x_train[idx], ds.y_train[idx])[1])
    assert net.loss(ds.x_train, ds.y_train) < 0.5 * before
    assert net.accuracy(ds.x_test, ds.y_test) > 0.85


def test_sgd_momentum_matches_the_formula():
    p = {"w": np.array([1.0, -2.0], np.float32)}
    opt = SGDMomentum(p, lr=0.1, momentum=0.5)
    g1, g2 = np.array([1.0, 2.0], np.float32), np.array([-1.0, 0.5], np.float32)
    opt.step({"w": g1})
    opt.step({"w": g2})
    v = 0.5 * g1 + g2
    np.testing.assert_allclose(p["w"], np.array([1.0, -2.0]) - 0.1 * g1 - 0.1 * v, rtol=1e-6)
    with pytest.raises(ConfigError, match="lr"):
        SGDMomentum(p, lr=0.0)


# --- runs -------------------------------------------------------------------------------------


def _small(**kw):
    # fixed schedules: these runs predict whatever the measured predictability (the gated presets may not in 24 steps)
    base = dict(steps=24, hidden=(16,), batch_size=32, eval_every=6, backend="numpy", interleave=5,
                phase_config=PhaseConfig.risky_fixed(), deterministic_config=DeterministicPhaseConfig.risky_fixed())
    base.update(kw)
    return TrainSettings(**base)


def test_modes_share_init_data_order_and_record_every_step():
    run = run_training(_small(), ["phase", "deterministic", "skip"])
    assert list(run.modes) == ["baseline", "phase", "deterministic", "skip"]
    base = run.modes["baseline"]
    assert base.backward_passes == base.forward_passes == 24
    # all modes start from the same weights: same accuracy before the first step
    assert len({r.eval_accuracy[0] for r in run.modes.values()}) == 1
    for r in run.modes.values():
        assert r.steps == len(r.time) == len(r.loss) == 24
        assert r.eval_step == [0, 6, 12, 18, 24]
        assert all(t2 >= t1 for t1, t2 in zip(r.time, r.time[1:]))
        # a measured loss exactly on the steps that ran a forward pass
        assert [v is not None for v in r.loss] == r.forward
        assert all(f for b, f in zip(r.backward, r.forward) if b)
    phase = run.modes["phase"]
    assert set(phase.phase) <= {"FULL", "PREDICT", "CORRECT"} and "PREDICT" in phase.phase
    assert [p != "PREDICT" for p in phase.phase] == phase.backward
    assert run.modes["skip"].backward_passes == phase.backward_passes
    assert "WARMUP" in run.modes["deterministic"].phase


def test_runs_are_reproducible_apart_from_their_times():
    a = run_training(_small(steps=12, eval_every=4), ["phase"])
    b = run_training(_small(steps=12, eval_every=4), ["phase"])
    for m in a.modes:
        assert a.modes[m].loss == b.modes[m].loss
        assert a.modes[m].eval_accuracy == b.modes[m].eval_accuracy


def test_loss_every_controls_forward_passes_of_predicted_steps():
    for every in (0, 1, 2):
        run = run_training(_small(loss_every=every), ["phase"])
        r = run.modes["phase"]
        light = r.steps - r.backward_passes
        extra = r.forward_passes - r.backward_passes
        assert extra == (light if every == 1 else light // every if every else 0)


def test_run_result_round_trips_json_and_computes_target():
    run = run_training(_small(diagnose=True), ["phase"])
    again = RunResult.from_json(run.to_json())
    assert again == run
    doc = json.loads(run.to_json())
    assert doc["target_accuracy"] == pytest.approx(run.modes["baseline"].final_test_accuracy - 0.005)
    assert set(doc["summary"]["phase"]) >= {"backward_passes", "time_to_target", "speedup"}
    assert run.speedup("baseline") in (1.0, None)
    phase = run.modes["phase"]
    used = [c for c in phase.pred_cosine if c is not None]
    assert len(used) == phase.steps - phase.backward_passes and all(-1.0 <= c <= 1.0 for c in used)
    assert TrainSettings.from_dict(doc["settings"]) == _small(diagnose=True)


def test_settings_validation():
    with pytest.raises(ConfigError, match="steps"):
        TrainSettings(steps=0)
    with pytest.raises(ConfigError, match="modes"):
        run_training(_small(), ["fast"])


def test_nominal_predict_share_of_the_presets():
    assert nominal_predict_share(PhaseConfig(full_steps=1, predict_steps=1, correct_every=5), 100) == 0.5
    assert 0.0 < nominal_predict_share(PhaseConfig.recommended(), 600) < 1.0


# --- command line ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["baseline", "phase", "deterministic", "skip"])
def test_cli_train_runs_every_mode(mode, tmp_path):
    out = tmp_path / "run.json"
    args = ["train", "--mode", mode, "--steps", "12", "--hidden", "16", "--batch-size", "32", "--eval-every", "4",
            "--backend", "numpy", "--json", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "speedup" in result.output and mode in result.output
    doc = json.loads(out.read_text())
    assert set(doc["modes"]) == {"baseline", mode}
    assert doc["modes"][mode]["summary"]["steps"] == 12


def test_cli_train_all_modes_with_plot_and_options(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "run.png"
    args = ["train", "--dataset", "wine", "--steps", "16", "--hidden", "8", "--batch-size", "16", "--eval-every", "4",
            "--backend", "numpy", "--full-steps", "2", "--predict-steps", "2", "--warmup-steps", "3", "--plot", str(png),
            "--json", str(tmp_path / "r.json")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((tmp_path / "r.json").read_text())
    assert list(doc["modes"]) == ["baseline", "phase", "deterministic", "skip"]
    assert doc["settings"]["phase_config"]["full_steps"] == 2
    assert doc["settings"]["deterministic_config"]["warmup_steps"] == 3


def test_cli_crate_preset_uses_the_crate_defaults(tmp_path):
    out = tmp_path / "r.json"
    args = ["train", "--mode", "deterministic", "--preset", "crate", "--steps", "8", "--hidden", "8", "--batch-size",
            "16", "--backend", "numpy", "--json", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["settings"]["deterministic_config"] == DeterministicPhaseConfig().to_dict()


def test_interleaving_changes_only_the_clock():
    a = run_training(_small(interleave=0), ["phase", "deterministic", "skip"])
    b = run_training(_small(interleave=3), ["phase", "deterministic", "skip"])
    for m in a.modes:
        ra, rb = a.modes[m], b.modes[m]
        assert ra.phase == rb.phase and ra.loss == rb.loss and ra.eval_accuracy == rb.eval_accuracy


def test_skip_control_never_skips_the_first_step_and_skips_exactly_count():
    from vsaopt.train.run import _skip_steps

    mask = _skip_steps(50, 30, seed=1)
    assert not mask[0] and mask.sum() == 30
    assert np.array_equal(mask, _skip_steps(50, 30, seed=1))
    assert _skip_steps(5, 99, seed=0).sum() == 4


def test_train_framework_torch_compares_plain_torch_and_both_trainers(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "torch.json"
    # a fixed schedule: the gated presets may predict no step of this short run
    result = CliRunner().invoke(cli, ["train", "--framework", "torch", "--batch-size", "256", "--preset", "risky_fixed",
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert set(doc["runs"]) == {"phase", "deterministic"}
    for run in doc["runs"].values():
        torch_run, ours = run["modes"]["torch"], run["modes"]["vsaopt"]
        assert ours["steps"] == torch_run["steps"] and ours["backward_passes"] < torch_run["backward_passes"]
    assert "vsaopt deterministic" in result.output


def test_train_framework_torch_rejects_other_datasets():
    result = CliRunner().invoke(cli, ["train", "--framework", "torch", "--dataset", "wine"])
    assert result.exit_code != 0 and "digits" in result.output


@pytest.mark.parametrize("text", ["[" * 100_000, "{}", '{"settings": 1, "machine": {}, "modes": []}', "1" * 5000, None])
def test_a_malformed_run_result_is_a_config_error(text):
    from vsaopt.errors import ConfigError
    from vsaopt.train import RunResult

    with pytest.raises(ConfigError, match="RunResult"):
        RunResult.from_json(text)


def test_a_trainer_mode_that_diverges_finishes_as_diverged():
    from vsaopt.phase import DeterministicPhaseConfig, PhaseConfig

    s = TrainSettings(steps=40, hidden=(16,), batch_size=64, lr=50.0, eval_every=10, backend="numpy", interleave=0,
                      phase_config=PhaseConfig.risky_fixed(), deterministic_config=DeterministicPhaseConfig.risky_fixed())
    run = run_training(s, ["phase", "deterministic"])  # the trainers refuse NaN gradients; the run goes on without them
    for mode in ("phase", "deterministic"):
        r = run.modes[mode]
        assert r.steps == 40 and len(r.telemetry) == 40
        assert not math.isfinite(r.eval_loss[-1])
        assert r.trainer_stats["total_steps"] < 40  # the trainer stopped when the model diverged


# --- the MLP and the optimizer check their arguments before they touch anything ---------------------


def _state(net_or_params) -> list[bytes]:
    params = net_or_params.params if isinstance(net_or_params, MLP) else net_or_params
    return [v.tobytes() for v in params.values()]


@pytest.mark.parametrize("matmul", ["ordered", "blas"])
def test_mlp_rejects_bad_batches_with_typed_errors(matmul):
    net = MLP([4, 6, 3], seed=0, backend="numpy", matmul=matmul)
    x, y = np.ones((5, 4), np.float32), np.array([0, 1, 2, 0, 1])
    bad = [
        ((np.ones((5, 3), np.float32), y), ShapeError, "x: expected shape \\(n, 4\\)"),  # was numpy's ValueError
        ((np.ones(4, np.float32), y[:1]), ShapeError, "x:"),
        ((np.ones((5, 4), np.int64), y), DTypeError, "x:"),
        ((x, y[:4]), ShapeError, "y: expected shape \\(5,\\)"),
        ((x, np.array([0, 1, 2, 0, -1])), ConfigError, "y: expected class labels in \\[0, 3\\)"),  # was the last class
        ((x, np.array([0, 1, 3, 0, 1])), ConfigError, "y:"),  # was an IndexError
        ((x, y.astype(np.float32)), DTypeError, "y:"),
    ]
    before = _state(net)
    for (xx, yy), error, message in bad:
        for call in (net.loss_and_gradients, net.loss, net.accuracy):
            with pytest.raises(error, match=message):
                call(xx, yy)
    with pytest.raises(ShapeError, match="x:"):
        net.logits(np.ones((2, 5), np.float32))
    assert _state(net) == before
    reg = MLP([4, 2], seed=0, backend="numpy", loss="mse", matmul=matmul)
    with pytest.raises(ShapeError, match="y:"):
        reg.loss_and_gradients(x, np.zeros(4, np.float32))
    with pytest.raises(ShapeError, match="y:"):
        reg.mse(x, np.zeros((5, 3), np.float32))


def test_ordered_mlp_computes_in_float32_only():
    net = MLP([4, 3], seed=0, backend="numpy")
    net.params["w0"] = net.params["w0"].astype(np.float64)
    with pytest.raises(DTypeError, match="matmul='ordered'"):
        net.loss(np.ones((2, 4), np.float32), np.array([0, 1]))
    loss, grads = MLP([4, 3], seed=0, backend="numpy").loss_and_gradients(np.ones((2, 4)), np.array([0, 1]))
    assert all(g.dtype == np.float32 for g in grads.values())  # float64 x is rounded to float32 first


def test_set_params_checks_every_name_and_shape_first():
    net = MLP([4, 6, 3], seed=0, backend="numpy")
    before = _state(net)
    new = {k: v + 1 for k, v in net.params.items()}
    bad_shape = dict(new, b1=np.zeros(1, np.float32))  # was broadcast into every bias
    missing = {k: v for k, v in new.items() if k != "b1"}  # was a KeyError after w0, b0, w1 were overwritten
    extra = dict(new, w9=np.zeros(1, np.float32))
    for params, error in ((bad_shape, ShapeError), (missing, ConfigError), (extra, ConfigError)):
        with pytest.raises(error, match="params"):
            net.set_params(params)
        assert _state(net) == before
    net.set_params(new)
    assert _state(net) == [v.tobytes() for v in new.values()]


def test_optimizer_step_checks_every_gradient_first():
    params = {"w": np.ones(3, np.float32), "b": np.ones(2, np.float32)}
    opt = SGDMomentum(params, lr=0.5, momentum=0.9)
    before = _state(params)
    with pytest.raises(ConfigError, match="gradients: missing \\['b'\\]"):
        opt.step({"w": np.ones(3, np.float32)})  # was a KeyError after w had moved
    with pytest.raises(ShapeError, match="gradients\\['w'\\]"):
        opt.step({"w": np.ones(1, np.float32), "b": np.ones(2, np.float32)})  # was broadcast silently
    assert _state(params) == before
    assert isinstance(ShapeError("x"), OptimError)
    opt.step({"w": np.ones(3, np.float32), "b": np.ones(2, np.float32)})
    assert params["w"].tolist() == [0.5, 0.5, 0.5]
