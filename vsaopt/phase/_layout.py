"""Parameter layout: the declared ``(name, shape)`` pairs, and gradient mappings checked against them.

The predictors keep every parameter in one flat float32 vector (parameters in
declaration order, each in C order), so one kernel call serves the whole
model.  :meth:`ParamLayout.flatten` validates a gradient mapping completely
before anything is written; :meth:`ParamLayout.split` returns per-parameter
views of a flat vector.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from .._arrays import float32_array
from ..errors import ConfigError, DTypeError, NonFiniteError, ShapeError

#: Largest number of elements over all parameters.
MAX_ELEMENTS = 2**40


class ParamLayout:
    """Validated parameter names and shapes, with their offsets in the flat vector."""

    def __init__(self, param_shapes: Any) -> None:
        if isinstance(param_shapes, Mapping):
            items = list(param_shapes.items())
        elif isinstance(param_shapes, Sequence) and not isinstance(param_shapes, (str, bytes)):
            items = list(param_shapes)
        else:
            raise ConfigError(f"param_shapes: expected a sequence of (name, shape) pairs, got {type(param_shapes).__name__}")
        if not items:
            raise ConfigError("param_shapes: at least one parameter is required")
        names: list[str] = []
        shapes: list[tuple[int, ...]] = []
        for k, item in enumerate(items):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise ConfigError(f"param_shapes[{k}]: expected a (name, shape) pair, got {item!r}")
            name, shape = item
            if not isinstance(name, str) or not name:
                raise ConfigError(f"param_shapes[{k}]: the name must be a non-empty str, got {name!r}")
            if name in names:
                raise ConfigError(f"param_shapes: duplicate parameter name {name!r}")
            if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
                shape = (shape,)
            if not isinstance(shape, (tuple, list)):
                raise ConfigError(f"param_shapes[{name!r}]: expected a shape (tuple of ints), got {shape!r}")
            dims = []
            for d in shape:
                if isinstance(d, bool) or not isinstance(d, numbers.Integral) or int(d) < 1:
                    raise ConfigError(f"param_shapes[{name!r}]: dimensions must be positive ints, got {tuple(shape)!r}")
                dims.append(int(d))
            names.append(name)
            shapes.append(tuple(dims))
        sizes = [math.prod(s) for s in shapes]
        total = sum(sizes)
        if total > MAX_ELEMENTS:
            raise ConfigError(f"param_shapes: {total} elements in all, at most {MAX_ELEMENTS} supported")
        self.names: tuple[str, ...] = tuple(names)
        self.shapes: tuple[tuple[int, ...], ...] = tuple(shapes)
        self.sizes: tuple[int, ...] = tuple(sizes)
        offsets, off = [], 0
        for n in sizes:
            offsets.append(off)
            off += n
        self.offsets: tuple[int, ...] = tuple(offsets)
        self.total: int = total

    def as_list(self) -> list[list[Any]]:
        """``[[name, [dims...]], ...]`` (JSON form)."""
        return [[n, list(s)] for n, s in zip(self.names, self.shapes)]

    def pairs(self) -> list[tuple[str, tuple[int, ...]]]:
        """``[(name, shape), ...]`` as given to the constructors."""
        return list(zip(self.names, self.shapes))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamLayout) and self.names == other.names and self.shapes == other.shapes

    def check_mapping(self, gradients: Any, what: str) -> None:
        """Raise unless ``gradients`` is a mapping with exactly the declared names."""
        if not isinstance(gradients, Mapping):
            raise DTypeError(f"{what}: expected a mapping name -> array, got {type(gradients).__name__}")
        missing = [n for n in self.names if n not in gradients]
        unknown = [str(k) for k in gradients if k not in self.names]
        if missing or unknown:
            parts = []
            if missing:
                parts.append("missing " + ", ".join(repr(n) for n in missing))
            if unknown:
                parts.append("unknown " + ", ".join(repr(n) for n in unknown))
            raise ConfigError(f"{what}: {'; '.join(parts)} (declared: {', '.join(self.names)})")

    def arrays(self, gradients: Any, be: Any, what: str) -> list[Any]:
        """Each declared parameter's gradient as a validated C-contiguous float32 array, in order."""
        self.check_mapping(gradients, what)
        xp = be.xp
        out = []
        for name, shape in zip(self.names, self.shapes):
            label = f"{what}[{name!r}]"
            arr = float32_array(gradients[name], label, be)
            if tuple(arr.shape) != shape:
                raise ShapeError(f"{label}: expected shape {shape}, got {tuple(arr.shape)}")
            if not bool(xp.isfinite(arr).all()):
                raise NonFiniteError(f"{label}: contains NaN or Inf; finite values required")
            out.append(arr)
        return out

    def flatten(self, gradients: Any, be: Any, what: str) -> Any:
        """The validated gradients as one flat float32 vector (a new array)."""
        parts = self.arrays(gradients, be, what)
        xp = be.xp
        flat = xp.empty(self.total, dtype=xp.float32)
        for arr, off, n in zip(parts, self.offsets, self.sizes):
            flat[off : off + n] = arr.reshape(-1)
        return flat

    def split(self, flat: Any) -> dict[str, Any]:
        """Per-parameter views (declared shapes) of a flat vector."""
        return {
            name: flat[off : off + n].reshape(shape)
            for name, shape, off, n in zip(self.names, self.shapes, self.offsets, self.sizes)
        }
