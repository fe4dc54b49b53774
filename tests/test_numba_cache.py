"""The numba kernels' on-disk cache lives in a per-user folder, never beside the installed sources."""

import os
import subprocess
import tempfile
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")

import vsaopt.backends.numba as nb  # noqa: E402

KERNEL_DIR = Path(nb.__file__).parent
RUN_KERNEL = (
    "import numpy as np\n"
    "from vsaopt.backend import get_backend\n"
    "be = get_backend('numba')\n"
    "print(be.abs_stats(np.arange(7, dtype=np.float32)))\n"
)


def _run(env_dir):
    env = {**os.environ, "VSAOPT_CACHE_DIR": str(env_dir)}
    # run outside the source tree, so the installed package (with its backends) is the one imported
    return subprocess.run([sys.executable, "-c", RUN_KERNEL], env=env, capture_output=True, text=True, timeout=300, check=True,
                          cwd=tempfile.gettempdir())


def _package_cache_files():
    return {p for p in KERNEL_DIR.rglob("*") if p.suffix in (".nbi", ".nbc")}


def test_kernels_cache_into_the_user_folder_not_the_package(tmp_path):
    before = _package_cache_files()
    _run(tmp_path)
    cached = [p for p in (tmp_path / "numba").rglob("*") if p.suffix in (".nbi", ".nbc")]
    assert cached, "no cache file written to VSAOPT_CACHE_DIR"
    assert _package_cache_files() == before


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VSAOPT_CACHE_DIR", str(tmp_path / "here"))
    assert nb.cache_dir() == tmp_path / "here" / "numba"
    monkeypatch.delenv("VSAOPT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert nb.cache_dir() == tmp_path / "xdg" / "vsaopt" / "numba"


def test_clear_cache_removes_the_files(tmp_path, monkeypatch):
    _run(tmp_path)
    monkeypatch.setenv("VSAOPT_CACHE_DIR", str(tmp_path))
    assert nb.clear_cache() > 0
    assert not (tmp_path / "numba").exists()


def test_an_unwritable_cache_folder_falls_back_outside_the_package(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    before = _package_cache_files()
    out = _run(blocker / "cache")  # cannot be created: a file is in the way
    assert out.stdout.startswith("(21.0") and _package_cache_files() == before
