"""The spec'd reductions: sum and maximum of ``|x|``, identical on every backend.

The sum is accumulated in float64 in the order of the spec (32 lanes per block
of 8192 elements, lanes and blocks folded by fixed pairwise trees), never by a
library ``sum`` whose order differs between numpy, numba and CUDA.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._arrays import check_finite_bits, float32_array
from ._bits import f32_from_bits
from .backend import Backend, resolve_backend

__all__ = ["abs_sum", "abs_max", "abs_stats"]


def abs_stats(x: Any, *, backend: Backend | str | None = None, name: str = "x") -> tuple[np.float64, np.float32]:
    """Sum (float64, spec order) and maximum (float32) of ``|x|`` in one pass.

    Raises :class:`~vsaopt.errors.NonFiniteError` if ``x`` holds NaN or Inf.
    """
    be = resolve_backend(backend, x)
    flat = float32_array(x, name, be).reshape(-1)
    total, max_bits = be.abs_stats(flat)
    check_finite_bits(max_bits, name)
    return np.float64(total), f32_from_bits(max_bits)


def abs_sum(x: Any, *, backend: Backend | str | None = None) -> np.float64:
    """:math:`\\sum_i |x_i|` of a float array, accumulated in float64 in the spec's order.

    Examples
    --------
    >>> import numpy as np
    >>> float(abs_sum(np.array([1.5, -2.0, 0.25], np.float32), backend="numpy"))
    3.75
    """
    return abs_stats(x, backend=backend)[0]


def abs_max(x: Any, *, backend: Backend | str | None = None) -> np.float32:
    """:math:`\\max_i |x_i|` as float32 (0 for an empty array).

    Examples
    --------
    >>> import numpy as np
    >>> float(abs_max(np.array([1.5, -2.0], np.float32), backend="numpy"))
    2.0
    """
    return abs_stats(x, backend=backend)[1]
