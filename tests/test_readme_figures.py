"""The README's summary of the evaluation matrix shows the same figures as docs/training.md."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rows(text, first_header_cell):
    """``{mode: [cells]}`` of the first markdown table whose header starts with ``first_header_cell``."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"| {first_header_cell} |"))
    rows = {}
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        cells = [c.strip() for c in ln.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def _readme_summary():
    """README: mode -> (within, worst accuracy drop, worst MSE drop, skipped, pass units, wall)."""
    out = {}
    for mode, (within, worst, skipped, passes, wall) in _rows((ROOT / "README.md").read_text(), "mode").items():
        acc, mse = re.fullmatch(r"(.*) pt, (.*) % MSE", worst).groups()
        out[mode] = (within, f"{acc} pt", f"{mse} %", skipped.replace(" (median)", ""), passes, wall)
    return out


def _docs_summary():
    """docs/training.md: the same columns of the recommended presets' summary (the first such table)."""
    rows = _rows((ROOT / "docs" / "training.md").read_text(), "mode")
    return {mode: (c[0], c[1], c[2], c[4], c[5], c[6]) for mode, c in rows.items()}


def test_readme_summary_matches_docs_training():
    readme, docs = _readme_summary(), _docs_summary()
    assert list(readme) == list(docs)
    for mode in docs:
        assert readme[mode] == docs[mode], f"{mode}: README {readme[mode]} vs docs/training.md {docs[mode]}"
