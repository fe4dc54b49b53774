"""Where the numba kernels' on-disk cache lives: a per-user cache folder, never the installed package.

numba's default (``cache=True``) writes ``__pycache__/*.nbi|*.nbc`` beside the
source files, i.e. into ``site-packages/vsaopt``: that folder may be read-only,
and files left there outlive ``pip uninstall``.  vsaopt puts a cache locator of
its own in front of numba's, for this backend's kernel files only, so their
cache goes to :func:`cache_dir`:

- ``$VSAOPT_CACHE_DIR`` when set;
- else ``$XDG_CACHE_HOME/vsaopt`` (``~/.cache/vsaopt``) on Linux and other
  POSIX systems, ``~/Library/Caches/vsaopt`` on macOS,
  ``%LOCALAPPDATA%\\vsaopt\\Cache`` on Windows;

then the subfolder ``numba``.  When that folder cannot be created or written,
a folder under the system's temporary directory is used instead (and only
when neither can be written do numba's own rules apply).  ``vsaopt cache clear`` (or
:func:`clear_cache`) removes :func:`cache_dir`.  Other numba code of the process keeps numba's
own rules.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = ["ENV_VAR", "cache_root", "cache_dir", "clear_cache", "install_locator"]

#: Environment variable that overrides the cache folder.
ENV_VAR = "VSAOPT_CACHE_DIR"

_KERNEL_DIR = os.path.dirname(os.path.abspath(__file__))


def cache_root() -> Path:
    """vsaopt's per-user cache folder (``$VSAOPT_CACHE_DIR``, else the platform's user cache folder + ``vsaopt``)."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "vsaopt" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "vsaopt"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vsaopt"


def cache_dir() -> Path:
    """The folder that holds the numba kernels' cache (``cache_root() / "numba"``)."""
    return cache_root() / "numba"


def _fallback_dir() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"vsaopt-{uid}" / "numba"


def clear_cache() -> int:
    """Remove the numba kernels' cache folder :func:`cache_dir`; returns the number of files removed."""
    folder = cache_dir()
    if not folder.is_dir():
        return 0
    removed = sum(1 for p in folder.rglob("*") if p.is_file())
    shutil.rmtree(folder)
    return removed


def install_locator() -> None:
    """Put :class:`KernelCacheLocator` first in numba's locator list (once per process)."""
    from numba.core import caching

    locator = _locator_class(caching)
    classes = caching.CacheImpl._locator_classes
    if not any(getattr(c, "_vsaopt_locator", False) for c in classes):
        classes.insert(0, locator)


def _locator_class(caching):  # type: ignore[no-untyped-def]
    """The locator class, built on numba's own base classes (imported only with numba)."""

    class KernelCacheLocator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
        """Cache files of vsaopt's numba kernels go to :func:`cache_dir` (or the temporary fallback)."""

        _vsaopt_locator = True

        def __init__(self, py_func, py_file, root: Path) -> None:  # type: ignore[no-untyped-def]
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = str(root / self.get_suitable_cache_subpath(py_file))

        def get_cache_path(self) -> str:
            return self._cache_path

        @classmethod
        def from_function(cls, py_func, py_file):  # type: ignore[no-untyped-def]
            if os.path.dirname(os.path.abspath(py_file)) != _KERNEL_DIR or not os.path.exists(py_file):
                return None
            for root in (cache_dir(), _fallback_dir()):
                self = cls(py_func, py_file, root)
                try:
                    self.ensure_cache_path()
                except OSError:
                    continue
                return self
            return None

    return KernelCacheLocator
