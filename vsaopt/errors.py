"""The one exception hierarchy of vsaopt.

Every error vsaopt raises on purpose derives from :class:`OptimError`.  Where
Python users expect a built-in category, the subclass derives from it too, so
``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "OptimError",
    "BackendError",
    "MissingKernelError",
    "ConfigError",
    "ShapeError",
    "DTypeError",
    "NonFiniteError",
    "EncodingError",
    "PhaseError",
    "CheckpointError",
    "SpecError",
]


class OptimError(Exception):
    """Root of every error vsaopt raises deliberately."""


class BackendError(OptimError, RuntimeError):
    """A backend cannot run here, lacks a kernel, or got arrays of another backend."""


class MissingKernelError(BackendError, AttributeError):
    """A backend object lacks a kernel an operation needs (nothing falls back to another backend)."""


class ConfigError(OptimError, ValueError):
    """A configuration value or argument is outside its allowed range."""


class ShapeError(OptimError, ValueError):
    """An array has the wrong shape, or arrays that must agree do not."""


class DTypeError(OptimError, TypeError):
    """An array has a dtype the operation does not accept."""


class NonFiniteError(OptimError, ValueError):
    """An input holds NaN or +/-Inf where finite values are required."""


class EncodingError(OptimError, ValueError):
    """Packed trit data is malformed, or an encoding name is unknown."""


class PhaseError(OptimError, RuntimeError):
    """A trainer method was called in a phase or order where it is not allowed."""


class CheckpointError(OptimError, ValueError):
    """A checkpoint file or state dict is truncated, tampered with or mismatched."""


class SpecError(OptimError, ValueError):
    """A golden-vector file does not follow the spec's schema."""
