"""Parameter declarations, their layout, and validation of gradient mappings.

Every object that takes gradients as a mapping ``name -> array`` declares its
parameters up front as ``param_shapes`` (a sequence of ``(name, shape)``
pairs, as in vsa-optim-rs), holds them as one :class:`ParamLayout` (names,
shapes, sizes and offsets in one flat float32 vector), and checks each mapping
with :meth:`ParamLayout.validate` before it computes or mutates anything.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._arrays import check_finite_bits, float32_array
from ._bits import F32_INF_BITS, f32_from_bits
from .errors import ConfigError, DTypeError, ShapeError

__all__ = ["ParamShapes", "ParamLayout", "GradientInfo", "FlatGradients", "GradientPieces", "normalize_param_shapes",
           "validate_gradients", "SAFE_MAGNITUDE", "may_overflow"]

#: Largest number of elements over all parameters.
MAX_ELEMENTS = 2**40
#: Half the float32 maximum: float32 sums and products whose exact magnitudes are bounded below this cannot
#: overflow, whatever their rounding (each rounding changes a value by at most a factor ``1 + 2**-24``).
SAFE_MAGNITUDE = 2.0**127


def may_overflow(bound: float) -> bool:
    """Whether float32 results bounded by ``bound`` (Inf or NaN: no bound) may have overflowed and need a finite check."""
    return not bound < SAFE_MAGNITUDE

#: Normalised parameter declaration: ``((name, shape), ...)`` in declaration order.
ParamShapes = tuple[tuple[str, tuple[int, ...]], ...]


def normalize_param_shapes(param_shapes: Any, name: str = "param_shapes") -> ParamShapes:
    """Check a ``(name, shape)`` sequence and return it as a tuple of ``(str, tuple[int, ...])``.

    Parameters
    ----------
    param_shapes : sequence of (str, sequence of int) pairs, or a mapping name -> shape
        At least one parameter; names unique and non-empty; sides >= 0 (Python or
        numpy integers, or a 1-D numpy integer array; a side of 0 declares a
        parameter without elements).

    Raises
    ------
    ConfigError
        Empty declaration, a name that is not a non-empty string, a duplicate
        name, or a shape that is not a sequence of non-negative integers.

    Examples
    --------
    >>> normalize_param_shapes([("w", [2, 3]), ("b", (3,))])
    (('w', (2, 3)), ('b', (3,)))
    """
    if isinstance(param_shapes, Mapping):
        items = list(param_shapes.items())
    elif isinstance(param_shapes, Sequence) and not isinstance(param_shapes, (str, bytes)):
        items = list(param_shapes)
    else:
        raise ConfigError(f"{name}: expected a sequence of (name, shape) pairs, got {type(param_shapes).__name__}")
    if not items:
        raise ConfigError(f"{name}: at least one parameter is required")
    out = []
    seen: set[str] = set()
    for k, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ConfigError(f"{name}[{k}]: expected a (name, shape) pair, got {item!r}")
        pname, shape = item
        if not isinstance(pname, str) or not pname:
            raise ConfigError(f"{name}[{k}]: parameter name must be a non-empty string, got {pname!r}")
        pname = str(pname)  # a str subclass (numpy.str_) is stored as the plain string it equals
        if pname in seen:
            raise ConfigError(f"{name}: duplicate parameter name {pname!r}")
        seen.add(pname)
        if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
            shape = (shape,)
        elif isinstance(shape, np.ndarray) and shape.ndim == 1 and shape.dtype.kind in "iu":
            shape = shape.tolist()  # a shape held as an integer vector
        if not isinstance(shape, (tuple, list)) or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and int(s) >= 0 for s in shape
        ):
            raise ConfigError(f"{name}[{pname!r}]: shape must be a sequence of non-negative integers, got {shape!r}")
        out.append((pname, tuple(int(s) for s in shape)))
    return tuple(out)


@dataclass(frozen=True)
class GradientInfo:
    """One validated gradient: its parameter ``index``, flat float32 array and ``|g|`` statistics."""

    name: str
    index: int
    shape: tuple[int, ...]
    flat: Any
    abs_sum: float
    max_bits: int

    @property
    def abs_max(self) -> np.float32:
        """``max |g|`` as float32."""
        return f32_from_bits(self.max_bits)


def validate_gradients(gradients: Any, param_shapes: ParamShapes, be: Any, name: str = "gradients") -> list[GradientInfo]:
    """Check a gradient mapping against ``param_shapes`` and return it flattened, in declaration order.

    Every declared name must be present and no other; each array must have the
    declared shape, a real floating dtype (float16/float64 are rounded to
    float32), finite values, and live where backend ``be`` computes.

    Raises
    ------
    ShapeError
        An empty mapping, unknown or missing names, a wrong shape.
    DTypeError
        Not a mapping, or a non-floating array.
    NonFiniteError
        NaN or Inf in an array.
    BackendError
        A cupy array given to a host backend or the reverse.

    Examples
    --------
    >>> import numpy as np
    >>> from vsaopt.backend import get_backend
    >>> infos = validate_gradients({"w": np.ones((2, 2))}, (("w", (2, 2)),), get_backend("numpy"))
    >>> infos[0].flat.dtype, float(infos[0].abs_sum)
    (dtype('float32'), 4.0)
    """
    out = []
    for index, ((pname, shape), flat) in enumerate(zip(param_shapes, _float32_arrays(gradients, param_shapes, be, name))):
        total, max_bits = be.abs_stats(flat)
        check_finite_bits(max_bits, f"{name}[{pname!r}]")
        out.append(GradientInfo(pname, index, shape, flat, float(total), int(max_bits)))
    return out


def _float32_arrays(gradients: Any, param_shapes: ParamShapes, be: Any, name: str) -> list[Any]:
    """Names, shapes, dtypes and backends of a gradient mapping checked (values not); flat float32 arrays in declaration order."""
    if not isinstance(gradients, Mapping):
        raise DTypeError(f"{name}: expected a mapping name -> array, got {type(gradients).__name__}")
    if not gradients:
        raise ShapeError(f"{name}: empty mapping; expected arrays for {', '.join(n for n, _ in param_shapes)}")
    declared = {n for n, _ in param_shapes}
    unknown = sorted(str(k) for k in gradients if k not in declared)
    if unknown:
        raise ShapeError(f"{name}: unknown parameter(s) {', '.join(unknown)}; declared: {', '.join(n for n, _ in param_shapes)}")
    missing = [n for n, _ in param_shapes if n not in gradients]
    if missing:
        raise ShapeError(f"{name}: missing parameter(s) {', '.join(missing)}")
    out = []
    for pname, shape in param_shapes:
        label = f"{name}[{pname!r}]"
        arr = float32_array(gradients[pname], label, be)
        if tuple(arr.shape) != shape:
            raise ShapeError(f"{label}: expected shape {shape}, got {tuple(arr.shape)}")
        out.append(arr.reshape(-1))
    return out


class ParamLayout:
    """Validated parameter names and shapes (:func:`normalize_param_shapes`), with sizes and flat offsets.

    Parameters are laid out in declaration order, each in C order, so a whole
    model's gradients fit one flat float32 vector and one kernel call serves all
    of them.

    Examples
    --------
    >>> lay = ParamLayout([("w", (2, 3)), ("b", (3,))])
    >>> lay.sizes, lay.offsets, lay.total
    ((6, 3), (0, 6), 9)
    """

    def __init__(self, param_shapes: Any) -> None:
        self.pairs: ParamShapes = normalize_param_shapes(param_shapes)
        self.names: tuple[str, ...] = tuple(n for n, _ in self.pairs)
        self.shapes: tuple[tuple[int, ...], ...] = tuple(s for _, s in self.pairs)
        self.sizes: tuple[int, ...] = tuple(math.prod(s) for s in self.shapes)
        self.total: int = sum(self.sizes)
        if self.total > MAX_ELEMENTS:
            raise ConfigError(f"param_shapes: {self.total} elements in all, at most {MAX_ELEMENTS} supported")
        self.offsets: tuple[int, ...] = tuple(itertools.accumulate(self.sizes, initial=0))[:-1]  # one pass
        #: Declaration index of each name (lookups in constant time, whatever the number of parameters).
        self.index: dict[str, int] = {n: k for k, n in enumerate(self.names)}

    def as_list(self) -> list[list[Any]]:
        """``[[name, [dims...]], ...]`` (the JSON form checkpoints store)."""
        return [[n, list(s)] for n, s in self.pairs]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamLayout) and self.pairs == other.pairs

    def __hash__(self) -> int:
        return hash(self.pairs)

    def validate(self, gradients: Any, be: Any, what: str = "gradients") -> list[GradientInfo]:
        """Each declared parameter's gradient, validated (:func:`validate_gradients`), in declaration order."""
        return validate_gradients(gradients, self.pairs, be, what)

    def arrays(self, gradients: Any, be: Any, what: str) -> list[Any]:
        """Each declared parameter's validated gradient, flat, in declaration order."""
        return [info.flat for info in self.validate(gradients, be, what)]

    def pieces(self, gradients: Any, be: Any, what: str) -> list[Any]:
        """The gradients as flat float32 arrays in declaration order, names, shapes and dtypes checked; values not.

        No copy where an array already is C-contiguous float32 of the backend;
        :class:`FlatGradients` of this layout and backend give their one vector,
        :class:`GradientPieces` of this very layout and backend their pieces.
        For callers whose first pass over the values checks them (the trainers'
        ``gather_stats``, then :meth:`raise_non_finite`).
        """
        if isinstance(gradients, FlatGradients) and gradients.layout == self and gradients.backend is be:
            return [gradients.flat]
        if isinstance(gradients, GradientPieces) and gradients.layout is self and gradients.backend is be:
            return list(gradients.pieces)
        return _float32_arrays(gradients, self.pairs, be, what)

    def flatten(self, gradients: Any, be: Any, what: str) -> Any:
        """The validated gradients as one flat float32 vector (one finite check over the whole vector).

        A new array, except for :class:`FlatGradients` of this layout and backend:
        their vector, checked when they were made, is returned as it is (no copy).
        Callers read the result; they do not keep or write it.
        """
        return self.flatten_bounded(gradients, be, what)[0]

    def flatten_bounded(self, gradients: Any, be: Any, what: str) -> tuple[Any, float | None]:
        """:meth:`flatten` and the vector's largest ``|element|`` (None where the finite check was made before)."""
        if isinstance(gradients, FlatGradients) and gradients.layout == self and gradients.backend is be:
            return gradients.flat, None
        parts = _float32_arrays(gradients, self.pairs, be, what)
        xp = be.xp
        flat = xp.empty(self.total, dtype=xp.float32)
        for arr, off, n in zip(parts, self.offsets, self.sizes):
            flat[off : off + n] = arr
        _, max_bits = be.abs_stats(flat)
        if max_bits >= F32_INF_BITS:
            self.raise_non_finite(flat, be, what)
        return flat, float(f32_from_bits(int(max_bits)))

    def raise_non_finite(self, flat: Any, be: Any, what: str, reason: str | None = None) -> None:
        """Raise :class:`NonFiniteError` naming the first parameter whose part of ``flat`` holds NaN or Inf.

        For callers that found a flat vector not finite (a sum over it is not); a finite vector raises nothing.
        ``reason`` replaces the default message after the parameter's name.
        """
        for name, off, n in zip(self.names, self.offsets, self.sizes):
            _, bits = be.abs_stats(flat[off : off + n])
            if reason is None:
                check_finite_bits(bits, f"{what}[{name!r}]")
            else:
                check_finite_bits(bits, f"{what}[{name!r}]", reason)

    def check_finite(self, flat: Any, be: Any, what: str, reason: str) -> None:
        """Raise :class:`NonFiniteError` (``what[name]: reason``) when the flat vector ``flat`` holds NaN or Inf.

        One ``abs_stats`` pass over the vector; the parameter is found only when it fails.
        """
        _, bits = be.abs_stats(flat)
        if bits >= F32_INF_BITS:
            self.raise_non_finite(flat, be, what, reason)

    def require_flat(self, flat: Any, be: Any, what: str, *, writeable: bool = True) -> None:
        """Check that ``flat`` is a 1-D C-contiguous float32 array of backend ``be`` with :attr:`total` elements.

        Raises
        ------
        DTypeError
            Not a float32 array of the backend, or read-only when ``writeable``.
        ShapeError
            Not 1-D and C-contiguous with :attr:`total` elements.
        """
        if not be.owns(flat) or getattr(flat, "dtype", None) != np.float32:
            raise DTypeError(f"{what}: expected a float32 array of backend {be.name!r}, got {type(flat).__name__} "
                             f"of dtype {getattr(flat, 'dtype', None)}")
        if flat.ndim != 1 or flat.shape[0] != self.total or not flat.flags.c_contiguous:
            raise ShapeError(f"{what}: expected a C-contiguous 1-D array of {self.total} elements, got shape {tuple(flat.shape)}")
        if writeable and not getattr(flat.flags, "writeable", True):
            raise DTypeError(f"{what}: array is read-only; it is written in place")

    def split(self, flat: Any) -> dict[str, Any]:
        """Per-parameter views (declared shapes) of a flat vector."""
        return {name: flat[off : off + n].reshape(shape) for name, shape, off, n in zip(self.names, self.shapes, self.offsets, self.sizes)}


class _LayoutGradients(Mapping):
    """A gradient mapping over a layout's names (declared shapes); a subclass gives parameter ``k``'s flat array."""

    layout: ParamLayout

    def _flat_piece(self, k: int) -> Any:  # pragma: no cover - defined by each subclass
        raise NotImplementedError

    def __getitem__(self, name: str) -> Any:
        k = self.layout.index.get(name) if isinstance(name, str) else None
        if k is None:
            raise KeyError(name)
        return self._flat_piece(k).reshape(self.layout.shapes[k])

    def __iter__(self) -> Iterator[str]:
        return iter(self.layout.names)

    def __len__(self) -> int:
        return len(self.layout.names)


class FlatGradients(_LayoutGradients):
    """Every declared parameter's gradient in one flat float32 vector, checked once, recorded without a copy.

    A mapping ``name -> view`` (declared shapes) like any gradient mapping, so it
    goes wherever one does; :meth:`ParamLayout.flatten` of the same layout and
    backend takes its vector as it is instead of validating and copying each
    array again.  For callers that hold a model's gradients in one buffer (the
    PyTorch adapter).  The vector must not change until the call that takes it
    returns.

    Parameters
    ----------
    layout : ParamLayout
    flat : backend array
        1-D, float32, C-contiguous, ``layout.total`` elements, of backend ``be``.
    be : backend object
    what : str
        Name used in error messages.
    finite_checked : bool
        True when the caller has already checked that every element is finite
        (e.g. in the pass that filled ``flat``); else :meth:`__init__` checks it
        (one ``abs_stats`` pass).

    Raises
    ------
    DTypeError
        ``flat`` is not a float32 array of the backend.
    ShapeError
        ``flat`` is not 1-D C-contiguous with ``layout.total`` elements.
    NonFiniteError
        NaN or Inf in ``flat`` (names the first parameter that holds one).

    Examples
    --------
    >>> import numpy as np
    >>> from vsaopt.backend import get_backend
    >>> be = get_backend("numpy")
    >>> lay = ParamLayout([("w", (2,)), ("b", (1,))])
    >>> g = FlatGradients(lay, np.array([1.0, 2.0, 3.0], np.float32), be)
    >>> g["b"], lay.flatten(g, be, "g") is g.flat
    (array([3.], dtype=float32), True)
    """

    def __init__(self, layout: ParamLayout, flat: Any, be: Any, what: str = "gradients", *, finite_checked: bool = False) -> None:
        layout.require_flat(flat, be, what, writeable=False)
        if not finite_checked:
            for name, off, n in zip(layout.names, layout.offsets, layout.sizes):
                check_finite_bits(int(be.abs_stats(flat[off : off + n])[1]), f"{what}[{name!r}]")
        self.layout = layout
        self.flat = flat
        self.backend = be

    def _flat_piece(self, k: int) -> Any:
        off, n = self.layout.offsets[k], self.layout.sizes[k]
        return self.flat[off : off + n]


class GradientPieces(_LayoutGradients):
    """Every declared parameter's gradient as a flat float32 array, made by vsaopt itself and taken as it is.

    A mapping ``name -> array`` (declared shapes) like any gradient mapping;
    :meth:`ParamLayout.pieces` of the same layout object and backend returns
    the pieces without checking names, shapes and dtypes again.  For the
    PyTorch adapter, whose gradient buffer builds them from the parameters the
    trainer was declared with.  Values are not checked (the trainer's gather
    pass is the finite check).

    Parameters
    ----------
    layout : ParamLayout
        The layout object of the trainer that takes them.
    pieces : sequence of backend arrays
        Per declared parameter, in order: 1-D, float32, C-contiguous, of
        backend ``be``, with the parameter's number of elements.  Not checked.
    be : backend object

    Examples
    --------
    >>> import numpy as np
    >>> from vsaopt.backend import get_backend
    >>> be = get_backend("numpy")
    >>> lay = ParamLayout([("w", (2,)), ("b", (1,))])
    >>> g = GradientPieces(lay, [np.ones(2, np.float32), np.zeros(1, np.float32)], be)
    >>> lay.pieces(g, be, "g")[0] is g.pieces[0], g["b"]
    (True, array([0.], dtype=float32))
    """

    def __init__(self, layout: ParamLayout, pieces: Sequence[Any], be: Any) -> None:
        self.layout = layout
        self.pieces = tuple(pieces)
        self.backend = be

    def _flat_piece(self, k: int) -> Any:
        return self.pieces[k]
