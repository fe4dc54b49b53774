"""``vsaopt spec mutate``: mutation testing of the golden vectors (how many plausible porting bugs they catch)."""

from __future__ import annotations

from typing import Any

import json
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .options import SafePath, wide_console_width
from .tables import print_table

console = Console(width=wide_console_width())

#: Shown tcIds of the killing cases before the rest is summarised.
SHOWN_IDS = 6


def _killers(result: object) -> str:
    """The killing cases of one result as a short text: ``3: #1 #4 #9`` or ``SURVIVED`` or ``equivalent: why``."""
    status = result.status  # type: ignore[attr-defined]
    if status == "equivalent":
        return f"equivalent: {result.mutation.equivalent}"  # type: ignore[attr-defined]
    ids = result.killed_by  # type: ignore[attr-defined]
    if not ids:
        return "SURVIVED"
    shown = " ".join(f"#{i}" for i in ids[:SHOWN_IDS])
    return f"{len(ids)}: {shown}" + (" ..." if len(ids) > SHOWN_IDS else "")


def _family_table(family: str, results: list) -> Table:
    table = Table(title=f"{family}: {len(results)} mutations")
    table.add_column("mutation")
    table.add_column("class")
    table.add_column("killed by (cases: tcIds)", overflow="fold")
    table.add_column("note")
    for r in results:
        table.add_row(r.mutation.name.split(".", 1)[1], r.mutation.bug_class, _killers(r), r.mutation.doc)
    return table


def summarise(results: list) -> dict[str, dict[str, Any]]:
    """Per family: catalogue size, killed, equivalent, survivors, killed by one case only, kill rate of the non-equivalent."""
    out: dict[str, dict[str, Any]] = {}
    for r in results:
        fam = out.setdefault(r.mutation.family, {"mutations": 0, "killed": 0, "equivalent": 0, "survivors": [],
                                                  "killed_once": []})
        fam["mutations"] += 1
        if r.status == "equivalent":
            fam["equivalent"] += 1
        elif r.status == "killed":
            fam["killed"] += 1
            if len(r.killed_by) == 1:
                fam["killed_once"].append(r.mutation.name)
        else:
            fam["survivors"].append(r.mutation.name)
    for fam in out.values():
        live = fam["mutations"] - fam["equivalent"]
        fam["kill_rate"] = 1.0 if live == 0 else fam["killed"] / live
    return out


def _summary_table(summary: dict) -> Table:
    table = Table(title="summary")
    for name in ("family", "mutations", "killed", "equivalent", "survived", "killed by one case", "kill rate"):
        table.add_column(name, justify="left" if name == "family" else "right")
    for fam, s in summary.items():
        table.add_row(fam, str(s["mutations"]), str(s["killed"]), str(s["equivalent"]), str(len(s["survivors"])),
                      str(len(s["killed_once"])), f"{100 * s['kill_rate']:.1f} %")
    return table


@click.command("mutate")
@click.option("--family", "families", multiple=True,
              help="Only the mutations of these families (repeatable; default: all).")
@click.option("--vectors", type=SafePath(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of *_test.json files (default: the installed spec/vectors).")
@click.option("--json", "json_path", type=SafePath(dir_okay=False, path_type=Path), default=None,
              help="Also write every result (mutation, family, class, status, killing tcIds) to this JSON file.")
def spec_mutate(families: tuple[str, ...], vectors: Path | None, json_path: Path | None) -> None:
    """Apply each mutation of the catalogue (a plausible porting bug) to the numpy reference and run that
    family's golden vectors against it; print, per family, which cases kill each mutation and which survive.

    The whole catalogue (over 200 mutations) takes about 40 seconds on two cores;
    one family a few seconds.  Exit status 1 when a non-equivalent mutation survives.
    """
    from ..golden import FAMILIES
    from ..golden.mutations import catalogue, run_catalogue

    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise click.BadParameter(f"unknown families {unknown}; expected some of {list(FAMILIES)}", param_hint="'--family'")
    mutations = catalogue(families or None)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("mutations", total=len(mutations))
        results = run_catalogue(mutations, vectors, progress=lambda r: progress.advance(task))
    for fam in FAMILIES:
        rows = [r for r in results if r.mutation.family == fam]
        if rows:
            print_table(console, _family_table(fam, rows), keys=1, wrap=("note", "killed by (cases: tcIds)"))
    summary = summarise(results)
    print_table(console, _summary_table(summary), keys=1)
    if json_path is not None:
        json_path.write_text(json.dumps({
            "summary": summary,
            "results": [{"mutation": r.mutation.name, "family": r.mutation.family, "class": r.mutation.bug_class,
                         "doc": r.mutation.doc, "status": r.status, "killed_by": list(r.killed_by),
                         "equivalent": r.mutation.equivalent} for r in results],
        }, indent=1) + "\n")
    if any(s["survivors"] for s in summary.values()):
        raise SystemExit(1)
