"""The JSON schema of the golden vector files, derived from the vectors themselves.

The file layout (spec/SPEC.md section 8) is fixed; for each family the schema
lists its ops and, per op (per kernel for ``kernel`` cases), the input and
expected keys and the kind of each value, as spec/harness.md documents them.
It is written by ``vsaopt spec generate`` next to the vector files, so it never
drifts from them; a test checks the committed file equals a fresh one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SCHEMA_NAME", "ARRAY_DTYPES", "build_schema"]

SCHEMA_NAME = "vectors.schema.json"

_ARRAY = {"$ref": "#/$defs/array"}
#: The dtype names an encoded array of a vector file may have.
ARRAY_DTYPES: list[str] = ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float16", "float32", "float64"]


def _kind(value: Any) -> dict:
    """The schema of one encoded value: an array, a JSON object, or a JSON scalar / list."""
    if isinstance(value, dict):
        return dict(_ARRAY) if "hex" in value else {"type": "object", "not": {"required": ["hex"]}}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, list):
        return {"type": "array"}
    return {"type": "null"}


def _keys(examples: list[dict]) -> dict:
    """An object schema requiring exactly the keys of the ``examples``; each value of a kind some example has."""
    props = {}
    for k in sorted(examples[0]):
        kinds = []
        for ex in examples:
            kind = _kind(ex.get(k))
            if kind not in kinds:
                kinds.append(kind)
        props[k] = kinds[0] if len(kinds) == 1 else {"anyOf": kinds}
    return {"required": sorted(examples[0]), "additionalProperties": False, "properties": props}


def _expected(cases: list[dict]) -> dict:
    outputs = [c["expected"] for c in cases if "error" not in c["expected"]]
    options: list[dict] = [{"required": ["error"]}]
    if outputs:
        options.append(_keys(outputs))
    return {"anyOf": options}


def _op_rules(family_cases: list[dict]) -> list[dict]:
    rules = []
    by_op: dict[str, list[dict]] = {}
    for case in family_cases:
        by_op.setdefault(case["op"], []).append(case)
    for op in sorted(by_op):
        cases = by_op[op]
        if op == "kernel":
            by_kernel: dict[str, list[dict]] = {}
            for case in cases:
                by_kernel.setdefault(case["inputs"]["op"], []).append(case)
            for kernel in sorted(by_kernel):
                kcases = by_kernel[kernel]
                inputs = {
                    "required": ["op", "args"],
                    "additionalProperties": False,
                    "properties": {"op": {"const": kernel}, "args": _keys([c["inputs"]["args"] for c in kcases])},
                }
                rules.append({
                    "if": {"properties": {"op": {"const": "kernel"}, "inputs": {"properties": {"op": {"const": kernel}}, "required": ["op"]}},
                           "required": ["op", "inputs"]},
                    "then": {"properties": {"inputs": inputs, "expected": _expected(kcases)}},
                })
            rules.append({
                "if": {"properties": {"op": {"const": "kernel"}}, "required": ["op"]},
                "then": {"properties": {"inputs": {"properties": {"op": {"enum": sorted(by_kernel)}}}}},
            })
            continue
        rules.append({
            "if": {"properties": {"op": {"const": op}}, "required": ["op"]},
            "then": {"properties": {"inputs": _keys([c["inputs"] for c in cases]), "expected": _expected(cases)}},
        })
    return rules


def build_schema(files: dict[str, dict], spec_version: str) -> dict:
    """The schema of the vector files ``files`` (family -> the file's JSON document)."""
    families = list(files)
    defs: dict[str, Any] = {
        "array": {
            "type": "object",
            "required": ["dtype", "shape", "hex"],
            "additionalProperties": False,
            "properties": {
                "dtype": {"enum": ARRAY_DTYPES},
                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "hex": {"type": "string", "pattern": "^([0-9a-f]{2})*$"},
            },
        },
        "value": {
            "oneOf": [
                _ARRAY,
                {"type": "integer"},
                {"type": "string"},
                {"type": "boolean"},
                {"type": "null"},
                {"type": "array", "items": {"$ref": "#/$defs/value"}},
                {"type": "object", "not": {"required": ["hex"]}, "additionalProperties": {"$ref": "#/$defs/value"}},
            ]
        },
    }
    for family, doc in files.items():
        cases = doc["tests"]
        defs[f"{family}_op"] = {"enum": sorted({c["op"] for c in cases})}
        defs[f"{family}_case"] = {"properties": {"op": {"$ref": f"#/$defs/{family}_op"}}, "allOf": _op_rules(cases)}
    case = {
        "type": "object",
        "required": ["tcId", "op", "comment", "inputs", "expected"],
        "additionalProperties": False,
        "properties": {
            "tcId": {"type": "integer", "minimum": 1},
            "op": {"type": "string"},
            "comment": {"type": "string"},
            "inputs": {"type": "object", "additionalProperties": {"$ref": "#/$defs/value"}},
            "expected": {
                "oneOf": [
                    {"type": "object", "required": ["error"], "additionalProperties": False,
                     "properties": {"error": {"type": "string", "pattern": "^[A-Z][A-Za-z]*Error$"}}},
                    {"type": "object", "not": {"required": ["error"]}, "additionalProperties": {"$ref": "#/$defs/value"}},
                ]
            },
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "vsaopt golden vectors",
        "description": "Golden vector files of the vsaopt specification: the file layout (SPEC.md section 8) and, "
        "per family and op, the input and expected keys of spec/harness.md.",
        "type": "object",
        "required": ["family", "specVersion", "schema", "numberOfTests", "tests"],
        "additionalProperties": False,
        "properties": {
            "family": {"enum": families},
            "specVersion": {"const": spec_version},
            "schema": {"const": SCHEMA_NAME},
            "numberOfTests": {"type": "integer", "minimum": 1},
            "tests": {"type": "array", "minItems": 1, "items": case},
        },
        "allOf": [
            {"if": {"properties": {"family": {"const": f}}, "required": ["family"]},
             "then": {"properties": {"tests": {"items": {"$ref": f"#/$defs/{f}_case"}}}}}
            for f in families
        ],
        "$defs": defs,
    }
