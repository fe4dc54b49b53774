"""Option types and callbacks that check command-line values before a command does any work.

A bad value ends the command with click's usage error (exit status 2, one line naming the
option), not a traceback after a long run.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .._arrays import UINT64_MAX

__all__ = ["SEED", "COUNT", "POSITIVE", "THREADS", "SafePath", "FiniteFloat", "HiddenWidths", "available_memory", "check_memory",
           "output_file",
           "output_folder", "plot_file", "plot_formats", "write_atomic", "write_outputs"]

#: A seed: an integer in ``[0, 2**64 - 1]``, the range of every seed vsaopt takes.
class _Seed(click.IntRange):
    """A 64-bit unsigned seed, described as such in ``--help``."""

    def _describe_range(self) -> str:
        return "0<=x<2**64"


SEED = _Seed(0, UINT64_MAX)
#: A count that may be zero.
COUNT = click.IntRange(min=0)
#: A count of at least one.
POSITIVE = click.IntRange(min=1)


def _usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


#: Thread counts: 0 (leave as is) up to the CPUs this process may run on.
THREADS = click.IntRange(0, _usable_cpus())


class SafePath(click.Path):
    """:class:`click.Path` whose bad names (a NUL byte, a name too long) are usage errors, not tracebacks.

    Examples
    --------
    >>> SafePath(path_type=Path).convert("run.json", None, None)
    PosixPath('run.json')
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The path as click converts it; a usage error naming the option when the name cannot be a path."""
        if "\0" in os.fsdecode(value):
            self.fail("the path contains a NUL byte", param, ctx)
        try:
            return super().convert(value, param, ctx)
        except (OSError, ValueError) as exc:
            self.fail(f"{os.fsdecode(value)!r}: {getattr(exc, 'strerror', None) or exc}", param, ctx)


class FiniteFloat(click.ParamType):
    """A finite float (NaN and +/-Inf refused) in ``[min, max]``; ``min_open`` / ``max_open`` exclude the bound itself.

    Examples
    --------
    >>> FiniteFloat(min=0.0, min_open=True).convert("0.5", None, None)
    0.5
    """

    name = "float"

    def __init__(self, min: float | None = None, max: float | None = None, min_open: bool = False,
                 max_open: bool = False) -> None:
        self.min, self.max, self.min_open, self.max_open = min, max, min_open, max_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        """The value as a float; a usage error naming the option when it is not a finite number in range."""
        try:
            x = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(x):
            self.fail(f"expected a finite number, got {value!r}", param, ctx)
        low = self.min is not None and (x < self.min or (self.min_open and x == self.min))
        high = self.max is not None and (x > self.max or (self.max_open and x == self.max))
        if low or high:
            self.fail(f"{value!r} is not in {self._range()}", param, ctx)
        return x

    def _range(self) -> str:
        lo = "-inf" if self.min is None else f"{self.min:g}"
        hi = "inf" if self.max is None else f"{self.max:g}"
        return f"{'(' if self.min_open or self.min is None else '['}{lo}, {hi}{')' if self.max_open or self.max is None else ']'}"


class BatchSize(click.ParamType):
    """A positive batch size, or ``full`` (the whole training split), returned as ``"full"``.

    Examples
    --------
    >>> BatchSize().convert("full", None, None), BatchSize().convert("64", None, None)
    ('full', 64)
    """

    name = "B|full"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        """``"full"`` or an int >= 1; a usage error naming the option otherwise."""
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif str(value).strip().lower() == "full":
            return "full"
        else:
            text = str(value).strip()
            if not (text.isascii() and text.isdigit() and len(text) <= 19):
                self.fail(f"expected a positive integer or 'full', got {value!r}", param, ctx)
            number = int(text)
        if number < 1:
            self.fail(f"expected a positive integer or 'full', got {value!r}", param, ctx)
        return number


def refuse_given(ctx: click.Context, names: Any, why: str) -> None:
    """A usage error when any of the parameters ``names`` was given on the command line (not defaulted); ``why`` ends the message."""
    for name in names:
        if ctx.get_parameter_source(name) in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT):
            param = next(p for p in ctx.command.params if p.name == name)
            raise click.UsageError(f"{param.opts[0]} {why}", ctx)


class HiddenWidths(click.ParamType):
    """Comma-separated hidden layer widths: at least one, each an integer in ``[1, max_width]``, no empty items.

    Examples
    --------
    >>> HiddenWidths().convert(" 64, 32 ", None, None)
    (64, 32)
    """

    name = "widths"

    def __init__(self, max_width: int = 2**31 - 1, max_layers: int = 64) -> None:
        self.max_width, self.max_layers = max_width, max_layers

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        """The widths as a tuple; a usage error naming the option for an empty, non-integer or out-of-range item."""
        if isinstance(value, tuple):
            return value
        items = [item.strip() for item in str(value).split(",")]
        if not all(item.lstrip("+").isdigit() and item.isascii() for item in items):
            self.fail(f"expected comma-separated positive integers such as 256,256, got {value!r}", param, ctx)
        if any(len(item.lstrip("+")) > 19 for item in items):  # int() of thousands of digits is refused by Python
            self.fail(f"each width must be in [1, {self.max_width}], got {value!r}", param, ctx)
        widths = tuple(int(item) for item in items)
        if len(widths) > self.max_layers:
            self.fail(f"at most {self.max_layers} hidden layers, got {len(widths)}", param, ctx)
        bad = [w for w in widths if not 1 <= w <= self.max_width]
        if bad:
            self.fail(f"each width must be in [1, {self.max_width}], got {bad[0]} in {value!r}", param, ctx)
        return widths


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation on this machine (None: not known here).

    Examples
    --------
    >>> m = available_memory()
    >>> m is None or m > 0
    True
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def _writable_folder(folder: Path, param: click.Parameter | None, what: str) -> None:
    if not folder.is_dir():
        raise click.BadParameter(f"{what} {str(folder)!r} does not exist or is not a folder", param=param)
    try:  # a real probe: permission bits say nothing for root or read-only file systems
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise click.BadParameter(f"{what} {str(folder)!r} is not writable ({exc.strerror})", param=param) from None


def check_memory(needed: int, option: str, what: str, memory: int | None = None) -> None:
    """Usage error naming ``option`` when ``needed`` bytes exceed ``memory`` (default: the memory available now).

    Parameters
    ----------
    needed : int
        Estimated bytes the work will hold.
    option : str
        The option that sets the size, as the user typed it (``"--size"``).
    what : str
        What needs the memory, for the message.
    memory : int, optional
        Bytes available; unknown (None from :func:`available_memory`): no check.

    Raises
    ------
    click.BadParameter
        ``needed`` is larger than ``memory``.
    """
    memory = available_memory() if memory is None else memory
    if memory is not None and needed > memory:
        gib = 2**30
        raise click.BadParameter(f"{what} needs about {needed / gib:.1f} GiB, {memory / gib:.1f} GiB of memory are available",
                                 param_hint=f"'{option}'")


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
    if "\0" in str(value):
        raise click.BadParameter("the path contains a NUL byte", param=param)
    _refuse_shared_output(ctx, param, value)
    try:
        info = os.stat(value)
    except FileNotFoundError:
        info = None
    except OSError as exc:  # a name too long, a file where a folder is expected, ...
        raise click.BadParameter(f"{str(value)!r}: {exc.strerror}", param=param) from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise click.BadParameter(f"{str(value)!r} is a folder; expected a file name", param=param)
    if info is not None and not stat.S_ISREG(info.st_mode):
        _probe_special_file(value, param)  # a device or pipe is written in place
        return value
    _writable_folder(value.parent, param, "folder")  # the file is written beside itself, then renamed
    if info is None:
        _probe_new_name(value, param)
    elif not os.access(value, os.W_OK):
        raise click.BadParameter(f"{str(value)!r} is not writable", param=param)
    return value


#: The output options of the commands; no two may name one file.
_OUTPUTS = ("json_path", "plot_path", "report")


def _refuse_shared_output(ctx: click.Context, param: click.Parameter | None, value: Path) -> None:
    """A usage error when an output option already processed names the same file as ``value`` (one would overwrite the other)."""
    mine = os.path.abspath(value)
    for name in _OUTPUTS:
        other = ctx.params.get(name) if ctx is not None else None
        if param is not None and name == param.name or other is None:
            continue
        theirs = os.path.abspath(other)
        if theirs == mine or (os.path.exists(mine) and os.path.exists(theirs) and os.path.samefile(mine, theirs)):
            raise click.BadParameter(f"{str(value)!r} is also given to another output option", param=param)


def _probe_new_name(path: Path, param: click.Parameter | None) -> None:
    """Create and remove ``path``: the file system accepts its name (length, characters) and lets us write there."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:  # appeared meanwhile: it will be replaced
        return
    except OSError as exc:
        raise click.BadParameter(f"{str(path)!r} cannot be created ({exc.strerror})", param=param) from None
    os.close(fd)
    os.unlink(path)


def _probe_special_file(path: Path, param: click.Parameter | None) -> None:
    """Open a device or pipe for writing without blocking and write nothing: /dev/full, a pipe without reader fail here."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, b"")
        finally:
            os.close(fd)
    except OSError as exc:
        hint = " (a pipe without a reader)" if exc.errno == errno.ENXIO else ""
        raise click.BadParameter(f"{str(path)!r} is not writable ({exc.strerror}){hint}", param=param) from None


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
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        raise click.BadParameter(f"{str(value)!r}: {getattr(exc, 'strerror', None) or exc}", param=param) from None
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


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write a file through ``write(temporary path)`` and rename it to ``path``: never a partial file, even on Ctrl-C.

    A device or pipe (``/dev/stdout``) is written in place.

    Parameters
    ----------
    path : pathlib.Path
        Where the file goes.
    write : callable
        Writes the whole file to the path it is given (its suffix is ``path``'s).

    Raises
    ------
    click.ClickException
        One line naming ``path`` and the reason, when the file cannot be written (exit status 1).
    """
    try:
        if path.exists() and not path.is_file():
            write(path)
            return
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".vsaopt-", suffix=path.suffix)
        os.close(fd)
        try:
            os.chmod(tmp, _new_file_mode(path))
            write(Path(tmp))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise click.ClickException(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None


def _new_file_mode(path: Path) -> int:
    """The mode ``path`` keeps when replaced, or a new file's mode under the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_outputs(console: Any, json_path: Path | None, json_text: Callable[[], str], plot_path: Path | None,
                  write_plot: Callable[[Path], object]) -> None:
    """Write a run's JSON (``json_text()``) and its plot (``write_plot(path)``) where asked, saying each on ``console``.

    Raises
    ------
    click.ClickException
        A file could not be written (see :func:`write_atomic`).
    """
    if json_path is not None:
        text = json_text()
        write_atomic(json_path, lambda p: p.write_text(text, encoding="utf-8"))
        console.print(f"wrote {json_path}")
    if plot_path is not None:
        write_atomic(plot_path, write_plot)
        console.print(f"wrote {plot_path}")


def wide_console_width() -> int | None:
    """Width of the CLI's console: the terminal's, or 160 columns when output goes to a file or pipe (tables stay whole)."""
    return None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
