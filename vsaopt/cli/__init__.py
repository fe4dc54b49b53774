"""The ``vsaopt`` command line: the only place that formats tables, draws progress bars and writes plots.

Needs the ``cli`` extra (click, rich).
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Entry point of the ``vsaopt`` command.

    Output piped into a reader that stops early (``vsaopt info | head -1``)
    ends the command quietly with exit status 1, as other command-line tools do,
    instead of a BrokenPipeError traceback.
    """
    try:
        from .commands import cli
    except ImportError as exc:  # click or rich missing
        sys.stderr.write(f"vsaopt: the command line needs the 'cli' extra: pip install 'vsaopt[cli]' ({exc})\n")
        raise SystemExit(2) from None
    try:
        cli()
    except BrokenPipeError:
        _silence_stdout()
        raise SystemExit(1) from None


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail on the closed pipe again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file
        pass
    finally:
        os.close(devnull)
