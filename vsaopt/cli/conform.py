"""``vsaopt conform``: differential property testing of a port, in any language, against the numpy reference."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from .options import POSITIVE, SEED, FiniteFloat, SafePath, output_file, wide_console_width, write_atomic
from .tables import print_table

console = Console(width=wide_console_width())

#: A printed counterexample longer than this has its hex abbreviated (``--report`` keeps it whole).
PRINT_LIMIT = 4000


def _abbreviated(value: object) -> object:
    """``value`` with each long hex string cut to its first and last bytes (for the terminal only)."""
    if isinstance(value, dict):
        return {k: (f"{v[:32]}...({len(v) // 2} bytes)...{v[-16:]}" if k == "hex" and isinstance(v, str) and len(v) > 96
                    else _abbreviated(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_abbreviated(v) for v in value]
    return value


def _print_case(result: object, seed: int) -> None:
    ce = result.counterexample  # type: ignore[attr-defined]
    console.print(f"[red]{escape(result.name)}: DISAGREES[/] ({escape('; '.join(ce.differences))})", soft_wrap=True)  # type: ignore[attr-defined]
    case = ce.vector_case(seed)
    text = json.dumps(case)
    if len(text) > PRINT_LIMIT:
        text = json.dumps(_abbreviated(case)) + "\n  (hex abbreviated; --report FILE holds the whole case)"
    console.print("  shrunk case: " + escape(text), soft_wrap=True)
    console.print("  port answered: " + escape(json.dumps(_abbreviated(ce.got))), soft_wrap=True)


def _print_failure(result: object) -> None:
    request = (result.request or "")  # type: ignore[attr-defined]
    shown = request if len(request) <= 600 else request[:600] + f" ... ({len(request)} characters; --report holds it)"
    console.print(f"[red]{escape(result.name)}: PORT FAILURE[/]: {escape(str(result.failure))}", soft_wrap=True)  # type: ignore[attr-defined]
    console.print(f"  request: {escape(shown)}", soft_wrap=True)


def _table(report: object) -> Table:
    table = Table(title="conform")
    for name in ("op", "result", "examples", "seconds"):
        table.add_column(name, justify="right" if name in ("examples", "seconds") else "left")
    for r in report.results:  # type: ignore[attr-defined]
        table.add_row(r.name, r.status, str(r.examples), f"{r.seconds:.2f}")
    return table


@click.command("conform", context_settings={"ignore_unknown_options": False})
@click.option("--family", "families", multiple=True, help="Only the ops of this family (repeatable).")
@click.option("--op", "ops", multiple=True, help="Only this op, family.op or a bare op name (repeatable).")
@click.option("--max-examples", type=POSITIVE, default=None, help="Examples per op before shrinking  [default: 100].")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the run: the same seed gives the same requests.")
@click.option("--timeout", type=FiniteFloat(min=0.0, max=86400.0, min_open=True), default=None,
              help="Seconds the port may take to answer one request  [default: 30].")
@click.option("--report", "report_path", type=SafePath(dir_okay=False, path_type=Path), default=None, callback=output_file,
              help="Also write the whole report (every op, each shrunk case in full) to this JSON file.")
@click.option("--list", "list_ops", is_flag=True, help="List the ops conform checks and exit.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def conform(families: tuple[str, ...], ops: tuple[str, ...], max_examples: int | None, seed: int, timeout: float | None,
            report_path: Path | None, list_ops: bool, command: tuple[str, ...]) -> None:
    """Run the property suite against a port: vsaopt conform [OPTIONS] -- COMMAND [ARG...].

    COMMAND is started as a subprocess and spoken to over stdin/stdout, one JSON
    object a line (spec/conform.md).  For every op it serves, Hypothesis draws
    inputs (edge values and planted boundaries), the numpy reference computes the
    expected outputs through the golden-vector drivers, and a disagreement is
    shrunk to a minimal input, printed as a ready-to-add vector case.

    Exit status: 0 every op agrees, 1 some op disagrees, 2 the port crashed,
    hung past --timeout or broke the protocol (the message names the op and the request).
    """
    from ..conform import DEFAULT_MAX_EXAMPLES, DEFAULT_TIMEOUT, op_names
    from ..conform import conform as run_conform

    if list_ops:
        for name in op_names():
            click.echo(name)
        return
    if not command:
        raise click.UsageError("give the port's command after --, e.g. vsaopt conform -- ./my_port")
    examples = DEFAULT_MAX_EXAMPLES if max_examples is None else max_examples
    with Progress(TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        tasks: dict[str, TaskID] = {}

        def on_start(name: str) -> None:
            tasks[name] = progress.add_task(name, total=examples)

        def on_answer(name: str, answered: int, shrinking: bool) -> None:
            progress.update(tasks[name], completed=min(answered, examples),
                            description=f"{name} (shrinking)" if shrinking else name)

        report = run_conform(list(command), families=families, ops=ops, max_examples=examples, seed=seed,
                             timeout=DEFAULT_TIMEOUT if timeout is None else timeout, progress=on_answer, on_start=on_start)
    _print_report(report)
    if report_path is not None:
        write_atomic(report_path, lambda p: p.write_text(json.dumps(report.to_dict(), indent=1) + "\n"))
    console.print(report.summary())
    if report.exit_status:
        raise SystemExit(report.exit_status)


def _print_report(report: object) -> None:
    print_table(console, _table(report), keys=1)
    if report.not_served:  # type: ignore[attr-defined]
        console.print(f"not served by the port (not checked): {', '.join(report.not_served)}", soft_wrap=True)  # type: ignore[attr-defined]
    if report.unknown:  # type: ignore[attr-defined]
        console.print(f"[yellow]the port lists ops vsaopt does not know (ignored): {escape(', '.join(report.unknown))}[/]",  # type: ignore[attr-defined]
                      soft_wrap=True)
    for r in report.results:  # type: ignore[attr-defined]
        if r.counterexample is not None:
            _print_case(r, report.seed)  # type: ignore[attr-defined]
        elif r.failure is not None:
            _print_failure(r)
