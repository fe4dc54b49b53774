"""Tables that stay readable in any terminal width: a number is never cut, a table too wide is split by columns.

Every table of the CLI goes through :func:`print_table`.  It draws the table
with one rule under the header and two spaces between columns, lets headers wrap at spaces, and
gives every column at least the width of its widest cell, so no value is ever
shortened to ``…``.  When even that does not fit the console, the table is
printed in parts: each part repeats the key columns (the first ``keys``
columns, e.g. the mode or the setting) and takes as many of the other columns,
in order, as fit.  Free-text columns (``wrap``) may wrap at word boundaries
down to :data:`WRAP_MIN` columns, or :data:`WRAP_NARROW` where that spares a split.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

__all__ = ["print_table", "split_to_width", "WRAP_MIN"]

#: Narrowest a free-text column gets while the table fits without it.
WRAP_MIN = 24
#: Narrowest a free-text column gets before a table is split instead.
WRAP_NARROW = 12
_GAP = 2  # columns between two columns: one space of padding and the blank rule


def _plain(cell: Any) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _longest_word(text: str) -> int:
    return max((cell_len(w) for w in text.split()), default=0)


def _min_width(column: Column, wrap: bool, wrap_min: int = WRAP_MIN) -> int:
    """The narrowest ``column`` may be drawn: its widest cell (or ``wrap_min`` for free text), its header's longest word."""
    cells = [_plain(c) for c in column.cells]
    if wrap:
        body = min(max((cell_len(c) for c in cells), default=0), max(wrap_min, max((_longest_word(c) for c in cells), default=0)))
    else:
        body = max((max((cell_len(line) for line in c.splitlines()), default=0) for c in cells), default=0)
    return max(body, _longest_word(_plain(column.header)), 1)


def _width(widths: Iterable[int]) -> int:
    """Columns drawn with :data:`box.SIMPLE_HEAD` without edges: :data:`_GAP` columns between two columns."""
    ws = list(widths)
    return sum(ws) + _GAP * (len(ws) - 1)


def _max_width(column: Column) -> int:
    """The width of ``column`` with nothing wrapped."""
    cells = [_plain(c) for c in column.cells] + [_plain(column.header)]
    return max(max((cell_len(line) for line in c.splitlines()), default=0) for c in cells)


def _widen(table: Table, mins: Sequence[int], wraps: Sequence[bool], width: int) -> list[int]:
    """``mins`` with the room left given to headers that would wrap, the cheapest first, then to free text (fewer lines)."""
    widths = list(mins)
    room = width - _width(widths)
    wants = sorted((cell_len(_plain(c.header)) - w, k) for k, (c, w) in enumerate(zip(table.columns, widths)))
    for extra, k in wants:
        if 0 < extra <= room:
            widths[k] += extra
            room -= extra
    for k, column in enumerate(table.columns):
        if wraps[k] and room > 0:
            extra = min(room, max(_max_width(column) - widths[k], 0))
            widths[k] += extra
            room -= extra
    return widths


def _copy(table: Table, columns: Sequence[int], widths: Sequence[int] | None, wraps: Sequence[bool], *, first: bool, last: bool) -> Table:
    part = Table(
        title=table.title if first else (f"{_plain(table.title)} (continued)" if table.title else None),
        title_justify=table.title_justify,
        caption=table.caption if last else None,
        caption_justify=table.caption_justify,
        box=box.SIMPLE_HEAD,
        padding=(0, _GAP - 1, 0, 0),
        pad_edge=False,
        show_edge=False,
    )
    src = table.columns
    for k in columns:
        col = src[k]
        part.add_column(col.header, justify=col.justify, width=None if widths is None else widths[k], no_wrap=False,
                        overflow="fold" if wraps[k] else "ellipsis")
    cells = [list(src[k].cells) for k in columns]
    for row in zip(*cells):
        part.add_row(*row)
    return part


def split_to_width(table: Table, width: int, *, keys: int = 1, wrap: Sequence[str] = ("note",)) -> list[Table]:
    """``table`` redrawn to fit ``width`` columns: itself (restyled) when it fits, else parts of its columns.

    Parameters
    ----------
    table : rich.table.Table
        A table built with ``add_column`` / ``add_row``.
    width : int
        The console's width.
    keys : int
        Leading columns repeated in every part.
    wrap : sequence of str
        Headers of free-text columns that may wrap (down to :data:`WRAP_MIN`).

    Examples
    --------
    >>> t = Table("mode", "a long header", "b")
    >>> t.add_row("deterministic", "1.00x", "2.00x")
    >>> [len(p.columns) for p in split_to_width(t, 80)]
    [3]
    >>> [[_plain(c.header) for c in p.columns] for p in split_to_width(t, 22)]
    [['mode', 'a long header'], ['mode', 'b']]
    """
    n = len(table.columns)
    wraps = [_plain(c.header) in wrap for c in table.columns]
    if _width(_max_width(c) for c in table.columns) <= width:
        return [_copy(table, range(n), None, wraps, first=True, last=True)]
    mins = [_min_width(c, w) for c, w in zip(table.columns, wraps)]
    narrow = [_min_width(c, w, WRAP_NARROW) for c, w in zip(table.columns, wraps)]
    if _width(mins) > width and _width(narrow) <= width:  # free text in a narrow column rather than a split table
        mins = narrow
    keys = min(keys, n)
    if _width(mins) <= width or n <= keys + 1:
        return [_copy(table, range(n), _widen(table, mins, wraps, width), wraps, first=True, last=True)]
    groups: list[list[int]] = []
    base = _width(mins[:keys])
    room = width - base
    current: list[int] = []
    for k in range(keys, n):
        need = mins[k] + _GAP
        if current and need > room:
            groups.append(current)
            current, room = [], width - base
        current.append(k)
        room -= need
    groups.append(current)
    return [
        _copy(table, [*range(keys), *group], mins, wraps, first=i == 0, last=i == len(groups) - 1)
        for i, group in enumerate(groups)
    ]


def print_table(console: Console, table: Table, *, keys: int = 1, wrap: Sequence[str] = ("note",)) -> None:
    """Print ``table`` on ``console`` as :func:`split_to_width` draws it for the console's width."""
    for part in split_to_width(table, console.width, keys=keys, wrap=wrap):
        console.print(part)
