"""``vsaopt conform``: the reference client agrees, planted bugs are found and shrunk, protocol faults give exit 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from vsaopt.cli.commands import cli
from vsaopt.conform import DISAGREE, PORT_FAILURE, assert_conforms, conform, op_names
from vsaopt.conform.catalog import strategies
from vsaopt.conform.codec import differences, parse_answer
from vsaopt.conform.codec import AnswerError
from vsaopt.errors import BackendError, ConfigError, DTypeError

PORTS = Path(__file__).resolve().parent / "ports"
REFERENCE = [sys.executable, str(PORTS / "reference_client.py")]
BROKEN = [sys.executable, str(PORTS / "broken_client.py")]


def faulty(mode: str, op: str = "pack.pack") -> list[str]:
    return [sys.executable, str(PORTS / "faulty_client.py"), mode, op]


def test_every_op_of_the_vector_files_has_a_strategy():
    assert list(strategies()) == op_names()
    assert len(op_names()) >= 45


def test_the_reference_client_agrees_on_every_op():
    report = conform(REFERENCE, max_examples=4, seed=3)
    assert [r.name for r in report.results] == op_names()
    assert report.exit_status == 0, report.to_dict()
    assert report.agreed == len(op_names()) and all(r.skipped == 0 for r in report.results)
    assert report.summary() == f"conform: {len(op_names())}/{len(op_names())} ops agree ({report.examples} examples)"


def test_every_strategy_draws_inputs_the_reference_runs():
    """No drawn input falls outside an op's domain (the reference raises only vsaopt errors on it), at more examples."""
    report = conform(REFERENCE, max_examples=25, seed=11, families=("pack", "vsa", "compressor", "accumulator"))
    assert report.exit_status == 0 and all(r.skipped == 0 for r in report.results)


PLANTED = {  # op -> what the shrunk case must show (the broken client's planted bugs)
    "rng.random_bits": "expected outputs, got error ConfigError",
    "reductions.abs_stats": "abs_sum: bytes differ",
    "ternary.quantize_stochastic": "trits: bytes differ",
    "pack.pack": "packed: bytes differ",
    "vsa.bundle": "out: bytes differ",
    "map.hard_quantize": "out: bytes differ",
}


def test_the_broken_client_is_caught_on_each_planted_bug_with_a_shrunk_case():
    report = conform(BROKEN, ops=tuple(PLANTED) + ("pack.unpack", "rng.philox4x32"), max_examples=60, seed=0)
    status = {r.name: r.status for r in report.results}
    assert status == {**{op: DISAGREE for op in PLANTED}, "pack.unpack": "agree", "rng.philox4x32": "agree"}
    assert report.exit_status == 1
    for r in report.results:
        if r.name in PLANTED:
            ce = r.counterexample
            assert PLANTED[r.name] in "; ".join(ce.differences)
            case = ce.vector_case(0)
            assert case["op"] == r.name.split(".")[1] and case["expected"] != ce.got
    shrunk = {r.name: r.counterexample.inputs for r in report.results if r.counterexample}
    assert shrunk["pack.pack"] == {"trits": {"dtype": "int8", "shape": [1], "hex": "00"}, "encoding": "2bit"}
    assert 2**63 <= shrunk["rng.random_bits"]["seed"] < 2**64
    assert shrunk["reductions.abs_stats"]["x"]["shape"][0] >= 3 * 8192  # only a fold of three or more blocks shows it


def test_a_run_is_reproducible_from_its_seed():
    first = conform(BROKEN, ops=("pack.pack", "vsa.bundle"), max_examples=30, seed=5).to_dict()
    again = conform(BROKEN, ops=("pack.pack", "vsa.bundle"), max_examples=30, seed=5).to_dict()
    for a in (first, again):
        for r in a["results"]:
            r.pop("seconds")
    assert first == again


@pytest.mark.parametrize("mode, message", [
    ("crash", "exited with status 3 without answering; its stderr ends: port: segmentation fault"),
    ("hang", "no answer within the timeout of 1 s"),
    ("garbage", "the answer is not JSON"),
    ("wrong-id", "the answer has id 2, expected 1"),
    ("no-newline", "in the middle of an answer line"),
    ("both", "exactly one of \"outputs\" and \"error\""),
])
def test_a_protocol_fault_gives_exit_2_naming_the_op_and_the_request(mode, message):
    result = CliRunner().invoke(cli, ["conform", "--op", "pack.pack", "--max-examples", "5", "--timeout", "1", "--",
                                      *faulty(mode)])
    assert result.exit_code == 2, result.output
    assert "pack.pack: PORT FAILURE" in result.output and message in result.output
    assert 'request: {"id":1,"family":"pack","op":"pack","inputs":' in result.output
    assert result.output.rstrip().splitlines()[-1] == "conform: 0/1 ops agree (0 examples)"


def test_after_a_port_failure_the_next_op_runs_on_a_fresh_port():
    report = conform(faulty("crash", "pack.pack")[:-1] + ["-"], ops=("pack.pack", "pack.unpack"), max_examples=3)
    assert [r.status for r in report.results] == [PORT_FAILURE, PORT_FAILURE]
    assert report.exit_status == 2


def test_a_port_that_floods_stderr_or_ignores_the_end_of_input_still_conforms():
    import time

    start = time.perf_counter()
    for mode in ("stderr-flood", "ignore-eof"):
        report = conform(faulty(mode), ops=("pack.pack",), max_examples=5, timeout=10)
        assert report.exit_status == 0, (mode, report.to_dict())
    assert time.perf_counter() - start < 30  # the port that ignores EOF is killed after 5 s, not waited for


def test_a_bad_handshake_or_a_missing_program_is_a_backend_error():
    with pytest.raises(BackendError, match="handshake"):
        conform(faulty("bad-handshake"), max_examples=1)
    with pytest.raises(BackendError, match="cannot start"):
        conform(["/nonexistent/port"], max_examples=1)
    result = CliRunner().invoke(cli, ["conform", "--", "/nonexistent/port"])
    assert result.exit_code == 2 and "BackendError" in result.output


def test_a_port_that_serves_none_of_the_selected_ops_is_refused():
    with pytest.raises(BackendError, match="serves none"):
        conform(faulty("none", "pack.pack"), ops=("rng.uniform",), max_examples=1)


@pytest.mark.parametrize("kwargs, error", [
    ({"max_examples": 0}, ConfigError), ({"max_examples": True}, DTypeError), ({"seed": -1}, ConfigError),
    ({"seed": 2**64}, ConfigError), ({"timeout": 0}, ConfigError), ({"timeout": float("nan")}, ConfigError),
    ({"timeout": "5"}, ConfigError), ({"families": ("nope",)}, ConfigError), ({"ops": ("pack.nope",)}, ConfigError),
    ({"ops": "pack.pack"}, ConfigError),
])
def test_bad_arguments_are_refused_before_the_port_starts(kwargs, error, tmp_path):
    marker = tmp_path / "started"
    with pytest.raises(error):
        conform([sys.executable, "-c", f"open({str(marker)!r}, 'w')"], **kwargs)
    assert not marker.exists()


@pytest.mark.parametrize("command", [[], "python port.py", ["python", "a\0b"], [""], [1]])
def test_a_bad_command_is_a_config_error(command):
    with pytest.raises(ConfigError, match="command"):
        conform(command)


def test_op_selection_accepts_a_bare_op_name_for_every_family():
    report = conform(REFERENCE, ops=("hard_quantize", "bundle"), max_examples=2)
    assert [r.name for r in report.results] == ["vsa.bundle", "map.bundle", "map.hard_quantize"]


def test_answers_are_compared_strictly():
    want = {"n": 3, "x": {"dtype": "int8", "shape": [1], "hex": "01"}}
    assert differences({"outputs": dict(want)}, want) == []
    assert differences({"outputs": {**want, "n": True}}, {**want, "n": 1}) == ["n: got true, expected 1"]
    assert differences({"outputs": {**want, "n": 3.0}}, want) == ["n: got 3.0, expected 3"]
    upper = {**want, "x": {"dtype": "int8", "shape": [1], "hex": "0A"}}
    assert "hex must be lowercase" in differences({"outputs": upper}, {**want, "x": {"dtype": "int8", "shape": [1], "hex": "0a"}})[0]
    assert differences({"outputs": {"x": want["x"]}}, want) == ["n: missing"]
    assert differences({"error": "ShapeError"}, {"error": "ConfigError"}) == ["expected error ConfigError, got error ShapeError"]


@pytest.mark.parametrize("line, message", [
    (b'{"id": 1, "outputs": {"a": NaN}}', "not JSON"), (b"\xff", "not UTF-8"), (b"[1]", "not a JSON object"),
    (b'{"id": true, "outputs": {}}', "id true"), (b'{"id": 1, "error": 3}', "must be a string"),
    (b'{"id": 1, "outputs": []}', "must be an object"), (b'{"id": 1}', "exactly one"),
])
def test_malformed_answers_are_protocol_failures(line, message):
    with pytest.raises(AnswerError, match=message):
        parse_answer(line, 1)


def test_the_cli_prints_the_shrunk_case_and_writes_the_report(tmp_path):
    out = tmp_path / "report.json"
    result = CliRunner().invoke(cli, ["conform", "--op", "pack.pack", "--max-examples", "30", "--report", str(out), "--", *BROKEN])
    assert result.exit_code == 1, result.output
    assert "pack.pack: DISAGREES" in result.output and "shrunk case:" in result.output
    case = json.loads(result.output.split("shrunk case: ", 1)[1].splitlines()[0])
    assert case["inputs"] == {"trits": {"dtype": "int8", "shape": [1], "hex": "00"}, "encoding": "2bit"}
    assert result.output.rstrip().splitlines()[-1].startswith("conform: 0/1 ops agree (")
    saved = json.loads(out.read_text())
    assert saved["exit_status"] == 1 and saved["results"][0]["case"] == case


def test_the_cli_lists_the_ops_and_needs_a_command():
    result = CliRunner().invoke(cli, ["conform", "--list"])
    assert result.exit_code == 0 and result.output.split() == op_names()
    result = CliRunner().invoke(cli, ["conform"])
    assert result.exit_code == 2 and "give the port's command" in result.output


def test_the_python_api_raises_with_the_shrunk_case():
    assert_conforms(REFERENCE, ops=("pack.unpack",), max_examples=5)
    with pytest.raises(AssertionError, match=r'pack.pack: packed: bytes differ.*\n  case: \{"op": "pack"'):
        assert_conforms(BROKEN, ops=("pack.pack",), max_examples=30)


def test_exported_from_vsaopt_testing():
    import vsaopt.testing as vt

    assert vt.conform is conform and vt.assert_conforms is assert_conforms


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_the_c_port_of_rng_and_pack_agrees(tmp_path):
    binary = tmp_path / "port"
    subprocess.run(["cc", "-std=gnu99", "-O2", "-o", str(binary), str(PORTS / "c" / "port.c")], check=True, capture_output=True)
    report = conform([str(binary)], max_examples=40, seed=1)
    assert [r.name for r in report.results] == ["rng.philox4x32", "rng.random_bits", "rng.uniform", "pack.pack", "pack.unpack"]
    assert report.exit_status == 0, report.to_dict()
    assert len(report.not_served) == len(op_names()) - 5
