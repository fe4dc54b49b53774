"""The README's commands and Python examples stay true."""

import re
import subprocess
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def test_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples may write files (a checkpoint)
    for block in _blocks("python"):
        if "my_backend" in block:
            block = block.replace("my_backend", '"numba"')
        exec(compile(block, "README.md", "exec"), {})


def test_ci_runs_the_readme_test_command():
    root = README.parent
    cmd = subprocess.run(
        ["awk", '/<!-- test-command -->/ {getline; while ($0 ~ /^```/) getline; print; exit}', str(README)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert cmd.endswith("pytest") and "pip install" in cmd
    assert "<!-- test-command -->" in (root / ".ci" / "run").read_text()
