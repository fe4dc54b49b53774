"""Command-line values are checked before any work starts: exit status 2, one line naming the option."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

import vsaopt.train
from vsaopt.cli import bench as bench_module
from vsaopt.cli.commands import cli


class Reached(Exception):
    """Raised by the stand-in of a long-running function: the command got past its checks."""


def _stop(*args, **kwargs):
    raise Reached


@pytest.fixture
def no_training(monkeypatch):
    """Replace the training run; ``calls`` counts how often a command started it."""
    calls = []

    def run_training(*args, **kwargs):
        calls.append(args)
        raise Reached

    monkeypatch.setattr(vsaopt.train, "run_training", run_training)
    return calls


def _usage_error(result, option):
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert option in result.output and "Traceback" not in result.output


def test_a_good_plot_path_reaches_training(tmp_path, no_training):
    """The control of the cases below: with valid outputs the command does start training."""
    result = CliRunner().invoke(cli, ["train", "--plot", str(tmp_path / "run.png"), "--json", str(tmp_path / "run.json")])
    assert isinstance(result.exception, Reached)
    assert len(no_training) == 1


@pytest.mark.parametrize("args, option", [
    (["--seed", "-1"], "--seed"),
    (["--seed", str(2**64)], "--seed"),
    (["--steps", "0"], "--steps"),
    (["--threads", "-1"], "--threads"),
    (["--correct-every", "0"], "--correct-every"),
    (["--history-window", "-2"], "--history-window"),
], ids=["seed-negative", "seed-too-large", "steps-zero", "threads-negative", "correct-every-zero", "history-window-negative"])
def test_out_of_range_numbers_are_usage_errors(args, option, no_training):
    _usage_error(CliRunner().invoke(cli, ["train", *args]), option)
    assert no_training == []


@pytest.mark.parametrize("option, name", [
    ("--plot", "missing/run.png"),
    ("--plot", "afile/run.png"),
    ("--plot", "run.txt"),
    ("--plot", "run"),
    ("--plot", "."),
    ("--json", "missing/run.json"),
    ("--json", "afile/run.json"),
], ids=["plot-missing-folder", "plot-folder-is-a-file", "plot-txt-suffix", "plot-no-suffix", "plot-is-a-folder",
        "json-missing-folder", "json-folder-is-a-file"])
def test_bad_outputs_fail_before_training(tmp_path, option, name, no_training):
    (tmp_path / "afile").write_text("")
    path = tmp_path / name if name != "." else tmp_path
    _usage_error(CliRunner().invoke(cli, ["train", option, str(path)]), option)
    assert no_training == []


def test_plot_without_matplotlib_fails_before_training(tmp_path, monkeypatch, no_training):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backend_bases", None)
    result = CliRunner().invoke(cli, ["train", "--plot", str(tmp_path / "run.png")])
    _usage_error(result, "--plot")
    assert "matplotlib" in result.output
    assert no_training == []


def test_plot_suffix_error_lists_the_formats(tmp_path, no_training):
    result = CliRunner().invoke(cli, ["train", "--plot", str(tmp_path / "run.txt")])
    _usage_error(result, "--plot")
    assert ".png" in result.output and ".svg" in result.output


def test_bench_checks_json_and_sizes_before_measuring(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_module, "_sections", _stop)
    _usage_error(CliRunner().invoke(cli, ["bench", "--json", str(tmp_path / "missing" / "b.json")]), "--json")
    _usage_error(CliRunner().invoke(cli, ["bench", "--size", "0"]), "--size")
    result = CliRunner().invoke(cli, ["bench", "--json", str(tmp_path / "b.json")])
    assert isinstance(result.exception, Reached)  # the control: a good path reaches the measurements


def test_spec_generate_checks_its_folder_before_writing(tmp_path, monkeypatch):
    import vsaopt.golden

    monkeypatch.setattr(vsaopt.golden, "generate", _stop)
    (tmp_path / "afile").write_text("")
    _usage_error(CliRunner().invoke(cli, ["spec", "generate", str(tmp_path / "afile" / "vectors")]), "DIRECTORY")
    result = CliRunner().invoke(cli, ["spec", "generate", str(tmp_path / "new" / "vectors")])
    assert isinstance(result.exception, Reached)


def test_python_dash_m_vsaopt_runs_the_command(tmp_path):
    """Run outside the source tree, so the installed package is the one imported."""
    out = subprocess.run([sys.executable, "-m", "vsaopt", "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("vsaopt, version ")
    bad = subprocess.run([sys.executable, "-m", "vsaopt", "train", "--seed", "-1"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert bad.returncode == 2 and "--seed" in bad.stderr and "Traceback" not in bad.stderr
