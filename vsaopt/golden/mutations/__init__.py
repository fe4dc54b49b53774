"""Mutation testing of the golden vectors: plausible porting bugs applied to the numpy reference at run time.

A vector file is a test suite for somebody else's port; it is as strong as the
bugs it catches.  Each :class:`Mutation` of the catalogue models one porting
bug (a summation order, a float32 intermediate, ``<`` for ``<=``, a counter
layout, an off-by-one schedule rule...).  :func:`applied` installs it for the
duration of a ``with`` block: it replaces functions of the reference backend
(``vsaopt.backends.numpy``) or of the core by a mutated copy, everywhere the
original is referenced, and yields a backend object whose kernel table holds
the mutated kernels.  Nothing is edited on disk, and leaving the block restores
every original, so the unmutated reference stays byte-identical.

:func:`run_mutation` runs a family's vectors against one mutation and reports
which cases kill it (fail under it); a mutation no case kills *survives*.  A
mutation that no input can distinguish from the reference is marked
``equivalent`` with the reason and is not counted.

Examples
--------
>>> from vsaopt.golden.mutations import catalogue
>>> len(catalogue()) >= 150
True
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from ...backend import Backend
from ...errors import ConfigError
from .. import FAMILIES, _case_failure, _family, check_families, load, vectors_dir

__all__ = ["Mutation", "MutationResult", "BUG_CLASSES", "mutation", "catalogue", "applied", "run_mutation", "run_catalogue"]

#: The classes of porting bugs the catalogue models (key -> meaning).
BUG_CLASSES: dict[str, str] = {
    "boundary": "a comparison at a threshold, tie or boundary (< for <=, a tie rule)",
    "order": "a summation or fold order other than the spec's",
    "precision": "float32 vs float64 constants or intermediates, a fused or reassociated operation",
    "exponent": "an exponent edge: powers of two, the float32 exponent range, subnormals",
    "layout": "a counter, key, bit or byte layout, an index or stride",
    "rounding": "a rounding or conversion rule (truncation, ties, saturation, wrap)",
    "rule": "a rule of the algorithm read another way (off by one, a missing case)",
    "path": "a configuration path or input no other case reaches",
    "check": "an input check missing, or raising another error class",
}

_REFERENCE = "vsaopt.backends.numpy"


@dataclass(frozen=True)
class Mutation:
    """One plausible porting bug.

    Attributes
    ----------
    name : str
        Unique name (``family.what``).
    family : str
        The vector family whose cases must kill it.
    bug_class : str
        A key of :data:`BUG_CLASSES`.
    doc : str
        What the mutated code does differently, in one sentence.
    targets : tuple of str
        What it replaces: ``"module:attr"`` or ``"module:Class.attr"`` (a
        leading ``.`` means ``vsaopt.backends.numpy``), or ``"kernel:name"``.
    make : callable
        ``make(*originals) -> replacement or tuple of replacements``, one per target.
    equivalent : str or None
        Why no input can tell it from the reference (None: it is not equivalent).
    """

    name: str
    family: str
    bug_class: str
    doc: str
    targets: tuple[str, ...]
    make: Callable[..., Any]
    equivalent: str | None = None


@dataclass(frozen=True)
class MutationResult:
    """The cases of a family that kill one mutation (empty: it survives)."""

    mutation: Mutation
    killed_by: tuple[int, ...]
    cases: int

    @property
    def status(self) -> str:
        """``"killed"``, ``"SURVIVED"`` or ``"equivalent"``."""
        if self.mutation.equivalent is not None:
            return "equivalent"
        return "killed" if self.killed_by else "SURVIVED"


_CATALOGUE: dict[str, Mutation] = {}
_FAMILY_MODULES = FAMILIES


def mutation(family: str, bug_class: str, *targets: str, equivalent: str | None = None) -> Callable[[Callable], Callable]:
    """Register the decorated ``make(*originals)`` as a mutation named ``family.<function name>``.

    The function's docstring (first line) says what the mutated code does.
    """
    if family not in FAMILIES:
        raise ConfigError(f"family: expected one of {list(FAMILIES)}, got {family!r}")
    if bug_class not in BUG_CLASSES:
        raise ConfigError(f"bug_class: expected one of {list(BUG_CLASSES)}, got {bug_class!r}")
    if not targets:
        raise ConfigError("targets: expected at least one target")

    def register(make: Callable) -> Callable:
        name = f"{family}.{make.__name__.lstrip('_')}"
        if name in _CATALOGUE:
            raise ConfigError(f"mutation: {name!r} is registered twice")
        doc = (make.__doc__ or "").strip().splitlines()[0] if make.__doc__ else name
        _CATALOGUE[name] = Mutation(name, family, bug_class, doc, tuple(targets), make, equivalent)
        return make

    return register


def catalogue(families: Iterable[str] | None = None) -> list[Mutation]:
    """Every registered mutation (of ``families``: one name or several, default all), in family order then registration order.

    Raises
    ------
    ConfigError
        An unknown family name, or ``families`` neither a name nor a sequence of names.
    """
    wanted = FAMILIES if families is None else check_families(families)
    for fam in FAMILIES:
        importlib.import_module(f"{__name__}.{fam}")
    return [m for fam in FAMILIES if fam in wanted for m in _CATALOGUE.values() if m.family == fam]


def _resolve(target: str) -> tuple[Any, str, Any]:
    """``(owner, attribute, original)`` of a target ``"module:attr"`` / ``"module:Class.attr"`` / ``"kernel:name"``."""
    module_name, _, attr = target.partition(":")
    if module_name == "kernel":
        table = importlib.import_module(_REFERENCE).kernels()
        return None, attr, table[attr]
    if module_name.startswith("."):
        module_name = _REFERENCE + module_name
    owner: Any = importlib.import_module(module_name)
    *path, attr = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, attr, owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)


def _patch_everywhere(stack: ExitStack, original: Any, replacement: Any) -> None:
    """Replace every module-level reference to ``original`` in vsaopt's modules by ``replacement``.

    The golden families' op tables are searched too: an op that captured the
    original in a closure (``OPS = {"bind": _pair_op(vsa.bind)}``) sees the replacement.
    """
    for name, module in list(sys.modules.items()):
        if not name.startswith("vsaopt") or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if value is original:
                stack.enter_context(mock.patch.object(module, attr, replacement))
        for op in getattr(module, "OPS", {}).values() if name.startswith("vsaopt.golden.") else ():
            for cell in getattr(op, "__closure__", None) or ():
                if cell.cell_contents is original:
                    stack.enter_context(_cell_set(cell, replacement))


@contextmanager
def _cell_set(cell: Any, value: Any) -> Iterator[None]:
    """A closure cell holding ``value`` for the ``with`` block, its old content after it."""
    old = cell.cell_contents
    cell.cell_contents = value
    try:
        yield
    finally:
        cell.cell_contents = old


def _mutant_backend(swaps: dict[int, Any]) -> Backend:
    """The reference backend with each kernel whose id is in ``swaps`` replaced, and the composed kernels rebuilt."""
    ref = importlib.import_module(_REFERENCE)
    record = importlib.import_module(_REFERENCE + ".record")
    table = {k: swaps.get(id(fn), fn) for k, fn in ref.kernels().items()}
    mutated = {id(fn) for fn in swaps.values()}
    if id(table["gather_stats"]) not in mutated:
        table["gather_stats"] = record.gather_with(table["dot"], table["row_sumsq"], table["predict_linear"])
    if id(table["residual_stats"]) not in mutated:
        table["residual_stats"] = record.residual_stats_with(table["dot"], table["row_sumsq"], table["predict_linear"],
                                                             table["residual_update"], table["abs_stats"])
    return Backend("numpy", np, table, array_type=np.ndarray, device="cpu", details={"mutant": "yes"})


@contextmanager
def applied(m: Mutation) -> Iterator[Backend]:
    """Install mutation ``m`` for the ``with`` block; yields the mutated reference backend.

    Every reference to a target (module attributes anywhere in vsaopt, a class
    attribute, the kernel table) sees the mutated function inside the block and
    the original after it, whatever the block raises.
    """
    resolved = [_resolve(t) for t in m.targets]
    made = m.make(*(orig for _, _, orig in resolved))
    replacements = made if isinstance(made, tuple) else (made,)
    if len(replacements) != len(resolved):
        raise ConfigError(f"mutation {m.name!r}: {len(resolved)} targets but {len(replacements)} replacements")
    swaps: dict[int, Any] = {}
    with ExitStack() as stack:
        for (owner, attr, original), new in zip(resolved, replacements):
            swaps[id(original)] = new
            if isinstance(owner, type):
                stack.enter_context(mock.patch.object(owner, attr, new))
            else:
                _patch_everywhere(stack, original, new)
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        stack.enter_context(np.errstate(all="ignore"))
        yield _mutant_backend(swaps)


def _tests(family: str, directory: str | Path | None) -> list[dict]:
    return load(family, directory)["tests"]


def _as_mutation(m: Mutation | str) -> Mutation:
    """``m``, or the catalogue's mutation of that name."""
    if isinstance(m, Mutation):
        return m
    if isinstance(m, str):
        catalogue()
        if m in _CATALOGUE:
            return _CATALOGUE[m]
        raise ConfigError(f"mutation: no mutation named {m!r} in the catalogue (names are 'family.what')")
    raise ConfigError(f"mutation: expected a Mutation or a catalogue name, got {type(m).__name__}")


def run_mutation(m: Mutation | str, tests: list[dict] | None = None, directory: str | Path | None = None) -> MutationResult:
    """Run the vectors of ``m.family`` (or ``tests``) under mutation ``m`` (or the catalogue's mutation of that name).

    Returns the tcIds of the cases it fails.

    Raises
    ------
    ConfigError
        ``m`` is neither a mutation nor the name of one.
    SpecError
        The family's vector file cannot be read.
    """
    m = _as_mutation(m)
    tests = _tests(m.family, directory) if tests is None else tests
    if m.equivalent is not None:
        return MutationResult(m, (), len(tests))
    module = _family(m.family)
    path = Path(directory or vectors_dir()) / f"{m.family}_test.json"
    with applied(m) as be:
        killed = tuple(case["tcId"] for case in tests if _case_failure(m.family, module, be, case, path) is not None)
    return MutationResult(m, killed, len(tests))


def run_catalogue(mutations: Iterable[Mutation], directory: str | Path | None = None,
                  progress: Callable[[MutationResult], None] | None = None) -> list[MutationResult]:
    """Run each of ``mutations`` (objects or names) against its family's vectors (each file read once).

    ``progress`` is called after each.  Every item is checked before any runs.

    Raises
    ------
    ConfigError
        An item that is neither a mutation nor the name of one.
    """
    todo = [_as_mutation(m) for m in mutations]
    cache: dict[str, list[dict]] = {}
    results = []
    for m in todo:
        if m.family not in cache:
            cache[m.family] = _tests(m.family, directory)
        r = run_mutation(m, cache[m.family], directory)
        results.append(r)
        if progress is not None:
            progress(r)
    return results
