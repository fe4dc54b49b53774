"""Golden vectors: schema, regeneration from the reference, every backend, and the CLI runner."""

import json
import shutil

import jsonschema
import pytest
from click.testing import CliRunner

from vsaopt import get_backend, golden
from vsaopt.cli.commands import cli
from vsaopt.errors import SpecError

SCHEMA = json.loads((golden.vectors_dir() / "vectors.schema.json").read_text())


@pytest.mark.parametrize("family", golden.FAMILIES)
def test_file_follows_schema(family):
    doc = json.loads((golden.vectors_dir() / f"{family}_test.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    assert doc["numberOfTests"] == len(doc["tests"])
    assert [t["tcId"] for t in doc["tests"]] == list(range(1, len(doc["tests"]) + 1))


@pytest.mark.parametrize("family", golden.FAMILIES)
def test_every_op_has_a_case_with_a_result(family):
    """An op whose every case expects an error would test nothing but validation."""
    tests = json.loads((golden.vectors_dir() / f"{family}_test.json").read_text())["tests"]
    ops = {t["op"] for t in tests}
    with_result = {t["op"] for t in tests if "error" not in t["expected"]}
    assert ops == with_result, sorted(ops - with_result)


def test_committed_vectors_equal_a_fresh_generation(tmp_path):
    golden.generate(tmp_path)
    for name in [f"{family}_test.json" for family in golden.FAMILIES] + ["vectors.schema.json"]:
        assert (tmp_path / name).read_text() == (golden.vectors_dir() / name).read_text(), name


def test_every_backend_reproduces_the_vectors(backend):
    assert [str(f) for f in golden.verify(backend)] == []


def test_tampered_vector_is_reported(tmp_path):
    for f in golden.vectors_dir().glob("*_test.json"):
        shutil.copy(f, tmp_path / f.name)
    path = tmp_path / "pack_test.json"
    doc = json.loads(path.read_text())
    case = next(t for t in doc["tests"] if t["expected"].get("packed", {}).get("hex"))
    case["expected"]["packed"]["hex"] = "ff" * (len(case["expected"]["packed"]["hex"]) // 2)
    path.write_text(json.dumps(doc))
    failures = golden.verify(get_backend("numpy"), tmp_path)
    assert [(f.family, f.tc_id) for f in failures] == [("pack", case["tcId"])]

    result = CliRunner().invoke(cli, ["spec", "verify", "--backend", "numpy", "--vectors", str(tmp_path)])
    assert result.exit_code == 1
    assert f"pack#{case['tcId']}" in result.output


def test_truncated_file_is_a_spec_error(tmp_path):
    (tmp_path / "rng_test.json").write_text('{"family": "rng", "tests": [')
    with pytest.raises(SpecError, match="rng_test.json"):
        golden.load("rng", tmp_path)


def test_cli_verify_passes():
    result = CliRunner().invoke(cli, ["spec", "verify"])
    assert result.exit_code == 0, result.output
    assert "numpy: PASS" in result.output


# --- entry points validate before they act ------------------------------------------------------------------------


def test_family_arguments_are_checked_by_name():
    from vsaopt.errors import ConfigError
    from vsaopt.golden.mutations import catalogue

    assert [m.name for m in catalogue("pack")] == [m.name for m in catalogue(["pack"])]  # one name is not its letters
    with pytest.raises(ConfigError, match="families"):
        catalogue(5)
    with pytest.raises(ConfigError, match="family: expected one of"):
        golden.load("nope")
    with pytest.raises(ConfigError, match="families: unknown"):
        golden.generate(".", ("rng", "nope"))


def test_generate_replaces_no_file_when_a_family_fails(tmp_path, monkeypatch):
    from vsaopt.golden import pack

    (tmp_path / "rng_test.json").write_text("old")

    def broken():
        raise RuntimeError("a case generator failed")

    monkeypatch.setattr(pack, "cases", broken)
    with pytest.raises(RuntimeError):
        golden.generate(tmp_path, ("rng", "pack"))
    assert (tmp_path / "rng_test.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rng_test.json"]


def test_generate_into_a_missing_folder_is_a_config_error(tmp_path):
    from vsaopt.errors import ConfigError

    with pytest.raises(ConfigError, match="directory"):
        golden.generate(tmp_path / "absent", ("rng",))


def test_verify_takes_a_backend_name_and_refuses_anything_else():
    from vsaopt.errors import ConfigError

    assert golden.verify("numpy") == []
    with pytest.raises(ConfigError, match="backend"):
        golden.verify(3)


def test_sample_and_cosine_pair_helpers_check_their_arguments():
    from fractions import Fraction

    from vsaopt.errors import ConfigError

    with pytest.raises(ConfigError, match="n:"):
        golden.sample_f32(-1, 0)
    with pytest.raises(ConfigError, match="parity"):
        golden.cosine_midpoint_pair(0, 1)
    with pytest.raises(ConfigError, match="j:"):
        golden.cosine_midpoint_pair(0, 10)
    a, b = golden.cosine_midpoint_pair(1, 3)
    cos = Fraction(sum(Fraction(float(x)) * Fraction(float(y)) for x, y in zip(a, b))) / 2
    assert cos.denominator == 2**25 and cos.numerator % 4 == 3  # a float32 midpoint whose lower neighbour is odd


def test_mutations_are_run_by_name_and_unknown_names_refused_before_any_run():
    from vsaopt.errors import ConfigError
    from vsaopt.golden.mutations import mutation, run_catalogue, run_mutation

    assert run_mutation("pack.pack_2bit_msb_first").status == "killed"
    seen = []
    with pytest.raises(ConfigError, match="pack.nope"):
        run_catalogue(["pack.pack_2bit_msb_first", "pack.nope"], progress=seen.append)
    assert seen == []
    with pytest.raises(ConfigError, match="bug_class"):
        mutation("rng", "nope", "kernel:dot")
