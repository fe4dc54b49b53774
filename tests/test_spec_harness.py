"""spec/harness.md documents every op of the vector files and exactly their keys; the porting guide's runner runs."""

import json
import re

import pytest

from vsaopt import golden

SPEC = golden.vectors_dir().parent
FAMILY = re.compile(r"^## `(\w+)_test\.json`")
ROW = re.compile(r"^\| *(`[\w:]+`)? *\| *(in|out) *\| *`([\w.]+)` *\|")


def documented() -> dict[tuple[str, str], dict[str, set[str]]]:
    """``(family, op) -> {"in": keys, "out": keys}`` from the tables of spec/harness.md."""
    out: dict[tuple[str, str], dict[str, set[str]]] = {}
    family = op = None
    for line in (SPEC / "harness.md").read_text().splitlines():
        if m := FAMILY.match(line):
            family, op = m.group(1), None
        elif (m := ROW.match(line)) and family:
            op = m.group(1).strip("`") if m.group(1) else op
            assert op, f"{family}: a row before the first op: {line}"
            out.setdefault((family, op), {"in": set(), "out": set()})[m.group(2)].add(m.group(3))
    return out


def in_vectors(family: str) -> dict[str, dict[str, set[str]]]:
    """``op -> {"in": keys, "out": keys}`` over the family's cases; kernel cases as ``kernel:<name>`` with ``args.<key>``."""
    out: dict[str, dict[str, set[str]]] = {}
    for case in golden.load(family)["tests"]:
        inputs = case["inputs"]
        if case["op"] == "kernel":
            op, keys = f"kernel:{inputs['op']}", {f"args.{k}" for k in inputs["args"]}
        else:
            op, keys = case["op"], set(inputs)
        entry = out.setdefault(op, {"in": set(), "out": set()})
        entry["in"] |= keys
        entry["out"] |= set(case["expected"]) - {"error"}
    return out


DOC = documented()


@pytest.mark.parametrize("family", golden.FAMILIES)
def test_every_op_in_the_vectors_is_documented_with_its_keys(family):
    ops = in_vectors(family)
    doc = {op: keys for (fam, op), keys in DOC.items() if fam == family}
    assert sorted(set(ops) - set(doc)) == [], "ops in the vectors missing from spec/harness.md"
    assert sorted(set(doc) - set(ops)) == [], "ops documented in spec/harness.md but in no vector"
    for op, keys in ops.items():
        assert keys == doc[op], f"{family} {op}: keys in the vectors {keys} differ from spec/harness.md {doc[op]}"


def test_the_parser_sees_every_family():
    assert {fam for fam, _ in DOC} == set(golden.FAMILIES)


def test_schema_names_the_ops_of_every_family():
    schema = json.loads((SPEC / "vectors" / "vectors.schema.json").read_text())
    for family in golden.FAMILIES:
        ops = {t["op"] for t in golden.load(family)["tests"]}
        assert ops == set(schema["$defs"][f"{family}_op"]["enum"]), family


def _runner() -> dict:
    """The porting guide's runner, executed from its markdown (it needs json and numpy only)."""
    blocks = [b for b in re.findall(r"```python\n(.*?)```", (SPEC / "porting.md").read_text(), flags=re.S)
              if "\ndef run(" in "\n" + b]  # the conform loop beside it is a fragment that reuses the runner's names
    assert len(blocks) == 1, "porting.md holds exactly one python block defining run(): the runner"
    namespace: dict = {}
    exec(compile(blocks[0], "porting.md", "exec"), namespace)
    return namespace


def _reference_ops() -> dict:
    """The numpy reference's functions under the harness's op names, as a port would wire in its own."""
    from vsaopt import reductions, rng, ternary
    from vsaopt.backend import get_backend
    from vsaopt.golden.reductions import OPS as REDUCTION_OPS

    gather = REDUCTION_OPS["gather_stats"]

    ref = "numpy"

    def number(v):
        return None if v is None else float(v)

    return {
        "rng": {
            "philox4x32": lambda counter, key, rounds: {"out": rng.philox4x32(counter, key, rounds, backend=ref)},
            "random_bits": lambda **a: {"bits": rng.random_bits(**a, backend=ref)},
            "uniform": lambda **a: {"u": rng.uniform(**a, backend=ref)},
        },
        "reductions": {
            "abs_stats": lambda x: dict(zip(("abs_sum", "abs_max"), reductions.abs_stats(x, backend=ref))),
            "gather_stats": lambda **a: gather(get_backend(ref), **a),
        },
        "ternary": {
            "quantize_deterministic": lambda x, threshold, ratio: dict(
                zip(("trits", "scale"), ternary.quantize_deterministic(x, number(threshold), number(ratio), backend=ref))
            ),
            "quantize_stochastic": lambda x, **a: dict(zip(("trits", "scale"), ternary.quantize_stochastic(x, **a, backend=ref))),
        },
        "pack": {
            "pack": lambda trits, encoding: {"packed": ternary.pack(trits, encoding, backend=ref)},
            "unpack": lambda packed, n, encoding: {"trits": ternary.unpack(packed, n, encoding, backend=ref)},
        },
    }


@pytest.mark.parametrize("family", ["rng", "reductions", "ternary", "pack"])
def test_porting_guide_runner_passes_the_reference(family):
    passed, failed, skipped = _runner()["run"](SPEC / "vectors" / f"{family}_test.json", _reference_ops()[family])
    assert (failed, skipped) == ([], 0)
    assert passed == golden.load(family)["numberOfTests"]


def test_porting_guide_runner_reports_a_wrong_result_and_a_wrong_error(tmp_path):
    doc = golden.load("pack")
    result = next(t for t in doc["tests"] if t["expected"].get("packed", {}).get("hex"))
    result["expected"]["packed"]["hex"] = "ff" * (len(result["expected"]["packed"]["hex"]) // 2)
    error = next(t for t in doc["tests"] if "error" in t["expected"])
    error["expected"]["error"] = "ShapeError" if error["expected"]["error"] != "ShapeError" else "DTypeError"
    path = tmp_path / "pack_test.json"
    path.write_text(json.dumps(doc))
    passed, failed, skipped = _runner()["run"](path, _reference_ops()["pack"])
    assert sorted(failed) == sorted([result["tcId"], error["tcId"]])
    assert passed == len(doc["tests"]) - 2 and skipped == 0


def test_porting_guide_runner_skips_ops_a_port_lacks():
    passed, failed, skipped = _runner()["run"](SPEC / "vectors" / "rng_test.json", {"uniform": _reference_ops()["rng"]["uniform"]})
    cases = golden.load("rng")["tests"]
    assert failed == [] and passed == sum(t["op"] == "uniform" for t in cases) and skipped == len(cases) - passed


def test_schema_rejects_a_case_whose_keys_differ_from_its_op():
    import jsonschema

    schema = json.loads((SPEC / "vectors" / "vectors.schema.json").read_text())
    doc = golden.load("schedule")
    jsonschema.validate(doc, schema)
    case = next(t for t in doc["tests"] if t["op"] == "phase_trainer_run")
    case["inputs"]["losses_"] = case["inputs"].pop("losses")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)
