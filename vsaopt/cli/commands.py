"""Command definitions: ``info``, ``spec verify``, ``spec generate``, ``bench``."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import __version__
from ..backend import BACKEND_NAMES, backend_status, env_backend, get_backend
from ..errors import OptimError
from .options import SafePath, output_folder, wide_console_width
from .tables import print_table

console = Console(width=wide_console_width())


class _Group(click.Group):
    """Turns vsaopt's own errors into one line on stderr, in click's style, and exit status 2."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except OptimError as exc:
            message = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line, whatever the message holds
            click.echo(f"Error: {message}", err=True)
            raise SystemExit(2) from None


@click.group(cls=_Group, invoke_without_command=True)
@click.version_option(__version__, prog_name="vsaopt")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """vsaopt: phase-based training acceleration with bit-exact kernels.

    The environment variable VSAOPT_BACKEND (auto, numpy, numba or cupy)
    chooses the backend wherever one is picked automatically; any other value
    is refused before a command starts.
    """
    env_backend()  # a typo in VSAOPT_BACKEND stops every command, not only the paths that pick a backend
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def info(as_json: bool) -> None:
    """Version, machine, and each backend: available or why not, threading, kernel cache (instant: runs no kernel).

    ``vsaopt spec verify`` runs the golden vectors; ``vsaopt cache clear``
    removes the numba kernels' cache.
    """
    report: dict = {
        "vsaopt": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "backends": {},
    }
    for name, status in backend_status().items():
        entry: dict = {"status": status}
        if status == "available":
            entry.update(get_backend(name).details)
        report["backends"][name] = entry
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    console.print(f"[bold]vsaopt {__version__}[/] on Python {report['python']}, {report['platform']}")
    table = Table("backend", "status", "details")
    for name, entry in report["backends"].items():
        details = "\n".join(f"{k}: {v}" for k, v in entry.items() if k != "status")
        style = "green" if entry["status"] == "available" else "yellow"
        table.add_row(name, f"[{style}]{escape(entry['status'])}[/]", escape(details))
    print_table(console, table)


@cli.group()
def cache() -> None:
    """The numba kernels' on-disk cache (a per-user folder; VSAOPT_CACHE_DIR overrides it)."""


@cache.command("dir")
def cache_dir_command() -> None:
    """Print the folder that holds the kernel cache."""
    from ..backends.numba import cache_dir

    click.echo(str(cache_dir()))


@cache.command("clear")
def cache_clear() -> None:
    """Remove the kernel cache (the next run compiles the kernels anew, a few seconds)."""
    from ..backends.numba import cache_dir, clear_cache

    removed = clear_cache()
    console.print(f"removed {removed} files from {cache_dir()}")


@cli.group()
def spec() -> None:
    """The golden vectors of spec/: verify a backend, or regenerate them from the reference."""


@spec.command("verify")
@click.option("--backend", "backend_name", default="all", show_default=True,
              type=click.Choice(["all", *BACKEND_NAMES]), help="Backend to check ('all': every available one).")
@click.option("--vectors", type=SafePath(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of *_test.json files (default: the installed spec/vectors).")
def spec_verify(backend_name: str, vectors: Path | None) -> None:
    """Run every golden vector; exit 1 naming the failing cases."""
    from ..golden import iter_results

    names = [n for n, s in backend_status().items() if s == "available"] if backend_name == "all" else [backend_name]
    failed = 0
    for name in names:
        be = get_backend(name)
        counts: dict[str, list[int]] = {}
        failures = []
        for fam, case, failure in iter_results(be, vectors):
            tally = counts.setdefault(fam, [0, 0])
            tally[0] += case is not None
            if failure is not None:
                tally[1] += 1
                failures.append(failure)
        summary = ", ".join(f"{fam} {n - bad}/{n}" if n else f"{fam} unreadable" for fam, (n, bad) in counts.items())
        ok = not failures
        console.print(f"[{'green' if ok else 'red'}]{name}: {'PASS' if ok else 'FAIL'}[/] ({summary})")
        for f in failures:
            console.print(f"  [red]{escape(str(f))}[/]", soft_wrap=True)
        failed += len(failures)
    if failed:
        raise SystemExit(1)


@spec.command("generate")
@click.argument("directory", type=SafePath(file_okay=False, path_type=Path), callback=output_folder)
@click.option("--family", "families", multiple=True, help="Only these families (repeatable; default: all).")
def spec_generate(directory: Path, families: tuple[str, ...]) -> None:
    """Write the vector files into DIRECTORY from the numpy reference (for maintainers)."""
    from ..golden import FAMILIES, generate

    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise click.BadParameter(f"unknown families {unknown}; expected some of {list(FAMILIES)}", param_hint="'--family'")
    directory.mkdir(parents=True, exist_ok=True)
    for path in generate(directory, families or FAMILIES):
        console.print(f"wrote {path}")


def _register() -> None:
    from .advise import advise
    from .bench import bench
    from .conform import conform
    from .spec_mutate import spec_mutate
    from .train import train

    cli.add_command(advise)
    cli.add_command(bench)
    cli.add_command(conform)
    cli.add_command(train)
    spec.add_command(spec_mutate)


_register()
