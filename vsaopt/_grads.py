"""Validation of parameter declarations and of gradient mappings.

Every object that takes gradients as a mapping ``name -> array`` declares its
parameters up front as ``param_shapes`` (a sequence of ``(name, shape)``
pairs, as in vsa-optim-rs) and checks each mapping with
:func:`validate_gradients` before it computes or mutates anything.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._arrays import check_finite_bits, float32_array
from ._bits import f32_from_bits
from .errors import ConfigError, DTypeError, ShapeError

__all__ = ["ParamShapes", "GradientInfo", "normalize_param_shapes", "validate_gradients"]

#: Normalised parameter declaration: ``((name, shape), ...)`` in declaration order.
ParamShapes = tuple[tuple[str, tuple[int, ...]], ...]


def normalize_param_shapes(param_shapes: Any, name: str = "param_shapes") -> ParamShapes:
    """Check a ``(name, shape)`` sequence and return it as a tuple of ``(str, tuple[int, ...])``.

    Parameters
    ----------
    param_shapes : sequence of (str, sequence of int) pairs, or a mapping name -> shape
        At least one parameter; names unique and non-empty; sides >= 0.

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
        if pname in seen:
            raise ConfigError(f"{name}: duplicate parameter name {pname!r}")
        seen.add(pname)
        if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
            shape = (shape,)
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
    for index, (pname, shape) in enumerate(param_shapes):
        label = f"{name}[{pname!r}]"
        arr = float32_array(gradients[pname], label, be)
        if tuple(arr.shape) != shape:
            raise ShapeError(f"{label}: expected shape {shape}, got {tuple(arr.shape)}")
        flat = arr.reshape(-1)
        total, max_bits = be.abs_stats(flat)
        check_finite_bits(max_bits, label)
        out.append(GradientInfo(pname, index, shape, flat, float(total), int(max_bits)))
    return out
