"""The one checkpoint format of vsaopt: every object that holds state saves and loads through it.

A state dict is ``{"header": JSON-able dict, "arrays": name -> numpy array}``.
The header carries ``format``, ``version``, the object's ``kind``, its
``config`` and ``param_shapes`` (where it has them), its own fields, and a
SHA-256 digest of the header (without the digest) and of every array's name,
dtype, shape and bytes, so a truncated or edited state is detected.  The digest
is no signature: every field is also checked for type and range when loaded
(:class:`Fields`), and an object whose checks fail is left unchanged.

A checkpoint file is an uncompressed ``.npz`` (zip of ``.npy`` members, read
with ``allow_pickle=False``) holding the arrays and one uint8 member
``__header__`` with the UTF-8 JSON header.  Members must be stored, not
deflated, so what a file can make a reader allocate is bounded by the file's
own size.  Writes go to a temporary file in the target's folder, are flushed to
disk, then renamed over the target (``os.replace``); a symbolic link is
followed, so the link stays and its target is replaced.
"""

from __future__ import annotations

from enum import Enum
import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np

from ._json import parse_json
from .errors import CheckpointError, OptimError

__all__ = ["FORMAT", "VERSION", "Checkpointable", "Fields", "digest", "frame", "unframe", "write", "read"]

FORMAT = "vsaopt.checkpoint"
VERSION = 3
_HEADER = "__header__"
#: Characters of the target's name kept in the temporary file's name (a name at the system's limit still gets one).
TEMP_NAME_KEPT = 100
#: Largest header a reader accepts (bytes of JSON).
MAX_HEADER_BYTES = 64 * 2**20
#: Deepest JSON nesting a header may have.
MAX_HEADER_DEPTH = 32

_T = TypeVar("_T", bound="Checkpointable")


def digest(header: dict, arrays: dict) -> str:
    """SHA-256 hex of the canonical header JSON (without ``sha256``) and each array, names sorted."""
    h = hashlib.sha256()
    body = {k: v for k, v in header.items() if k != "sha256"}
    try:
        h.update(json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"state dict: header is not plain JSON ({exc})") from None
    for name in sorted(arrays):
        a = np.asarray(arrays[name], order="C")
        h.update(f"|{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def frame(kind: str, header: dict, arrays: dict) -> dict:
    """A state dict of ``kind`` with the format tags and the digest added to ``header``."""
    header = {"format": FORMAT, "version": VERSION, "kind": kind, **header}
    header["sha256"] = digest(header, arrays)
    return {"header": header, "arrays": arrays}


def unframe(state: Any, kind: str) -> tuple[dict, dict]:
    """``(header, arrays)`` of a state dict after checking format, version, kind, array types and digest."""
    if not isinstance(state, dict) or set(state) != {"header", "arrays"}:
        raise CheckpointError("state dict: expected a dict with keys 'header' and 'arrays'")
    header, arrays = state["header"], state["arrays"]
    if not isinstance(header, dict) or not isinstance(arrays, dict):
        raise CheckpointError("state dict: 'header' and 'arrays' must be dicts")
    if header.get("format") != FORMAT:
        raise CheckpointError(f"state dict: not a vsaopt checkpoint (format {header.get('format')!r})")
    if header.get("version") != VERSION:
        raise CheckpointError(f"state dict: version {header.get('version')!r}, this vsaopt reads version {VERSION}")
    if header.get("kind") != kind:
        raise CheckpointError(f"state dict: saved by {header.get('kind')!r}, cannot load into {kind}")
    for name, a in arrays.items():
        if not isinstance(name, str) or not isinstance(a, np.ndarray) or a.dtype.kind not in "fiub":
            raise CheckpointError(f"state dict: array {name!r} must be a numeric numpy array")
    if header.get("sha256") != digest(header, arrays):
        raise CheckpointError("state dict: digest mismatch (the state was modified or is incomplete)")
    return header, arrays


#: Longest path shown in an error message (a longer one is cut).
SHOWN_PATH = 200


def _shown(path: Any) -> str:
    """``path`` for an error message: its text, cut after :data:`SHOWN_PATH` characters, NUL bytes escaped."""
    text = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else repr(path)
    text = text.replace("\0", "\\0")
    return text if len(text) <= SHOWN_PATH else text[:SHOWN_PATH] + f"... ({len(text)} characters)"


def _file_path(path: Any) -> Path:
    """``path`` (str, bytes or os.PathLike) as a :class:`Path`; a value that is no usable path is a CheckpointError.

    Refused before the file system is asked: another type, an empty path, a NUL
    character (no operating system accepts one).
    """
    try:
        text = os.fsdecode(os.fspath(path))
    except TypeError:
        raise CheckpointError(f"path: expected a file path (str, bytes or os.PathLike), got {type(path).__name__}") from None
    if not text:
        raise CheckpointError("path: expected a file path, got an empty one")
    if "\0" in text:
        raise CheckpointError(f"path {_shown(text)}: holds a NUL character; expected a file path")
    return Path(text)


def _target(path: Any) -> Path:
    """The file a save writes: links followed; a folder, a missing parent folder or a path the system refuses is an error."""
    given = _file_path(path)
    try:
        target = Path(os.path.realpath(given))
        if target.is_dir():
            raise CheckpointError(f"{_shown(given)}: is a folder; give a file path")
        if not target.parent.is_dir():
            raise CheckpointError(f"{_shown(given)}: folder {_shown(target.parent)} does not exist")
    except OSError as exc:  # a name or path too long, a loop of links
        raise CheckpointError(f"{_shown(given)}: not a usable checkpoint path ({exc.strerror or exc})") from None
    return target


def write(path: str | os.PathLike, state: dict) -> None:
    """Write a state dict atomically to ``path`` (:class:`CheckpointError` when it cannot be written)."""
    header, arrays = state["header"], state["arrays"]
    target = _target(path)
    text = json.dumps(header, sort_keys=True, allow_nan=False).encode()
    members = {_HEADER: np.frombuffer(text, dtype=np.uint8)}
    for name, a in arrays.items():
        if name == _HEADER:
            raise CheckpointError(f"array name {_HEADER!r} is reserved")
        members[name] = np.asarray(a, order="C")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:TEMP_NAME_KEPT]}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise CheckpointError(f"{_shown(path)}: cannot write in {_shown(target.parent)} ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **members)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o777)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise CheckpointError(f"{_shown(path)}: cannot write checkpoint ({exc.strerror or exc})") from None
        raise


def _check_depth(value: Any, depth: int = 0) -> None:
    if depth > MAX_HEADER_DEPTH:
        raise CheckpointError(f"checkpoint header nests deeper than {MAX_HEADER_DEPTH} levels")
    if isinstance(value, dict):
        for v in value.values():
            _check_depth(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_depth(v, depth + 1)


def _parse_header(raw: bytes, where: str) -> dict:
    header = parse_json(raw, f"{where}: checkpoint header", CheckpointError)
    if not isinstance(header, dict):
        raise CheckpointError(f"{where}: checkpoint header is not an object")
    _check_depth(header)
    return header


def read(path: str | os.PathLike) -> dict:
    """The state dict of a checkpoint file; :class:`CheckpointError` when unreadable or malformed.

    Only stored (uncompressed) members whose declared sizes agree with the file
    are read, so a crafted file cannot make this allocate much more than its own
    size.  The digest and fields are checked by the loader (:func:`unframe`).
    """
    file = _file_path(path)
    path = _shown(file)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint ({exc.strerror or exc})") from None
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            infos = z.infolist()
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                raise CheckpointError(f"{path}: checkpoint has duplicate members")
            if sum(i.file_size for i in infos) > len(raw):
                raise CheckpointError(f"{path}: members declare more bytes than the file holds")
            members = {}
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                    raise CheckpointError(f"{path}: member {info.filename!r} is compressed; checkpoints store members")
                if not info.filename.endswith(".npy"):
                    raise CheckpointError(f"{path}: unexpected member {info.filename!r}")
                members[info.filename[:-4]] = z.read(info)
    except CheckpointError:
        raise
    except Exception as exc:  # any decoding failure of a damaged file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    text = members.pop(_HEADER, None)
    if text is None:
        raise CheckpointError(f"{path}: checkpoint has no header")
    head = _npy(text, f"{path}: header")
    if head.dtype != np.uint8 or head.ndim != 1 or head.size > MAX_HEADER_BYTES:
        raise CheckpointError(f"{path}: checkpoint header must be a uint8 vector of at most {MAX_HEADER_BYTES} bytes")
    header = _parse_header(head.tobytes(), str(path))
    arrays = {name: _npy(data, f"{path}: member {name!r}") for name, data in members.items()}
    return {"header": header, "arrays": arrays}


def _npy(data: bytes, where: str) -> np.ndarray:
    try:
        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:
        raise CheckpointError(f"{where} is not a plain numeric array ({type(exc).__name__}: {exc})") from None


class _Ledger:
    """What the :class:`Fields` of one state (its parts included) have read: header paths, parts opened, arrays."""

    def __init__(self) -> None:
        self.fields: set[tuple[str, ...]] = set()
        self.parts: set[tuple[str, ...]] = set()
        self.arrays: set[str] = set()


class _ReadHeader(dict):
    """A header object that notes each key read through ``[]`` or ``get`` (an import that reads the dict directly)."""

    def __init__(self, data: dict, path: tuple[str, ...], ledger: _Ledger) -> None:
        super().__init__(data)
        self._path, self._ledger = path, ledger

    def __getitem__(self, key: Any) -> Any:
        self._ledger.fields.add((*self._path, key))
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._ledger.fields.add((*self._path, key))
        return super().get(key, default)


class Fields:
    """Typed, range-checked reads of a state's header fields and arrays; every failure is a CheckpointError.

    Every read is noted, so that after an import :meth:`require_all_read`
    refuses a state holding fields or arrays the object did not read (an
    extra array, an extra header field: a state of another version, or edited).

    Parameters
    ----------
    header : dict
        JSON fields.
    arrays : dict
        Name -> numpy array.
    where : str
        What the state belongs to, for messages (``"PhaseTrainer"``, ``"PhaseTrainer.predictor"``).
    """

    def __init__(self, header: Any, arrays: dict, where: str, *, _path: tuple[str, ...] = (), _prefix: str = "",
                 _ledger: _Ledger | None = None) -> None:
        if not isinstance(header, dict):
            raise CheckpointError(f"{where}: state fields must be an object, got {type(header).__name__}")
        self._ledger = _Ledger() if _ledger is None else _ledger
        self._path, self._prefix = _path, _prefix
        self.header = _ReadHeader(header, _path, self._ledger)
        self.arrays = arrays
        self.where = where

    def _fail(self, name: str, want: str, got: Any) -> CheckpointError:
        shown = repr(got)
        return CheckpointError(f"{self.where}.{name}: expected {want}, got {shown[:80]}")

    def _get(self, name: str) -> Any:
        if name not in self.header:
            raise CheckpointError(f"{self.where}.{name}: missing")
        return self.header[name]  # noted as read

    def unread(self) -> tuple[list[str], list[str]]:
        """``(header fields, arrays)`` of this state that no read has taken so far (dotted paths, sorted)."""
        fields: list[str] = []
        self._unread_fields(dict(self.header), self._path, fields)
        arrays = [self._prefix + k for k in self.arrays if self._prefix + k not in self._ledger.arrays]
        return sorted(fields), sorted(arrays)

    def _unread_fields(self, header: dict, path: tuple[str, ...], out: list[str]) -> None:
        for key, value in header.items():
            where = (*path, key)
            if where not in self._ledger.fields:
                out.append(".".join(map(str, where)))
            elif where in self._ledger.parts and isinstance(value, dict):
                self._unread_fields(value, where, out)

    def require_all_read(self) -> None:
        """Raise :class:`CheckpointError` naming every header field and array of the state that was not read."""
        fields, arrays = self.unread()
        if fields or arrays:
            extra = [f"field(s) {', '.join(fields)}"] if fields else []
            extra += [f"array(s) {', '.join(arrays)}"] if arrays else []
            raise CheckpointError(f"{self.where}: the state holds {' and '.join(extra)} that this {self.where} does not read")

    def integer(self, name: str, lo: int = 0, hi: int = 2**62) -> int:
        """An integer field (a JSON integer, not a bool or float) in ``[lo, hi]``."""
        v = self._get(name)
        if type(v) is not int or not lo <= v <= hi:
            raise self._fail(name, f"an integer in [{lo}, {hi}]", v)
        return v

    def boolean(self, name: str) -> bool:
        """A ``true`` / ``false`` field."""
        v = self._get(name)
        if type(v) is not bool:
            raise self._fail(name, "true or false", v)
        return v

    def enum(self, name: str, cls: type[Enum]) -> Any:
        """An enum member stored by name."""
        v = self._get(name)
        if not isinstance(v, str) or v not in cls.__members__:
            raise self._fail(name, f"one of {', '.join(cls.__members__)}", v)
        return cls[v]

    def integer_list(self, name: str, max_len: int, lo: int = 0, hi: int = 2**62) -> list[int]:
        """A list of at most ``max_len`` integers in ``[lo, hi]``."""
        v = self._get(name)
        if not isinstance(v, list) or len(v) > max_len or any(type(x) is not int or not lo <= x <= hi for x in v):
            raise self._fail(name, f"a list of at most {max_len} integers in [{lo}, {hi}]", v)
        return list(v)

    def counts(self, name: str, enum_cls: type[Enum]) -> dict[Any, int]:
        """A ``{member name: non-negative int}`` object with exactly the members of ``enum_cls``."""
        v = self._get(name)
        if not isinstance(v, dict) or set(v) != set(enum_cls.__members__):
            raise self._fail(name, f"an object with keys {', '.join(enum_cls.__members__)}", v)
        sub = Fields(v, {}, f"{self.where}.{name}")
        return {m: sub.integer(m.name) for m in enum_cls}  # type: ignore[attr-defined]

    def sub(self, name: str) -> Fields:
        """The fields of a part (header object ``name``, arrays prefixed ``name.``)."""
        p = name + "."
        path = (*self._path, name)
        part = Fields(self._get(name), {k[len(p) :]: a for k, a in self.arrays.items() if k.startswith(p)}, f"{self.where}.{name}",
                      _path=path, _prefix=self._prefix + p, _ledger=self._ledger)
        self._ledger.parts.add(path)
        return part

    def has(self, name: str) -> bool:
        """Whether the array ``name`` is present."""
        return name in self.arrays

    def array(self, name: str, dtype: Any, shape: tuple[int, ...], *, finite: bool = True) -> np.ndarray:
        """A copy of array ``name`` of exactly ``dtype`` and ``shape`` (``-1`` in ``shape``: any length)."""
        a = self.arrays.get(name)
        dt = np.dtype(dtype)
        if a is None:
            raise CheckpointError(f"{self.where}.{name}: array missing")
        self._ledger.arrays.add(self._prefix + name)
        ok_shape = a.ndim == len(shape) and all(w in (-1, g) for w, g in zip(shape, a.shape))
        if a.dtype != dt or not ok_shape:
            raise CheckpointError(f"{self.where}.{name}: expected {dt.name} of shape {shape}, got {a.dtype.name} {a.shape}")
        if finite and a.dtype.kind == "f" and not np.isfinite(a).all():
            raise CheckpointError(f"{self.where}.{name}: holds NaN or Inf")
        return np.array(a, copy=True)

    def f32_list(self, name: str, max_len: int, *, finite: bool = True) -> list[np.float32]:
        """A float32 vector (finite unless ``finite=False``) of at most ``max_len`` values, as numpy float32 scalars."""
        a = self.array(name, np.float32, (-1,), finite=finite)
        if a.shape[0] > max_len:
            raise CheckpointError(f"{self.where}.{name}: at most {max_len} values, got {a.shape[0]}")
        return [np.float32(v) for v in a]

    def f32(self, name: str, lo: float = -math.inf, hi: float = math.inf) -> np.float32:
        """A finite float32 scalar array in ``[lo, hi]``."""
        v = np.float32(self.array(name, np.float32, ()))
        if not lo <= float(v) <= hi:
            raise CheckpointError(f"{self.where}.{name}: expected a value in [{lo}, {hi}], got {float(v)!r}")
        return v

    def require(self, ok: bool, what: str) -> None:
        """Raise CheckpointError saying ``what`` is inconsistent unless ``ok``."""
        if not ok:
            raise CheckpointError(f"{self.where}: inconsistent state ({what})")


class StatePart(Protocol):
    """A part of a checkpointed object's state (:meth:`Checkpointable.nest`)."""

    def export_state(self) -> tuple[dict, dict]:
        """``(header fields, arrays)``; arrays are host copies."""
        ...


class Checkpointable:
    """``state_dict`` / ``load_state_dict`` / ``save`` / ``load`` for an object that holds state.

    A subclass sets :attr:`_kind` and :attr:`_config_cls`, has ``config`` (a config
    dataclass with ``to_dict`` / ``from_dict``; or it overrides :meth:`_config_dict`
    and :meth:`_config_from_dict`) and provides:

    - :meth:`_identity`: JSON fields that must match for a state to load
      (by default ``param_shapes``); :meth:`_construct` rebuilds the object from
      them and a config (by default ``cls(param_shapes, config, backend=...)``);
    - :meth:`export_state`: ``(header fields, arrays)``; arrays are host copies;
    - :meth:`import_state`: validates a :class:`Fields` completely and returns a
      function that installs the state.  Nothing is changed before that function
      runs, so a failed load leaves the object as it was.
    """

    _kind: ClassVar[str] = ""
    _config_cls: ClassVar[type] = type(None)
    config: Any

    _layout: Any

    def _identity(self) -> dict:
        """Default: the parameter declaration of ``self._layout`` (a :class:`~vsaopt._grads.ParamLayout`)."""
        return {"param_shapes": self._layout.as_list()}

    def _config_dict(self) -> dict:
        """The config as JSON (a state loads only into an object with an equal one)."""
        return self.config.to_dict()  # type: ignore[no-any-return]

    @classmethod
    def _config_from_dict(cls, data: Any) -> Any:
        return cls._config_cls.from_dict(data)  # type: ignore[attr-defined]

    @classmethod
    def _construct(cls: type[_T], identity: dict, config: Any, backend: Any) -> _T:
        """Default: ``cls(param_shapes, config, backend=backend)``."""
        return cls(identity.get("param_shapes"), config, backend=backend)  # type: ignore[call-arg]

    def export_state(self) -> tuple[dict, dict]:  # pragma: no cover - defined by each class
        raise NotImplementedError

    def import_state(self, fields: Fields) -> Callable[[], None]:  # pragma: no cover - defined by each class
        raise NotImplementedError

    @staticmethod
    def nest(name: str, part: StatePart, header: dict, arrays: dict) -> None:
        """Add ``part``'s exported state to ``header`` / ``arrays`` under ``name`` (read back with :meth:`Fields.sub`)."""
        p_header, p_arrays = part.export_state()
        header[name] = p_header
        arrays.update({f"{name}.{k}": v for k, v in p_arrays.items()})

    def state_dict(self) -> dict:
        """The complete state: ``{"header": JSON-able dict, "arrays": name -> numpy array}`` (copies)."""
        header, arrays = self.export_state()
        identity = self._identity()
        return frame(self._kind, {"config": self._config_dict(), **identity, "state": header}, arrays)

    def load_state_dict(self, state: Any) -> None:
        """Restore a :meth:`state_dict` of an object of the same kind, config and parameters.

        Raises
        ------
        CheckpointError
            Wrong format, version, kind, config or parameters, a modified state, or
            a field of the wrong type or range; the object is unchanged.
        """
        header, arrays = unframe(state, self._kind)
        if header.get("config") != self._config_dict():
            raise CheckpointError(f"state dict: saved with another config ({header.get('config')!r})")
        for key, want in self._identity().items():
            if header.get(key) != want:
                what = "parameters" if key == "param_shapes" else key
                raise CheckpointError(f"state dict: saved for {what} {header.get(key)!r}, this {self._kind} has {want!r}")
        known = {"format", "version", "kind", "sha256", "config", "state", *self._identity()}
        extra = sorted(str(k) for k in header if k not in known)
        if extra:
            raise CheckpointError(f"state dict: unknown header field(s) {', '.join(extra)}")
        fields = Fields(header.get("state"), arrays, self._kind)
        install = self.import_state(fields)
        fields.require_all_read()
        install()

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`state_dict` to ``path`` atomically (temporary file, then rename); no pickle.

        Raises
        ------
        CheckpointError
            ``path`` is a folder, its folder does not exist or cannot be written.
        """
        write(path, self.state_dict())

    @classmethod
    def load(cls: type[_T], path: str | os.PathLike, backend: Any = None) -> _T:
        """An object rebuilt from a file written by :meth:`save` (config and parameters come from the file).

        Raises
        ------
        CheckpointError
            The file is missing, truncated, modified, of another kind or version, or
            declares a state that cannot be built here.
        """
        state = read(path)
        header, _ = unframe(state, cls._kind)
        identity = {k: v for k, v in header.items() if k not in ("format", "version", "kind", "sha256", "config", "state")}
        try:
            config = cls._config_from_dict(header.get("config"))
            obj = cls._construct(identity, config, backend)
        except MemoryError:
            raise CheckpointError(f"{path}: the checkpoint declares a state too large to allocate here") from None
        except CheckpointError:
            raise
        except (OptimError, TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: checkpoint config or parameter list is invalid ({exc})") from None
        obj.load_state_dict(state)
        return obj  # type: ignore[no-any-return]
