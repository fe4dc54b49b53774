"""Import layers: no module imports one of a higher layer.

Every module under ``vsaopt/`` and ``backends/`` (installed as
``vsaopt.backends``) is parsed with :mod:`ast`, not imported, and each of its
import statements, function-local ones included, is checked against
:data:`LAYERS`.  Imports within one layer are allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Source folder -> the package it installs as.
SOURCE_DIRS = {ROOT / "vsaopt": "vsaopt", ROOT / "backends": "vsaopt.backends"}

#: Module (or package prefix) -> layer, lowest first.  A module may import its
#: own layer and those below.  Entries may name modules that do not exist yet.
LAYERS: dict[str, int] = {
    "vsaopt.errors": 0,
    # arrays and backends
    "vsaopt._arrays": 1,
    "vsaopt._bits": 1,
    "vsaopt.backend": 1,
    "vsaopt.protocol": 1,
    "vsaopt._grads": 1,
    "vsaopt._json": 1,
    "vsaopt.checkpoint": 1,
    "vsaopt.arraycodec": 1,
    "vsaopt.backends": 1,
    # randomness, reductions, configs
    "vsaopt.rng": 2,
    "vsaopt.reductions": 2,
    "vsaopt.config": 2,
    # ternary quantization, VSA algebra, projection
    "vsaopt.ternary": 3,
    "vsaopt.vsa": 3,
    "vsaopt.projection": 3,
    # accumulation and compression
    "vsaopt.accumulator": 4,
    "vsaopt.compressor": 4,
    "vsaopt.wire": 4,
    # phase training
    "vsaopt.phase": 5,
    # golden vectors and test support
    "vsaopt.golden": 6,
    "vsaopt.testing": 6,
    "vsaopt.conform": 6,
    # applications
    "vsaopt.train": 7,
    "vsaopt.torch": 7,
    "vsaopt.benchmarks": 7,
    "vsaopt.advise": 7,
    # command line, and the package's own namespace (it re-exports from every layer)
    "vsaopt.cli": 8,
    "vsaopt.__main__": 8,
    "vsaopt": 8,
}



def layer_of(module: str) -> int | None:
    """Layer of ``module``: its longest dotted prefix in LAYERS (the root package matches only itself)."""
    parts = module.split(".")
    for i in range(len(parts), 1, -1):
        key = ".".join(parts[:i])
        if key in LAYERS:
            return LAYERS[key]
    return LAYERS.get(module)


def source_modules() -> dict[str, Path]:
    """Module name -> file of every module of the two source folders."""
    found = {}
    for folder, package in SOURCE_DIRS.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("").parts
            if rel[-1] == "__init__":
                rel = rel[:-1]
            found[".".join((package, *rel))] = path
    return found


def imports_of(module: str, source: str, is_package: bool, known: set[str]) -> set[str]:
    """The vsaopt modules that ``source`` (the text of ``module``) imports, anywhere in the file."""
    package = module if is_package else module.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in known or sub in LAYERS else base)  # a submodule, or a name in base
    return {t for t in targets if t == "vsaopt" or t.startswith("vsaopt.")}


def violations() -> tuple[list[str], set[tuple[str, str]]]:
    """Modules without a layer, and the (importer, imported) pairs that go upwards."""
    modules = source_modules()
    known = set(modules)
    unplaced, upward = [], set()
    for name, path in modules.items():
        own = layer_of(name)
        if own is None:
            unplaced.append(name)
            continue
        for target in imports_of(name, path.read_text(encoding="utf-8"), path.name == "__init__.py", known):
            layer = layer_of(target)
            if layer is None:
                unplaced.append(f"{target} (imported by {name})")
            elif layer > own:
                upward.add((name, target))
    return unplaced, upward


def test_every_module_has_a_layer():
    unplaced, _ = violations()
    assert not unplaced, f"place these modules in LAYERS of {Path(__file__).name}: {unplaced}"


def test_no_module_imports_a_higher_layer():
    _, upward = violations()
    new = sorted(upward)
    assert not new, "imports of a higher layer:\n" + "\n".join(
        f"  {a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})" for a, b in new
    )



@pytest.mark.parametrize(
    "module, is_package, source, expected",
    [
        ("vsaopt.rng", False, "def f():\n    from .phase import x\n", {"vsaopt.phase"}),
        ("vsaopt.golden", True, "from . import schedule\nfrom .. import vsa\n", {"vsaopt.golden.schedule", "vsaopt.vsa"}),
        ("vsaopt.backends.numba.pack", False, "import numba\nfrom vsaopt.backend import Backend\n", {"vsaopt.backend"}),
        ("vsaopt.cli.commands", False, "from .. import __version__\n", {"vsaopt"}),
        ("vsaopt.phase.types", False, "from ..checkpoint import save\n", {"vsaopt.checkpoint"}),
    ],
)
def test_imports_are_resolved(module, is_package, source, expected):
    known = {"vsaopt.golden.schedule", "vsaopt.vsa", "vsaopt.phase"}
    assert imports_of(module, source, is_package, known) == expected


def test_a_function_local_upward_import_is_caught():
    targets = imports_of("vsaopt.rng", "def f():\n    from .cli import main\n", False, set())
    assert any(layer_of(t) > layer_of("vsaopt.rng") for t in targets)
