"""vsaopt: phase-based training acceleration with bit-exact ternary and hyperdimensional kernels.

Every public operation gives byte-identical results on every backend (numpy
reference, numba CPU, cupy GPU); see ``spec/SPEC.md``.
"""

from __future__ import annotations

from . import errors, rng, ternary
from .backend import Backend, available_backends, backend_status, get_backend
from .errors import OptimError

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Backend",
    "OptimError",
    "available_backends",
    "backend_status",
    "errors",
    "get_backend",
    "rng",
    "ternary",
]
