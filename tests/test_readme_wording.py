"""README.md and docs/*.md say what is true of the code as it is: no changelog wording.

History belongs in commits.  Comparisons with former versions ("used to",
"no longer", "before the change", "an earlier version of this page") and
figures dated by the day they were taken ("today's") make a reader guess
which statement still holds.  Ranges over several runs of the same code stay.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Phrases that date a statement or compare with a former version.
CHANGELOG_PHRASES = [
    r"\bused to\b",
    r"\bno longer\b",
    r"\bnot yet\b",
    r"\bhas since\b",
    r"\btoday(?:'s)?\b",
    r"\b(?:an )?earlier (?:version|run|state)s?\b",
    r"\bprevious version\b",
    r"\brecommended before\b",
    r"\bbefore the (?:changes?|gate)\b",
    r"\bbefore (?:its|`residual_stats`)",
    r"\bwhere it made\b",
]


def changelog_wording(text):
    """``[(line number, phrase, line)]`` for every changelog phrase in ``text`` (code blocks included)."""
    found = []
    for n, line in enumerate(text.splitlines(), start=1):
        for phrase in CHANGELOG_PHRASES:
            m = re.search(phrase, line, flags=re.I)
            if m:
                found.append((n, m.group(0), line.strip()))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_pages_read_as_the_present(page):
    found = changelog_wording(page.read_text())
    assert not found, f"{page.name}: say what is true now, history belongs in commits:\n" + "\n".join(
        f"  line {n}: {phrase!r} in: {line}" for n, phrase, line in found
    )


def test_the_check_finds_changelog_wording():
    text = "fast\nThe figure used to be 0.58x.\nCORRECT was 36-44 % before its residual update.\n32 GB/s in today's run\n"
    assert [n for n, _, _ in changelog_wording(text)] == [2, 3, 4]
