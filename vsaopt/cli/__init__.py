"""The ``vsaopt`` command line: the only place that formats tables, draws progress bars and writes plots.

Needs the ``cli`` extra (click, rich).
"""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point of the ``vsaopt`` command."""
    try:
        from .commands import cli
    except ImportError as exc:  # click or rich missing
        sys.stderr.write(f"vsaopt: the command line needs the 'cli' extra: pip install 'vsaopt[cli]' ({exc})\n")
        raise SystemExit(2) from None
    cli()
