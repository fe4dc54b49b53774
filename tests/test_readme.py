"""The README's commands and Python examples stay true.

Every ```` ```python ```` block of README.md runs, as a user would run it:

- a block that follows ``<!-- continues -->`` runs in the namespace of the
  block before it (the prose says it continues that example);
- a block with ``if __name__ == "__main__":`` is saved as a file and run in a
  subprocess (it starts processes with ``spawn``, which re-imports that file);
- every other block runs on its own, in a fresh namespace.

What a block prints is checked against its comments: a ``print(...)`` line
ends with ``# prints: TEXT`` (the line's output equals TEXT, ``...`` standing
for any text) or ``# prints e.g.: TEXT`` (the same, except that every number
may differ: for figures that vary between runs or machines).  A print line
without such a comment, or such a comment on a line that printed nothing,
fails the test.
"""

import builtins
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

#: A fenced block with its language and whether ``<!-- continues -->`` precedes it.
_FENCE = re.compile(r"(<!-- continues -->\n)?```([\w+-]*)\n(.*?)```", flags=re.S)
#: ``# prints: TEXT`` or ``# prints e.g.: TEXT`` at the end of a line.
_PRINTS = re.compile(r"#\s*prints( e\.g\.)?:\s?(.*)$")
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
#: Fence languages that mean Python; all of them must be ``python`` so that nothing escapes the test.
_PYTHON_ALIASES = {"py", "python3", "pycon", "ipython"}


def _fences():
    return [(bool(m.group(1)), m.group(2), m.group(3)) for m in _FENCE.finditer(README.read_text())]


def _chains():
    """The Python blocks grouped into chains: a block and the ``continues`` blocks after it."""
    chains = []
    for continues, lang, code in _fences():
        if lang != "python":
            continue
        if continues:
            assert chains, "README.md: <!-- continues --> before the first python block"
            chains[-1].append(code)
        else:
            chains.append([code])
    return chains


def _chain_id(chain):
    first = next((ln for ln in chain[0].splitlines() if ln.strip() and not ln.startswith(("import", "from"))), "")
    return re.sub(r"\W+", "_", first)[:40].strip("_")


def expected_pattern(text, example):
    """The regex a ``# prints`` comment stands for (``...``: any text; with ``example``, any number for each number)."""
    token = r"(\.\.\.|" + _NUMBER + ")" if example else r"(\.\.\.)"
    parts = []
    for i, part in enumerate(re.split(token, text)):
        if i % 2 == 0:
            parts.append(re.escape(part))
        else:
            parts.append(".*?" if part == "..." else _NUMBER)
    return re.compile("".join(parts), flags=re.S)


def expectations(code):
    """``{line number: (comment text, is an example)}`` of a block; asserts every print line has one."""
    found = {}
    for n, line in enumerate(code.splitlines(), start=1):
        m = _PRINTS.search(line)
        if "print(" in line and not m:
            raise AssertionError(f"README.md: a print without a '# prints:' comment: {line.strip()}")
        if m:
            assert "print(" in line, f"README.md: '# prints' comment on a line without print(): {line.strip()}"
            found[n] = (m.group(2).rstrip(), bool(m.group(1)))
    return found


def check_printed(code, printed, where):
    """Every ``# prints`` comment of ``code`` against ``printed`` (line number -> texts printed there)."""
    for line, (text, example) in expectations(code).items():
        outputs = printed.get(line)
        assert outputs, f"{where} line {line}: expected it to print {text!r}, it printed nothing"
        got = "\n".join(outputs)
        assert expected_pattern(text, example).fullmatch(got), f"{where} line {line}: printed {got!r}, the comment says {text!r}"


def recording_print(filename, printed):
    """A ``print`` that also records, per line of ``filename``, the text each call writes."""

    def print_(*args, sep=" ", end="\n", file=None, flush=False):
        caller = sys._getframe(1)
        if caller.f_code.co_filename == filename:
            printed.setdefault(caller.f_lineno, []).append((" " if sep is None else sep).join(map(str, args)))
        builtins.print(*args, sep=sep, end=end, file=file, flush=flush)

    return print_


#: Runs a script (argv[1]) as __main__ with a recording print and writes what it printed as JSON (argv[2]).
_SCRIPT_RUNNER = "import builtins, json, runpy, sys\n" + inspect.getsource(recording_print) + """
printed = {}
try:
    runpy.run_path(sys.argv[1], init_globals={"print": recording_print(sys.argv[1], printed)}, run_name="__main__")
finally:
    with open(sys.argv[2], "w") as f:
        json.dump(printed, f)
"""


def _run_in_process(chain, where):
    namespace = {}
    for i, code in enumerate(chain):
        filename = f"{where}.{i}"
        printed = {}
        namespace["print"] = recording_print(filename, printed)
        exec(compile(code, filename, "exec"), namespace)
        check_printed(code, printed, f"README.md {where} block {i}")


def _run_as_script(code, where, tmp_path):
    script, out = tmp_path / "example.py", tmp_path / "printed.json"
    script.write_text(code)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT_RUNNER, str(script), str(out)],
        capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, f"README.md {where} failed:\n{proc.stdout}\n{proc.stderr}"
    printed = {int(k): v for k, v in json.loads(out.read_text()).items()}
    check_printed(code, printed, f"README.md {where}")


@pytest.mark.parametrize("chain", _chains(), ids=_chain_id)
def test_python_examples_run_and_print_what_they_say(chain, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write files (checkpoints)
    where = _chain_id(chain)
    if any('if __name__ == "__main__":' in code for code in chain):
        assert len(chain) == 1, f"README.md {where}: a script block cannot be continued"
        pytest.importorskip("torch")
        _run_as_script(chain[0], where, tmp_path)
        return
    if any(re.search(r"^(import|from) torch\b", code, flags=re.M) for code in chain):
        pytest.importorskip("torch")
    _run_in_process(chain, where)


def test_every_python_block_is_run():
    langs = {lang for _, lang, _ in _fences()}
    assert not langs & _PYTHON_ALIASES, f"README.md: use ```python for Python blocks (found {langs & _PYTHON_ALIASES})"
    assert sum(len(c) for c in _chains()) >= 7


def test_the_print_check_can_fail():
    code = 'print(1 + 1)  # prints: 3\nprint("rho 0.5")  # prints e.g.: rho 0.25\nprint("x")  # prints: ...\n'
    with pytest.raises(AssertionError, match="line 1: printed '2'"):
        check_printed(code, {1: ["2"], 2: ["rho 0.5"], 3: ["x"]}, "t")
    check_printed(code, {1: ["3"], 2: ["rho -7.5"], 3: ["anything"]}, "t")
    with pytest.raises(AssertionError, match="line 2: printed 'rho None'"):
        check_printed(code, {1: ["3"], 2: ["rho None"], 3: ["x"]}, "t")
    with pytest.raises(AssertionError, match="line 3: expected it to print"):
        check_printed(code, {1: ["3"], 2: ["rho 1"]}, "t")
    with pytest.raises(AssertionError, match="without a '# prints:' comment"):
        expectations("print(1)\n")


def test_ci_runs_the_readme_test_command():
    root = README.parent
    cmd = subprocess.run(
        ["awk", '/<!-- test-command -->/ {getline; while ($0 ~ /^```/) getline; print; exit}', str(README)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert cmd.endswith("pytest") and "pip install" in cmd
    assert "<!-- test-command -->" in (root / ".ci" / "run").read_text()
