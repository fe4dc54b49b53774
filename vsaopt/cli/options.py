"""Option types and callbacks that check command-line values before a command does any work.

A bad value ends the command with click's usage error (exit status 2, one line naming the
option), not a traceback after a long run.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .._arrays import UINT64_MAX

__all__ = ["SEED", "COUNT", "POSITIVE", "output_file", "output_folder", "plot_file", "plot_formats"]

#: A seed: an integer in ``[0, 2**64 - 1]``, the range of every seed vsaopt takes.
SEED = click.IntRange(0, UINT64_MAX)
#: A count that may be zero.
COUNT = click.IntRange(min=0)
#: A count of at least one.
POSITIVE = click.IntRange(min=1)


def _writable_folder(folder: Path, param: click.Parameter | None, what: str) -> None:
    if not folder.is_dir():
        raise click.BadParameter(f"{what} {str(folder)!r} does not exist or is not a folder", param=param)
    try:  # a real probe: permission bits say nothing for root or read-only file systems
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise click.BadParameter(f"{what} {str(folder)!r} is not writable ({exc.strerror})", param=param) from None


def output_file(ctx: click.Context, param: click.Parameter | None, value: Path | None) -> Path | None:
    """Callback of a file the command writes: its folder must exist and be writable.

    Parameters
    ----------
    ctx : click.Context
    param : click.Parameter or None
    value : pathlib.Path or None
        The option's value (None: not given).

    Returns
    -------
    pathlib.Path or None
        ``value`` unchanged.

    Raises
    ------
    click.BadParameter
        The path is a folder, or its folder is missing or not writable.
    """
    if value is None:
        return None
    if value.is_dir():
        raise click.BadParameter(f"{str(value)!r} is a folder; expected a file name", param=param)
    _writable_folder(value.parent, param, "folder")
    return value


def output_folder(ctx: click.Context, param: click.Parameter | None, value: Path | None) -> Path | None:
    """Callback of a folder the command creates or fills: its nearest existing ancestor must be a writable folder.

    Parameters
    ----------
    ctx : click.Context
    param : click.Parameter or None
    value : pathlib.Path or None

    Returns
    -------
    pathlib.Path or None
        ``value`` unchanged.

    Raises
    ------
    click.BadParameter
        A file is in the way, or the folder cannot be created or written.
    """
    if value is None:
        return None
    existing = value.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    _writable_folder(existing, param, "folder" if existing == value.absolute() else "ancestor folder")
    return value


def plot_formats() -> dict[str, str]:
    """File suffixes matplotlib writes (without the dot) and their descriptions.

    Returns
    -------
    dict of str to str

    Raises
    ------
    ImportError
        matplotlib is not installed.

    Examples
    --------
    >>> "png" in plot_formats()
    True
    """
    from matplotlib.backend_bases import FigureCanvasBase

    return dict(FigureCanvasBase.get_supported_filetypes())


def plot_file(ctx: click.Context, param: click.Parameter | None, value: Path | None) -> Path | None:
    """Callback of an image the command draws: :func:`output_file`, matplotlib importable, a suffix it writes.

    Parameters
    ----------
    ctx : click.Context
    param : click.Parameter or None
    value : pathlib.Path or None

    Returns
    -------
    pathlib.Path or None
        ``value`` unchanged.

    Raises
    ------
    click.BadParameter
        Not a writable file path, matplotlib missing, or a suffix matplotlib does not write.
    """
    if value is None:
        return None
    output_file(ctx, param, value)
    try:
        formats = plot_formats()
    except ImportError as exc:
        raise click.BadParameter(f"needs matplotlib: pip install 'vsaopt[plot]' ({exc})", param=param) from None
    suffix = value.suffix[1:].lower()
    if suffix not in formats:
        raise click.BadParameter(
            f"{str(value)!r}: expected a file name ending in one of {', '.join('.' + s for s in sorted(formats))}",
            param=param,
        )
    return value


def write_outputs(console: Any, json_path: Path | None, json_text: Callable[[], str], plot_path: Path | None,
                  write_plot: Callable[[Path], None]) -> None:
    """Write a run's JSON (``json_text()``) and its plot (``write_plot(path)``) where asked, saying each on ``console``."""
    if json_path is not None:
        json_path.write_text(json_text())
        console.print(f"wrote {json_path}")
    if plot_path is not None:
        write_plot(plot_path)
        console.print(f"wrote {plot_path}")


def wide_console_width() -> int | None:
    """Width of the CLI's console: the terminal's, or 160 columns when output goes to a file or pipe (tables stay whole)."""
    return None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
