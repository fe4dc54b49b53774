"""The command line and its environment under bad input: one-line errors, checked before any work, no partial files."""

import json
import os
import shutil
import stat

import numpy as np
import pytest
from click.testing import CliRunner

import vsaopt.train
from vsaopt import backend as registry
from vsaopt import golden, ternary
from vsaopt.cli import bench as bench_module
from vsaopt.cli import options
from vsaopt.cli.commands import cli
from vsaopt.cli.train import DATASET_SHAPES, check_model_fits, parameter_count
from vsaopt.errors import ConfigError, SpecError

from test_cli_inputs import Reached, _stop, no_training  # noqa: F401  (fixture)




def _one_line_error(result, *words, code=2):
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    for word in words:
        assert word in lines[0], (word, lines[0])


# 1. VSAOPT_BACKEND


@pytest.mark.parametrize("value", ["garbage", "nmupy"])
@pytest.mark.parametrize("args", [["info"], ["spec", "verify"], ["train"], ["bench", "--quick"]],
                         ids=["info", "spec-verify", "train", "bench"])
def test_unknown_backend_variable_stops_every_command(monkeypatch, no_training, args, value):
    monkeypatch.setattr(bench_module, "_sections", _stop)
    monkeypatch.setenv(registry.ENV_VAR, value)
    _one_line_error(CliRunner().invoke(cli, args), "VSAOPT_BACKEND", repr(value), "numpy, numba, cupy")
    assert no_training == []


def test_unknown_backend_variable_is_refused_by_every_default_resolution(monkeypatch):
    monkeypatch.setenv(registry.ENV_VAR, "nmupy")
    for call in (registry.get_backend, lambda: registry.get_backend("auto"),
                 lambda: registry.resolve_backend(None, np.zeros(3)),
                 lambda: ternary.quantize_deterministic(np.ones(4, np.float32), 0.5)):
        with pytest.raises(ConfigError, match="VSAOPT_BACKEND.*auto, numpy, numba, cupy.*'nmupy'"):
            call()
    assert registry.get_backend("numpy").name == "numpy"  # an explicit name does not read the variable


@pytest.mark.parametrize("value, expected", [(" NumPy ", "numpy"), ("auto", None), ("", None)])
def test_valid_backend_variable_values(monkeypatch, value, expected):
    monkeypatch.setenv(registry.ENV_VAR, value)
    assert registry.env_backend() == expected


def test_backend_name_of_the_wrong_type_is_a_config_error():
    with pytest.raises(ConfigError, match="backend name"):
        registry.get_backend(["numpy"])


def test_library_errors_are_one_line_on_stderr(monkeypatch, no_training):
    monkeypatch.setenv(registry.ENV_VAR, "a\nb")
    result = CliRunner().invoke(cli, ["train"])
    _one_line_error(result, "VSAOPT_BACKEND")
    assert result.stdout == ""


# 2. spec verify of malformed vector files


def _tampered(tmp_path, family, change):
    """A folder holding only ``family``'s vector file, changed by ``change(doc)`` (or raw bytes when it returns bytes)."""
    path = tmp_path / f"{family}_test.json"
    doc = json.loads((golden.vectors_dir() / path.name).read_text())
    raw = change(doc)
    if isinstance(raw, bytes):
        path.write_bytes(raw)
    else:
        path.write_text(json.dumps(doc))
    return tmp_path


def _first_array(doc):
    for case in doc["tests"]:
        for value in case["inputs"].values():
            if isinstance(value, dict) and "hex" in value:
                return case, value
    raise AssertionError("no array input")


def _set_dtype(doc, dtype):
    case, value = _first_array(doc)
    value["dtype"] = dtype
    return case["tcId"]


def _set_shape(doc):
    case, value = _first_array(doc)
    value["shape"] = [10**6]
    return case["tcId"]


def _kernel_case(doc, name):
    case = next(c for c in doc["tests"] if c["op"] == "kernel")
    case["inputs"]["op"] = name
    return case["tcId"]


CASE_DEFECTS = {
    "unknown-op": ("pack", lambda d: d["tests"][0].update(op="nosuch") or 1, "nosuch"),
    "missing-input": ("pack", lambda d: d["tests"][0]["inputs"].pop("encoding") and 1, "encoding"),
    "unexpected-input": ("pack", lambda d: d["tests"][0]["inputs"].update(extra=1) or 1, "extra"),
    "object-dtype": ("pack", lambda d: _set_dtype(d, "object"), "object"),
    "lying-shape": ("pack", _set_shape, "1000000"),
    "odd-hex": ("pack", lambda d: _first_array(d)[1].update(hex="abc") or _first_array(d)[0]["tcId"], "hex"),
    "kernel-not-in-protocol": ("accumulator", lambda d: _kernel_case(d, "__init__"), "__init__"),
}


@pytest.mark.parametrize("name", list(CASE_DEFECTS))
def test_malformed_case_is_a_failure_naming_file_and_case(tmp_path, name):
    family, change, word = CASE_DEFECTS[name]
    ids = []
    folder = _tampered(tmp_path, family, lambda doc: ids.append(change(doc)))
    failures = [f for f in golden.verify(registry.get_backend("numpy"), folder) if f.family == family]
    assert [f.tc_id for f in failures] == ids
    assert f"{family}_test.json" in failures[0].detail and word in failures[0].detail
    result = CliRunner().invoke(cli, ["spec", "verify", "--backend", "numpy", "--vectors", str(folder)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"{family}#{ids[0]}" in result.output and word in result.output


FILE_DEFECTS = {
    "emptied-tests": (lambda d: d.update(tests=[]), "numberOfTests"),
    "count-lies": (lambda d: d.update(numberOfTests=d["numberOfTests"] + 1), "numberOfTests"),
    "duplicate-tcid": (lambda d: d["tests"][1].update(tcId=d["tests"][0]["tcId"]), "tcId"),
    "case-not-an-object": (lambda d: d["tests"].__setitem__(0, 5), "case 1"),
    "non-utf8": (lambda d: json.dumps(d).replace('"comment": "', '"comment": "\udcff', 1).encode("utf-8", "surrogateescape"),
                 "UTF-8"),
    "nan-constant": (lambda d: json.dumps(d).replace('"tcId": 1,', '"tcId": 1, "x": NaN,', 1).encode(), "NaN"),
    "deep-nesting": (lambda d: b"[" * 100_000, "JSON"),
}


@pytest.mark.parametrize("name", list(FILE_DEFECTS))
def test_malformed_file_is_a_spec_error_and_a_failure_line(tmp_path, name):
    change, word = FILE_DEFECTS[name]
    folder = _tampered(tmp_path, "pack", change)
    with pytest.raises(SpecError, match=word) as info:
        golden.load("pack", folder)
    assert "pack_test.json" in str(info.value)
    result = CliRunner().invoke(cli, ["spec", "verify", "--backend", "numpy", "--vectors", str(folder)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "pack unreadable" in result.output
    assert any(line.strip().startswith("pack: ") and "pack_test.json" in line for line in result.output.splitlines())


def test_a_case_that_raises_does_not_hide_the_others(tmp_path, monkeypatch):
    import vsaopt.golden.pack as pack_family

    def broken(be, trits, encoding):
        raise IndexError("boom")

    monkeypatch.setitem(pack_family.OPS, "pack", broken)
    shutil.copy(golden.vectors_dir() / "pack_test.json", tmp_path)
    failures = [f for f in golden.verify(registry.get_backend("numpy"), tmp_path) if f.family == "pack"]
    n_pack = sum(c["op"] == "pack" for c in golden.load("pack")["tests"])
    assert len(failures) == n_pack and all("IndexError: boom" in f.detail for f in failures)


# 3. outputs that cannot be written


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_dev_full_is_refused_before_the_work(monkeypatch, no_training):
    monkeypatch.setattr(bench_module, "_sections", _stop)
    _one_line_error(CliRunner().invoke(cli, ["train", "--json", "/dev/full"]), "--json", "No space left")
    _one_line_error(CliRunner().invoke(cli, ["bench", "--json", "/dev/full"]), "--json", "No space left")
    assert no_training == []


def test_a_failed_write_is_one_line_and_leaves_no_file(tmp_path):
    path = tmp_path / "run.json"

    def fail(p):
        p.write_text("partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(options.click.ClickException, match="cannot write.*No space left"):
        options.write_atomic(path, fail)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "run.json"
    path.write_text("old")
    path.chmod(0o640)

    def interrupted(p):
        p.write_text("partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        options.write_atomic(path, interrupted)
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"] and path.read_text() == "old"
    options.write_atomic(path, lambda p: p.write_text("new"))
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o640


# 4. model size


def test_huge_hidden_layer_is_refused_before_training(no_training):
    _one_line_error(CliRunner().invoke(cli, ["train", "--hidden", "100000000"]), "'--hidden'", "parameters")
    assert no_training == []


def test_model_size_check_against_memory():
    widths = (256, 256)
    need = parameter_count("digits", widths) * 256
    check_model_fits("digits", widths, 10, 8, memory=need + 10**6)
    with pytest.raises(options.click.BadParameter, match="parameters"):
        check_model_fits("digits", widths, 10, 8, memory=need // 2)
    with pytest.raises(options.click.BadParameter) as info:
        check_model_fits("digits", (8,), 10**12, 256, memory=2**34)
    assert "'--steps'" in info.value.format_message()


@pytest.mark.parametrize("dataset", list(DATASET_SHAPES))
def test_dataset_shapes_match_the_data(dataset):
    data = vsaopt.train.load_dataset(dataset)
    assert DATASET_SHAPES[dataset] == (data.n_features, data.n_outputs)


# 5., 6. and the other options


@pytest.mark.parametrize("args, option", [
    (["--threads", "100000"], "--threads"),
    (["--hidden", "64,,64"], "--hidden"),
    (["--hidden", "0"], "--hidden"),
    (["--hidden=-3"], "--hidden"),
    (["--hidden="], "--hidden"),
    (["--hidden", "9" * 5000], "--hidden"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--lr", "-1"], "--lr"),
    (["--sgd-momentum", "1"], "--sgd-momentum"),
    (["--momentum-factor", "inf"], "--momentum-factor"),
    (["--loss-threshold", "-1"], "--loss-threshold"),
    (["--steps", str(10**13)], "--steps"),
    (["--suite", "--quick", "--suite-steps", "inf"], "--suite-steps"),
    (["--json", "a\0b.json"], "--json"),
    (["--json", "x" * 300 + ".json"], "--json"),
    (["--plot", "x" * 300 + ".png"], "--plot"),
], ids=lambda v: v if isinstance(v, str) else " ".join(v)[:30])
def test_bad_train_options_are_usage_errors(tmp_path, args, option, no_training, monkeypatch):
    import vsaopt.cli.suite_report as suite_report

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(suite_report, "run_suite_command", _stop)
    _one_line_error(CliRunner().invoke(cli, ["train", *args]), f"'{option}'")
    assert no_training == []


def test_batch_size_larger_than_the_data_names_the_option():
    result = CliRunner().invoke(cli, ["train", "--dataset", "iris", "--batch-size", "100000", "--steps", "1"])
    _one_line_error(result, "'--batch-size'", "120 training samples")


@pytest.mark.parametrize("args, name", [
    (["spec", "verify", "--vectors", "a\0b"], "--vectors"),
    (["spec", "generate", "a\0b"], "DIRECTORY"),
    (["spec", "generate", "x" * 300], "DIRECTORY"),
    (["spec", "generate", "x" * 300 + "/vectors"], "DIRECTORY"),
])
def test_bad_spec_paths_are_usage_errors(tmp_path, monkeypatch, args, name):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(golden, "generate", _stop)
    _one_line_error(CliRunner().invoke(cli, args), name)


@pytest.mark.parametrize("args, option", [
    (["--size", str(2**50)], "--size"),
    (["--map-dim", "10000000", "--map-count", "10000000"], "--map-dim"),
    (["--predict-params", str(2**50)], "--predict-params"),
    (["--section", "nosuch"], "--section"),
    (["--json", "a\0b.json"], "--json"),
], ids=["size", "map", "predict-params", "section", "json-nul"])
def test_bad_bench_options_are_usage_errors_before_measuring(monkeypatch, args, option):
    monkeypatch.setattr(bench_module, "Progress", _stop)
    _one_line_error(CliRunner().invoke(cli, ["bench", *args]), f"'{option}'")
    result = CliRunner().invoke(cli, ["bench", "--section", "map"])
    assert isinstance(result.exception, Reached)  # the control: sizes that fit reach the measurements


def test_an_interrupted_generation_leaves_no_vector_file(tmp_path, monkeypatch):
    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(golden.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        golden.generate(tmp_path, ("pack",))
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert [p.name for p in golden.generate(tmp_path, ("pack",))] == ["pack_test.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pack_test.json"]


def test_json_and_plot_may_not_name_one_file(tmp_path):
    from click.testing import CliRunner

    from vsaopt.cli.commands import cli

    same = str(tmp_path / "out.png")
    result = CliRunner().invoke(cli, ["train", "--steps", "3", "--hidden", "8", "--json", same, "--plot", same])
    assert result.exit_code == 2 and "also given to another output option" in result.output
    assert not (tmp_path / "out.png").exists()
