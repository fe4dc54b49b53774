"""Pictures of vsaopt train: the x axis in pass units, steps or wall time."""

from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from vsaopt.cli.commands import cli
from vsaopt.cli.train import _at_steps, _positions

pytest.importorskip("matplotlib")


def test_pass_units_count_forward_one_and_backward_two_per_full_batch():
    r = SimpleNamespace(forward=[True, True, False, True], backward=[True, False, False, True], batch_fraction=0.5,
                        phase=["FULL", "PREDICT", "PREDICT", "FULL"], time=[0.1, 0.2, 0.3, 0.4])
    assert _positions(r, "passes") == [1.5, 2.0, 2.0, 3.5]
    assert _positions(r, "steps") == [1.0, 2.0, 3.0, 4.0]
    assert _positions(r, "wall") == [0.1, 0.2, 0.3, 0.4]
    assert _at_steps([1.5, 2.0, 2.0, 3.5], [0, 2, 4]) == [0.0, 2.0, 3.5]


@pytest.mark.parametrize("x", ["passes", "steps", "wall"])
def test_train_draws_against_each_axis(tmp_path, x):
    png = tmp_path / "run.png"
    result = CliRunner().invoke(cli, ["train", "--steps", "12", "--hidden", "8", "--plot", str(png), "--plot-x", x])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_x_applies_to_a_single_run_only():
    result = CliRunner().invoke(cli, ["train", "--suite", "--quick", "--plot-x", "steps"])
    assert result.exit_code == 2 and "--plot-x" in result.output


def test_matmul_choice_is_shown_and_torch_refuses_it():
    result = CliRunner().invoke(cli, ["train", "--steps", "4", "--hidden", "8", "--matmul", "blas"])
    assert result.exit_code == 0 and "matmul blas" in result.output
    result = CliRunner().invoke(cli, ["train", "--framework", "torch", "--matmul", "blas"])
    assert result.exit_code == 2 and "--matmul" in result.output
