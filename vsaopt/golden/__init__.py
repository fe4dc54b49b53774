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
import inspect
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .._arrays import check_int, check_seed
from ..arraycodec import decode, encode
from ..backend import Backend, get_backend, to_device
from ..errors import ConfigError, OptimError, SpecError
from ..protocol import KERNEL_NAMES
from .schema import ARRAY_DTYPES, SCHEMA_NAME, build_schema

__all__ = ["on", "sample_f32", "cosine_midpoint_pair", "check_families", "FAMILIES", "SPEC_VERSION", "MAX_FILE_BYTES",
           "Failure", "generate", "load", "verify", "vectors_dir", "iter_results", "run_case"]

SPEC_VERSION = "8"
#: Operation families, one vector file each.
FAMILIES: tuple[str, ...] = ("rng", "reductions", "ternary", "pack", "vsa", "map", "schedule", "accumulator", "compressor", "history")
#: Largest vector file read (the committed ones are about 1 MB); a bigger one is a SpecError, not a memory exhaustion.
MAX_FILE_BYTES = 256 * 2**20
_HEX = re.compile(r"(?:[0-9a-f]{2})*")
_MAX_NDIM = 32


def on(be: Any, value: Any) -> Any:
    """An input array moved to where ``be`` computes (host arrays stay as they are)."""
    return to_device(be, value) if isinstance(value, np.ndarray) else value


def sample_f32(n: int, seed: int, scale: float = 1.0) -> np.ndarray:
    """Deterministic float32 test data from the spec's own uniforms: ``(u - 0.5) * scale``.

    Raises
    ------
    ConfigError, DTypeError
        ``n`` not an integer in ``[0, 2**32)`` or ``seed`` not one in ``[0, 2**64)``.

    Examples
    --------
    >>> sample_f32(3, seed=1).dtype, sample_f32(0, seed=1).shape
    (dtype('float32'), (0,))
    """
    n = check_int(n, "n", 0, 2**32 - 1)
    seed = check_seed(seed)
    return (get_backend("numpy").uniform_f32(n, seed, 0, 0, 0) - np.float32(0.5)) * np.float32(scale)


def check_families(families: Any, name: str = "families") -> tuple[str, ...]:
    """``families`` (one family name or an iterable of them) as a tuple of known family names.

    Raises
    ------
    ConfigError
        Not a string or an iterable of strings, or a name that is not one of :data:`FAMILIES`.

    Examples
    --------
    >>> check_families("rng"), check_families(["pack", "vsa"])
    (('rng',), ('pack', 'vsa'))
    """
    if isinstance(families, str):
        families = (families,)
    try:
        wanted = tuple(families)
    except TypeError:
        raise ConfigError(f"{name}: expected a family name or a sequence of them, got {type(families).__name__}") from None
    unknown = [f for f in wanted if not isinstance(f, str) or f not in FAMILIES]
    if unknown:
        raise ConfigError(f"{name}: unknown {unknown!r}; expected some of {list(FAMILIES)}")
    return wanted


#: Integers with a sum of squares of exactly 2**25, odd and even entries mixed (found by search).
_SQUARES_2_25 = (317, 1031, 1046, 1362, 2366, 2117, 708, 2110, 542, 3757)


def cosine_midpoint_pair(i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    """``a`` (``_SQUARES_2_25 * 2**-12``) and ``a`` with entries ``i`` and ``j`` (of different parity) swapped.

    ``|a|^2 = |b|^2 = 2`` and ``a.b = (2**25 - (a_i - a_j)**2) * 2**-24`` with ``a_i - a_j`` odd: the cosine is
    ``(2**25 - d**2) / 2**25``, an odd multiple of ``2**-25`` in ``[0.5, 1)`` (a float32 midpoint) whose lower
    neighbour is odd, so ties to even rounds it up.  ``sqrt(A) * sqrt(B)`` is one float64 ulp above 2: the
    quotient lies just below the midpoint and rounds down.

    Raises
    ------
    ConfigError, DTypeError
        ``i`` or ``j`` not an index of the 10 entries, or the two entries of the same parity.

    Examples
    --------
    >>> a, b = cosine_midpoint_pair(0, 2)
    >>> float((a.astype(float) ** 2).sum()), float(a.astype(float) @ b) * 2**24
    (2.0, 33022991.0)
    """
    n = len(_SQUARES_2_25)
    i, j = check_int(i, "i", 0, n - 1), check_int(j, "j", 0, n - 1)
    if (_SQUARES_2_25[i] - _SQUARES_2_25[j]) % 2 == 0:
        raise ConfigError(f"i, j: entries {i} and {j} must have different parity (the cosine is a float32 midpoint "
                          "only for an odd difference)")
    a = np.array(_SQUARES_2_25, np.float32) * np.float32(2.0**-12)
    b = a.copy()
    b[i], b[j] = a[j], a[i]
    return a, b


def _family(name: str) -> Any:
    return importlib.import_module(f"{__name__}.{name}")


def run_case(module: Any, be: Any, case: dict) -> dict:
    """Outputs of one case on ``be``, encoded; ``{"error": ClassName}`` when the op raises an OptimError.

    Raises
    ------
    SpecError
        The case's op is not one of the family's, its inputs do not fit the op,
        or an encoded array is malformed (see :func:`case_inputs`).
    """
    op, inputs = case_inputs(module, be, case)
    try:
        out = op(be, **inputs)
    except OptimError as exc:
        return {"error": type(exc).__name__}
    return encode(out)


def case_inputs(module: Any, be: Any, case: dict) -> tuple[Any, dict]:
    """The op function of ``case`` and its decoded inputs, checked against the op's signature.

    Parameters
    ----------
    module : module
        The family module (its ``OPS``).
    be : Backend
        The backend the case will run on (``kernel`` cases call one of its kernels).
    case : dict
        One case of a vector file (``op``, ``inputs``, ``expected``).

    Returns
    -------
    tuple
        ``(op function, inputs as keyword arguments)``.

    Raises
    ------
    SpecError
        Unknown op or kernel, missing or unexpected inputs, or a malformed array.
    """
    name = case.get("op")
    if not isinstance(name, str) or name not in module.OPS:
        raise SpecError(f"op: expected one of {sorted(module.OPS)}, got {name!r}")
    raw = case.get("inputs")
    if not isinstance(raw, dict):
        raise SpecError(f"inputs: expected an object, got {type(raw).__name__}")
    _check_arrays(raw, "inputs")
    _check_arrays(case.get("expected"), "expected")
    inputs = decode(raw)
    op = module.OPS[name]
    _check_binds(op, inputs, f"op {name!r}")
    if name == "kernel":
        _check_kernel_inputs(be, inputs)
    return op, inputs


def _check_kernel_inputs(be: Any, inputs: dict) -> None:
    """A ``kernel`` case names a protocol kernel (no other attribute of the backend) with arguments that fit it."""
    kernel = inputs["op"]
    if not isinstance(kernel, str) or kernel not in KERNEL_NAMES:
        raise SpecError(f"inputs.op: expected a kernel of the protocol, got {kernel!r}")
    if not isinstance(inputs["args"], dict):
        raise SpecError(f"inputs.args: expected an object, got {type(inputs['args']).__name__}")
    _check_binds(getattr(be, kernel), inputs["args"], f"kernel {kernel!r}", skip_first=False)


def _check_binds(fn: Any, kwargs: dict, what: str, skip_first: bool = True) -> None:
    """SpecError unless ``fn`` accepts exactly the keyword arguments ``kwargs`` (after the backend, when ``skip_first``)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a compiled callable without a signature: the call itself will tell
        return
    try:
        signature.bind(*([None] if skip_first else []), **kwargs)
    except TypeError as exc:
        raise SpecError(f"inputs {sorted(kwargs)} do not fit {what}: {exc}") from None


def _check_arrays(value: Any, where: str) -> None:
    """SpecError at the first encoded array under ``value`` whose dtype, shape or hex is malformed."""
    if isinstance(value, dict) and "hex" in value:
        _check_array(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_arrays(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_arrays(item, f"{where}[{i}]")


def _check_array(value: dict, where: str) -> None:
    if set(value) != {"dtype", "shape", "hex"}:
        raise SpecError(f"{where}: an array has exactly the keys dtype, shape, hex; got {sorted(value)}")
    dtype, shape, text = value["dtype"], value["shape"], value["hex"]
    if dtype not in ARRAY_DTYPES:
        raise SpecError(f"{where}.dtype: expected one of {ARRAY_DTYPES}, got {dtype!r}")
    if (not isinstance(shape, list) or len(shape) > _MAX_NDIM
            or not all(type(d) is int and 0 <= d < 2**63 for d in shape)):
        raise SpecError(f"{where}.shape: expected a list of at most {_MAX_NDIM} non-negative integers, got {shape!r}")
    if not isinstance(text, str) or not _HEX.fullmatch(text):
        raise SpecError(f"{where}.hex: expected lowercase hex digits in pairs")
    size = 1
    for d in shape:
        size *= d
    expected = size * np.dtype(dtype).itemsize
    if len(text) // 2 != expected:
        raise SpecError(f"{where}: shape {shape} of {dtype} needs {expected} bytes, the hex holds {len(text) // 2}")

def generate(directory: str | Path, families: tuple[str, ...] = FAMILIES) -> list[Path]:
    """Write the vector file of each of ``families`` into ``directory`` from the numpy reference.

    When every family is generated, the schema (:func:`vsaopt.golden.schema.build_schema`)
    is written beside them too.  Every case runs before any file is replaced, so a
    failure leaves the folder as it was.

    Raises
    ------
    ConfigError
        ``directory`` is not an existing folder, or a family is unknown.
    """
    families = check_families(families)
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"directory: expected an existing folder, got {str(directory)!r}")
    ref = get_backend("numpy")
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
        docs[fam] = doc
    written = []
    for fam, doc in docs.items():  # every case ran: only now is any file replaced
        path = directory / f"{fam}_test.json"
        _write_atomic(path, json.dumps(doc, indent=1) + "\n")
        written.append(path)
    if tuple(families) == FAMILIES:
        path = directory / SCHEMA_NAME
        _write_atomic(path, json.dumps(build_schema(docs, SPEC_VERSION), indent=1) + "\n")
        written.append(path)
    return written


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` beside ``path`` and rename it there: an interrupted generation leaves no truncated vector file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def vectors_dir() -> Path:
    """Folder of the installed vector files (``spec/vectors`` of the source tree)."""
    return Path(str(resources.files("vsaopt.spec") / "vectors"))


def load(family: str, directory: str | Path | None = None) -> dict:
    """Read and structurally check one family's vector file.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES`.
    directory : str or pathlib.Path, optional
        Folder of the vector files (default: :func:`vectors_dir`).

    Returns
    -------
    dict
        The file's JSON document.

    Raises
    ------
    SpecError
        Naming the file (and the case, by ``tcId`` or position): unreadable, not
        UTF-8, not JSON, another family or spec version, ``numberOfTests`` not the
        number of cases, no cases, or a case without a unique integer ``tcId``, a
        string ``op`` and ``comment``, and ``inputs`` / ``expected`` objects.
    ConfigError
        ``family`` is not one of :data:`FAMILIES`.
    """
    if not isinstance(family, str) or family not in FAMILIES:
        raise ConfigError(f"family: expected one of {list(FAMILIES)}, got {family!r}")
    path = Path(directory or vectors_dir()) / f"{family}_test.json"
    doc = _read_json(path)
    if not isinstance(doc, dict) or doc.get("family") != family or not isinstance(doc.get("tests"), list):
        raise SpecError(f"{path}: not a {family!r} vector file")
    if doc.get("specVersion") != SPEC_VERSION:
        raise SpecError(f"{path}: spec version {doc.get('specVersion')!r}, this vsaopt implements {SPEC_VERSION!r}")
    tests = doc["tests"]
    count = doc.get("numberOfTests")
    if not tests or type(count) is not int or count != len(tests):
        raise SpecError(f"{path}: numberOfTests is {count!r} but the file holds {len(tests)} cases (expected equal, at least 1)")
    seen: set[int] = set()
    for position, case in enumerate(tests, start=1):
        problem = _case_problem(case, seen)
        if problem:
            tc = case.get("tcId") if isinstance(case, dict) else None
            raise SpecError(f"{path}: case {position} (tcId {tc!r}): {problem}")
    return doc


def _case_problem(case: Any, seen: set[int]) -> str | None:
    """What is wrong with the layout of one case (None: nothing); records its tcId in ``seen``."""
    if not isinstance(case, dict):
        return f"expected an object, got {type(case).__name__}"
    tc = case.get("tcId")
    if type(tc) is not int or tc < 1:
        return "tcId: expected an integer >= 1"
    if tc in seen:
        return "tcId: used by an earlier case"
    seen.add(tc)
    for key, kind in (("op", str), ("comment", str), ("inputs", dict), ("expected", dict)):
        if not isinstance(case.get(key), kind):
            return f"{key}: expected {'a string' if kind is str else 'an object'}, got {type(case.get(key)).__name__}"
    return None


def _read_json(path: Path) -> Any:
    """The JSON document of a vector file; SpecError naming the file when it cannot be read or parsed."""
    try:
        if not path.is_file():
            raise SpecError(f"{path}: cannot read vector file (missing, or not a regular file)")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SpecError(f"{path}: vector file larger than {MAX_FILE_BYTES} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read vector file ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise SpecError(f"{path}: not valid JSON ({exc})") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON; floats are encoded as float64 arrays")


@dataclass(frozen=True)
class Failure:
    """One golden case a backend did not reproduce, or a vector file or case that could not be run.

    ``tc_id`` is None when the whole file failed (``detail`` names it).
    """

    family: str
    tc_id: int | None
    op: str
    comment: str
    detail: str

    def __str__(self) -> str:
        if self.tc_id is None:
            return f"{self.family}: {self.detail}"
        return f"{self.family}#{self.tc_id} ({self.op}: {self.comment}): {self.detail}"


def iter_results(backend: Any, directory: str | Path | None = None) -> Iterator[tuple[str, dict | None, Failure | None]]:
    """Run every golden case on ``backend``; yield ``(family, case, failure or None)``.

    A vector file that :func:`load` refuses yields one ``(family, None, failure)``;
    a case that is malformed or whose op raises something other than a vsaopt
    error yields a failure naming the file and the case.  Nothing is raised for a
    file or a case, so one bad file or case does not hide the results of the others.
    ``backend`` is a backend object or a registered name (``"numpy"``, ``"numba"``...).

    Raises
    ------
    ConfigError, BackendError
        ``backend`` is neither a backend nor the name of an available one (before any case runs).
    """
    backend = _backend_of(backend)
    for fam in FAMILIES:
        module = _family(fam)
        path = Path(directory or vectors_dir()) / f"{fam}_test.json"
        try:
            tests = load(fam, directory)["tests"]
        except SpecError as exc:
            yield fam, None, Failure(fam, None, "", "", str(exc))
            continue
        for case in tests:
            yield fam, case, _case_failure(fam, module, backend, case, path)


def _backend_of(backend: Any) -> Backend:
    """A backend object for ``backend`` (an object, or a name resolved by :func:`vsaopt.backend.get_backend`)."""
    if isinstance(backend, str):
        return get_backend(backend)
    if not isinstance(backend, Backend):
        raise ConfigError(f"backend: expected a backend or a backend name, got {type(backend).__name__}")
    return backend


def _case_failure(fam: str, module: Any, backend: Any, case: dict, path: Path) -> Failure | None:
    """The failure of one case on ``backend`` (None: it reproduced the expected outputs)."""
    try:
        got = run_case(module, backend, case)
    except SpecError as exc:
        return Failure(fam, case["tcId"], case["op"], case["comment"], f"{path.name}: malformed case: {exc}")
    except Exception as exc:  # a vector file is untrusted input: report, do not abort the run
        return Failure(fam, case["tcId"], case["op"], case["comment"],
                       f"{path.name}: the op raised {type(exc).__name__}: {exc}")
    if got != case["expected"]:
        return Failure(fam, case["tcId"], case["op"], case["comment"], _describe(got, case["expected"]))
    return None


def verify(backend: Any, directory: str | Path | None = None) -> list[Failure]:
    """Every golden case ``backend`` does not reproduce byte for byte, and every file or case that cannot run (empty: all pass).

    ``backend`` is a backend object or a registered name; see :func:`iter_results`.
    """
    return [f for _, _, f in iter_results(backend, directory) if f is not None]


def _describe(got: dict, expected: dict) -> str:
    if "error" in expected or "error" in got:
        return f"expected {expected.get('error', 'a result')}, got {got.get('error', 'a result')}"
    keys = [k for k in expected if got.get(k) != expected[k]]
    return "outputs differ: " + ", ".join(keys or sorted(set(got) ^ set(expected)))
