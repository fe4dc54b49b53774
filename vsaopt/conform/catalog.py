"""Every op the conform command checks, with the strategy of its inputs (``family.op`` -> strategy)."""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigError
from ..golden import FAMILIES, _family

__all__ = ["strategies", "op_names", "select"]

_MODULES = ("gen_core", "gen_algebra", "gen_accum", "gen_schedule")


def strategies() -> dict[str, Any]:
    """``family.op`` -> the Hypothesis strategy of its inputs, for every op of every vector family, in family order."""
    table: dict[str, Any] = {}
    for name in _MODULES:
        table.update(importlib.import_module(f"{__package__}.{name}").STRATEGIES)
    return {name: table[name] for name in op_names() if name in table}


def op_names() -> list[str]:
    """Every op of the vector families, ``family.op``, in family order then the family's op order."""
    return [f"{fam}.{op}" for fam in FAMILIES for op in _family(fam).OPS]


def select(families: tuple[str, ...] = (), ops: tuple[str, ...] = ()) -> list[str]:
    """The ops a run checks: those of ``families`` and those named in ``ops`` (``family.op`` or a bare op name).

    Nothing selected means every op.

    Raises
    ------
    ConfigError
        An unknown family or op name.
    """
    names = op_names()
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ConfigError(f"family: unknown {unknown}; expected some of {list(FAMILIES)}")
    chosen = {n for n in names if n.split(".")[0] in families}
    for op in ops:
        match = [n for n in names if op in (n, n.split(".", 1)[1])]
        if not match:
            raise ConfigError(f"op: unknown {op!r}; expected family.op, e.g. {names[0]!r} (vsaopt conform --list shows them)")
        chosen.update(match)
    return [n for n in names if n in chosen] if (families or ops) else names
