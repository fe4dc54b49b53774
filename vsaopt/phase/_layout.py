"""Parameter layout: the declared ``(name, shape)`` pairs, and gradient mappings checked against them.

The predictors keep every parameter in one flat float32 vector (parameters in
declaration order, each in C order), so one kernel call serves the whole
model.  :meth:`ParamLayout.flatten` validates a gradient mapping completely
before anything is written; :meth:`ParamLayout.split` returns per-parameter
views of a flat vector.
"""

from __future__ import annotations

import math
from typing import Any

from .._grads import normalize_param_shapes, validate_gradients
from ..errors import ConfigError

#: Largest number of elements over all parameters.
MAX_ELEMENTS = 2**40


class ParamLayout:
    """Validated parameter names and shapes (:func:`vsaopt._grads.normalize_param_shapes`), with flat offsets."""

    def __init__(self, param_shapes: Any) -> None:
        pairs = normalize_param_shapes(param_shapes)
        sizes = [math.prod(s) for _, s in pairs]
        total = sum(sizes)
        if total > MAX_ELEMENTS:
            raise ConfigError(f"param_shapes: {total} elements in all, at most {MAX_ELEMENTS} supported")
        self.names: tuple[str, ...] = tuple(n for n, _ in pairs)
        self.shapes: tuple[tuple[int, ...], ...] = tuple(s for _, s in pairs)
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

    def arrays(self, gradients: Any, be: Any, what: str) -> list[Any]:
        """Each declared parameter's gradient, validated (:func:`vsaopt._grads.validate_gradients`), flat, in order."""
        return [info.flat for info in validate_gradients(gradients, tuple(self.pairs()), be, what)]

    def flatten(self, gradients: Any, be: Any, what: str) -> Any:
        """The validated gradients as one flat float32 vector (a new array)."""
        parts = self.arrays(gradients, be, what)
        xp = be.xp
        flat = xp.empty(self.total, dtype=xp.float32)
        for arr, off, n in zip(parts, self.offsets, self.sizes):
            flat[off : off + n] = arr
        return flat

    def split(self, flat: Any) -> dict[str, Any]:
        """Per-parameter views (declared shapes) of a flat vector."""
        return {
            name: flat[off : off + n].reshape(shape)
            for name, shape, off, n in zip(self.names, self.shapes, self.offsets, self.sizes)
        }
