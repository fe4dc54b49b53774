"""CLI tables at any terminal width: no value cut, a table too wide split by columns with its key columns repeated."""

from rich.console import Console
from rich.table import Table

from vsaopt.cli.tables import split_to_width


def _table(rows=4):
    t = Table(title="a title long enough to wrap in a narrow terminal, as the CLI's titles are", caption="a caption")
    for col in ("mode", "backward", "forward", "skipped", "pass units", "wall s", "final acc", "to target s", "pass x", "wall x"):
        t.add_column(col, justify="left" if col == "mode" else "right")
    for k in range(rows):
        t.add_row(["baseline", "phase", "deterministic", "small_batch"][k], "1438", "1438", "68%", "4314", "12.345",
                  "96.10%", "not reached", "1.54x", "0.61x")
    return t


def _render(table, width):
    console = Console(width=width, record=True, color_system=None)
    for part in split_to_width(table, width):
        console.print(part)
    return console.export_text()


def test_every_value_is_printed_whole_at_any_width():
    for width in (40, 60, 80, 120, 200):
        text = _render(_table(), width)
        assert "…" not in text
        assert max(len(line.rstrip()) for line in text.splitlines()) <= width
        for value in ("deterministic", "small_batch", "12.345", "96.10%", "not reached", "1.54x", "0.61x"):
            assert value in text, (width, value)


def test_a_table_that_fits_is_one_table_and_a_wide_one_repeats_its_keys():
    assert len(split_to_width(_table(), 200)) == 1
    parts = split_to_width(_table(), 50)
    assert len(parts) > 1
    assert all(p.columns[0].header == "mode" for p in parts)
    headers = [c.header for p in parts for c in p.columns[1:]]
    assert headers == [c.header for c in _table().columns[1:]]  # every other column once, in order
    assert parts[0].caption is None and parts[-1].caption == "a caption"


def test_free_text_wraps_instead_of_forcing_a_split():
    t = Table("measure", "value", "note")
    t.add_row("pack_2bit", "0.46", "the spec's summation order inside the packer costs part of the bandwidth here")
    parts = split_to_width(t, 60)
    assert len(parts) == 1
    text = _render(t, 60)
    assert "bandwidth" in text and "…" not in text
