"""Checkpoint files of the phase trainers: a version-tagged JSON header plus named arrays, no pickle.

Layout: an uncompressed ``.npz`` (zip of ``.npy`` members, loaded with
``allow_pickle=False``) holding the arrays of the state and one uint8 member
``__header__`` with the UTF-8 JSON header.  The header carries ``format``,
``version``, the trainer ``kind`` and a SHA-256 digest of the header (without
the digest) and of every array's name, dtype, shape and bytes, so a truncated
or edited file is detected.  Writes go to a temporary file in the target's
folder, are flushed to disk, then renamed over the target (``os.replace``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError

__all__ = ["FORMAT", "VERSION", "digest", "write", "read", "check_state_dict"]

FORMAT = "vsaopt.phase-checkpoint"
VERSION = 1
_HEADER = "__header__"


def digest(header: dict, arrays: dict) -> str:
    """SHA-256 hex of the canonical header JSON (without ``sha256``) and each array, names sorted."""
    h = hashlib.sha256()
    body = {k: v for k, v in header.items() if k != "sha256"}
    h.update(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(arrays):
        a = np.asarray(arrays[name], order="C")
        h.update(f"|{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def check_state_dict(state: Any, kind: str) -> tuple[dict, dict]:
    """``(header, arrays)`` of a state dict after checking format, version, kind and digest."""
    if not isinstance(state, dict) or set(state) != {"header", "arrays"}:
        raise CheckpointError("state dict: expected a dict with keys 'header' and 'arrays'")
    header, arrays = state["header"], state["arrays"]
    if not isinstance(header, dict) or not isinstance(arrays, dict):
        raise CheckpointError("state dict: 'header' and 'arrays' must be dicts")
    if header.get("format") != FORMAT:
        raise CheckpointError(f"state dict: not a vsaopt phase checkpoint (format {header.get('format')!r})")
    if header.get("version") != VERSION:
        raise CheckpointError(f"state dict: version {header.get('version')!r}, this vsaopt reads version {VERSION}")
    if header.get("kind") != kind:
        raise CheckpointError(f"state dict: saved by {header.get('kind')!r}, cannot load into {kind}")
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiub":
            raise CheckpointError(f"state dict: array {name!r} must be a numeric numpy array")
    if header.get("sha256") != digest(header, arrays):
        raise CheckpointError("state dict: digest mismatch (the state was modified or is incomplete)")
    return header, arrays


def write(path: str | os.PathLike, header: dict, arrays: dict) -> None:
    """Write ``header`` and ``arrays`` atomically to ``path``."""
    target = Path(path)
    text = json.dumps(header, sort_keys=True).encode()
    members = {_HEADER: np.frombuffer(text, dtype=np.uint8)}
    for name, a in arrays.items():
        if name == _HEADER:
            raise CheckpointError(f"array name {_HEADER!r} is reserved")
        members[name] = np.asarray(a, order="C")
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **members)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read(path: str | os.PathLike) -> tuple[dict, dict]:
    """``(header, arrays)`` of a checkpoint file; :class:`CheckpointError` when unreadable or malformed."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint ({exc})") from None
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # any other decoding failure of a damaged file
        raise CheckpointError(f"{path}: damaged checkpoint ({type(exc).__name__}: {exc})") from None
    text = arrays.pop(_HEADER, None)
    if text is None or text.dtype != np.uint8 or text.ndim != 1:
        raise CheckpointError(f"{path}: checkpoint has no header")
    try:
        header = json.loads(text.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint header ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: checkpoint header is not an object")
    return header, arrays
