"""``vsaopt advise``: the table, JSON, plot, progress and refused options; ``vsaopt.torch.advise``."""

from __future__ import annotations

import importlib.util

import pytest
from click.testing import CliRunner

from vsaopt.advise import Advice
from vsaopt.cli.commands import cli

QUICK = ["--dataset", "iris", "--batch-size", "16", "--hidden", "8", "--steps", "40", "--measure-steps", "20",
         "--rounds", "2"]


def test_advise_prints_the_table_and_writes_json_and_plot(tmp_path):
    out, plot = tmp_path / "a.json", tmp_path / "a.png"
    result = CliRunner().invoke(cli, ["advise", *QUICK, "--json", str(out), "--plot", str(plot), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "phase skipped" in result.output and "at batch 16, " in result.output
    advice = Advice.from_json(out.read_text())
    assert advice.batch_size == 16 and advice.seed == 3 and advice.rows[-1].batch_size == advice.n_samples
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = tmp_path / "b.json"
    CliRunner().invoke(cli, ["advise", *QUICK, "--json", str(again), "--seed", "3"])
    assert again.read_text() == out.read_text()  # reproducible with a seed


def test_full_batch_has_one_row():
    result = CliRunner().invoke(cli, ["advise", *QUICK[:2], "--batch-size", "full", *QUICK[4:]])
    assert result.exit_code == 0, result.output
    assert "(full)" in result.output


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "100000"], "--batch-size"),
    (["--batch-size", "0"], "--batch-size"),
    (["--measure-steps", "10", "--rounds", "8"], "--measure-steps"),
    (["--lr", "-1"], "--lr"),
    (["--hidden", "8,,8"], "--hidden"),
    (["--dataset", "mnist"], "--dataset"),
])
def test_bad_options_are_refused_by_name(args, message):
    result = CliRunner().invoke(cli, ["advise", "--dataset", "iris", *args])
    assert result.exit_code == 2 and message in result.output


torch_missing = importlib.util.find_spec("torch") is None


@pytest.mark.skipif(torch_missing, reason="torch not installed")
def test_cli_torch_framework_runs():
    result = CliRunner().invoke(cli, ["advise", *QUICK, "--framework", "torch"])
    assert result.exit_code == 0, result.output
    assert "torch" in result.output


@pytest.mark.skipif(torch_missing, reason="torch not installed")
def test_torch_advise_leaves_the_model_and_rng_alone_and_is_reproducible():
    import torch

    import vsaopt.torch
    import vsaopt.torch.advise  # noqa: F401  (importing the module must not hide the function)

    torch.manual_seed(0)
    x, y = torch.randn(200, 5), torch.randint(0, 3, (200,))
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(16, 3))
    before = [p.detach().clone() for p in model.parameters()]
    state = torch.random.get_rng_state()
    kw = {"lr": 0.05, "rounds": 2, "measure_steps": 10, "run_steps": 30, "seed": 1}
    a = vsaopt.torch.advise(model, torch.nn.functional.cross_entropy, (x, y), 16, **kw)
    b = vsaopt.torch.advise(model, torch.nn.functional.cross_entropy, torch.utils.data.TensorDataset(x, y), 16, **kw)
    assert a.to_json() == b.to_json()
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(state, torch.random.get_rng_state())
    assert a.measurement["drift_measured"]


@pytest.mark.skipif(torch_missing, reason="torch not installed")
@pytest.mark.parametrize("kwargs, error", [
    ({"data": [1, 2]}, "DTypeError"),
    ({"data": "x"}, "DTypeError"),
    ({"lr": 0.1, "optimizer": lambda ps: None}, "ConfigError"),
    ({"lr": -0.1}, "ConfigError"),
    ({"momentum": 1.0}, "ConfigError"),
    ({"model": "not a module"}, "DTypeError"),
])
def test_torch_advise_refuses_bad_input(kwargs, error):
    import torch

    from vsaopt import errors
    from vsaopt.torch import advise

    args = {"model": torch.nn.Linear(3, 2), "loss_fn": torch.nn.functional.cross_entropy,
            "data": (torch.randn(20, 3), torch.randint(0, 2, (20,))), "batch_size": 4}
    args.update(kwargs)
    with pytest.raises(getattr(errors, error)):
        advise(**args)


@pytest.mark.skipif(torch_missing, reason="torch not installed")
def test_torch_advise_refuses_tensors_of_different_lengths():
    import torch

    from vsaopt.errors import ShapeError
    from vsaopt.torch import advise

    with pytest.raises(ShapeError, match="data"):
        advise(torch.nn.Linear(3, 2), torch.nn.functional.cross_entropy, (torch.randn(20, 3), torch.zeros(19)), 4)


@pytest.mark.skipif(torch_missing, reason="torch not installed")
def test_torch_advise_trains_with_the_phase_presets_predictions_at_full_batch():
    import torch

    from vsaopt.torch import advise

    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.01 * torch.randn(64)
    model = torch.nn.Linear(4, 1)
    seen = []

    def optimizer(params):
        opt = torch.optim.SGD(params, lr=0.02)
        step = opt.step

        def recording_step(*args, **kwargs):  # the gradient each update applies
            seen.append(torch.cat([p.grad.flatten() for p in params]).clone())
            return step(*args, **kwargs)

        opt.step = recording_step
        return opt

    def loss_fn(out, target):
        return torch.nn.functional.mse_loss(out.squeeze(1), target)

    advice = advise(model, loss_fn, (x, y), 64, optimizer=optimizer, rounds=4, measure_steps=40, run_steps=40)
    how = advice.measurement["measured_batch"]["phase"]
    assert advice.here.measured and how["measured_steps"] == 40 == len(seen)
    assert how["measured_skipped"] > 10
    # on the skipped steps the update applied an earlier step's gradient again (the preset reuses the last real one)
    repeats = sum(any(torch.equal(g, h) for h in seen[:i]) for i, g in enumerate(seen))
    assert repeats == how["measured_skipped"]
