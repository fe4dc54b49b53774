"""Golden vectors: generate the spec's test-vector files from the reference, and check any backend against them.

One file per operation family, ``spec/vectors/<family>_test.json`` (schema in
``spec/vectors/vectors.schema.json``).  Each case has a ``tcId``, a ``comment``,
an ``op``, its ``inputs`` and the ``expected`` outputs (or the name of the
error the op must raise).  Arrays are ``{"dtype", "shape", "hex"}`` with the
hex of their little-endian bytes; integers are JSON integers; floats are
float64 arrays of shape ``[]`` so no decimal rounding is involved.

A family module ``vsaopt.golden.<family>`` defines ``OPS`` (op name ->
``f(backend, **inputs) -> dict of outputs``) and ``cases()`` (a list of
``{"op", "comment", "inputs"}``).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..arraycodec import decode, encode
from .schema import SCHEMA_NAME, build_schema
from ..backend import get_backend, to_device
from ..errors import OptimError, SpecError

__all__ = ["on", "sample_f32", "FAMILIES", "SPEC_VERSION", "Failure", "generate", "load", "verify", "vectors_dir"]

SPEC_VERSION = "6"
#: Operation families, one vector file each.
FAMILIES: tuple[str, ...] = ("rng", "reductions", "ternary", "pack", "vsa", "map", "schedule", "accumulator", "compressor", "history")


def on(be: Any, value: Any) -> Any:
    """An input array moved to where ``be`` computes (host arrays stay as they are)."""
    return to_device(be, value) if isinstance(value, np.ndarray) else value


def sample_f32(n: int, seed: int, scale: float = 1.0) -> np.ndarray:
    """Deterministic float32 test data from the spec's own uniforms: ``(u - 0.5) * scale``."""
    return (get_backend("numpy").uniform_f32(n, seed, 0, 0, 0) - np.float32(0.5)) * np.float32(scale)


def _family(name: str) -> Any:
    return importlib.import_module(f"{__name__}.{name}")


def run_case(module: Any, be: Any, case: dict) -> dict:
    """Outputs of one case on ``be``, encoded; ``{"error": ClassName}`` when the op raises an OptimError."""
    inputs = decode(case["inputs"])
    try:
        out = module.OPS[case["op"]](be, **inputs)
    except OptimError as exc:
        return {"error": type(exc).__name__}
    return encode(out)


def generate(directory: str | Path, families: tuple[str, ...] = FAMILIES) -> list[Path]:
    """Write the vector file of each of ``families`` into ``directory`` from the numpy reference.

    When every family is generated, the schema (:func:`vsaopt.golden.schema.build_schema`)
    is written beside them too.
    """
    ref = get_backend("numpy")
    directory = Path(directory)
    written = []
    docs = {}
    for fam in families:
        module = _family(fam)
        tests = []
        for i, case in enumerate(module.cases(), start=1):
            enc = {"op": case["op"], "comment": case["comment"], "inputs": encode(case["inputs"])}
            tests.append({"tcId": i, **enc, "expected": run_case(module, ref, enc)})
        doc = {
            "family": fam,
            "specVersion": SPEC_VERSION,
            "schema": SCHEMA_NAME,
            "numberOfTests": len(tests),
            "tests": tests,
        }
        path = directory / f"{fam}_test.json"
        path.write_text(json.dumps(doc, indent=1) + "\n")
        written.append(path)
        docs[fam] = doc
    if tuple(families) == FAMILIES:
        path = directory / SCHEMA_NAME
        path.write_text(json.dumps(build_schema(docs, SPEC_VERSION), indent=1) + "\n")
        written.append(path)
    return written


def vectors_dir() -> Path:
    """Folder of the installed vector files (``spec/vectors`` of the source tree)."""
    return Path(str(resources.files("vsaopt.spec") / "vectors"))


def load(family: str, directory: str | Path | None = None) -> dict:
    """Read and structurally check one family's vector file."""
    path = Path(directory or vectors_dir()) / f"{family}_test.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecError(f"{path}: cannot read vector file ({exc})") from None
    if doc.get("family") != family or not isinstance(doc.get("tests"), list):
        raise SpecError(f"{path}: not a {family!r} vector file")
    if doc.get("specVersion") != SPEC_VERSION:
        raise SpecError(f"{path}: spec version {doc.get('specVersion')!r}, this vsaopt implements {SPEC_VERSION!r}")
    return doc


@dataclass(frozen=True)
class Failure:
    """One golden case a backend did not reproduce."""

    family: str
    tc_id: int
    op: str
    comment: str
    detail: str

    def __str__(self) -> str:
        return f"{self.family}#{self.tc_id} ({self.op}: {self.comment}): {self.detail}"


def iter_results(backend: Any, directory: str | Path | None = None) -> Iterator[tuple[str, dict, Failure | None]]:
    """Run every golden case on ``backend``; yield ``(family, case, failure or None)``."""
    for fam in FAMILIES:
        module = _family(fam)
        for case in load(fam, directory)["tests"]:
            got = run_case(module, backend, case)
            failure = None
            if got != case["expected"]:
                failure = Failure(fam, case["tcId"], case["op"], case["comment"], _describe(got, case["expected"]))
            yield fam, case, failure


def verify(backend: Any, directory: str | Path | None = None) -> list[Failure]:
    """Every golden case ``backend`` does not reproduce byte for byte (empty: all pass)."""
    return [f for _, _, f in iter_results(backend, directory) if f is not None]


def _describe(got: dict, expected: dict) -> str:
    if "error" in expected or "error" in got:
        return f"expected {expected.get('error', 'a result')}, got {got.get('error', 'a result')}"
    keys = [k for k in expected if got.get(k) != expected[k]]
    return "outputs differ: " + ", ".join(keys or sorted(set(got) ^ set(expected)))
