"""Validation of public arguments: arrays, dtypes, seeds and counters.

Every public entry point calls these before it computes or mutates anything,
so a bad argument raises a typed error naming the parameter and leaves all
state as it was.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ._bits import F32_INF_BITS
from .backend import is_device_array, is_gpu
from .errors import BackendError, ConfigError, DTypeError, NonFiniteError, ShapeError

UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1


def _as_backend_array(x: Any, name: str, be: Any) -> Any:
    if type(x) is np.ndarray and not is_gpu(be):  # the common case, decided without the general checks
        return x
    if is_gpu(be):
        if not be.owns(x):
            raise BackendError(f"{name}: backend {be.name!r} expects a {be.array_type.__module__} array, got {type(x).__name__}")
        return x
    if is_device_array(x):
        raise BackendError(f"{name}: got a cupy (GPU) array but backend {be.name!r} computes on the host")
    try:
        return np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise DTypeError(f"{name}: expected an array, got {type(x).__name__} ({exc})") from None


def float32_array(x: Any, name: str, be: Any) -> Any:
    """``x`` as a C-contiguous float32 array of its own shape.

    Accepts any real floating dtype (float16/float64 are rounded to nearest
    float32); integer, bool and complex arrays raise :class:`DTypeError`.
    """
    arr = _as_backend_array(x, name, be)
    if arr.dtype.kind != "f":
        raise DTypeError(f"{name}: expected a floating-point array, got dtype {arr.dtype}")
    if arr.dtype == np.float32 and arr.flags.c_contiguous:
        return arr  # already what is asked for (asarray would return it too, after the errstate's cost)
    with np.errstate(over="ignore"):  # float64 beyond the float32 range becomes Inf, rejected by the caller
        return be.xp.asarray(arr, dtype=be.xp.float32, order="C")


def integer_array(x: Any, name: str, be: Any, dtype: Any) -> Any:
    """``x`` as a C-contiguous array of integer ``dtype`` (value range checked by the caller)."""
    arr = _as_backend_array(x, name, be)
    if arr.dtype.kind not in "iu":
        raise DTypeError(f"{name}: expected an integer array, got dtype {arr.dtype}")
    if arr.dtype != np.dtype(dtype):
        info = np.iinfo(dtype)
        if arr.size and (int(arr.min()) < info.min or int(arr.max()) > info.max):
            raise ConfigError(f"{name}: values must fit {np.dtype(dtype).name}")
    return be.xp.asarray(arr, dtype=dtype, order="C")


#: Elements checked at a time by :func:`trit_array` (its temporaries stay this small, whatever the input).
TRIT_CHECK_CHUNK = 1 << 20


def trit_array(x: Any, name: str, be: Any, *, kernel_checks: bool = False) -> Any:
    """``x`` as a C-contiguous int8 array whose every value is -1, 0 or +1.

    The values are checked in chunks of :data:`TRIT_CHECK_CHUNK` elements, so
    the check allocates a bounded amount whatever the input's size.  With
    ``kernel_checks`` an int8 input is not checked here: the caller passes it to
    a kernel that reports whether every value was a trit (``pack_2bit``,
    ``pack_base3``) and raises then.  Other integer dtypes are always checked
    before their conversion to int8 (which would wrap 257 to 1).
    """
    arr = _as_backend_array(x, name, be)
    if arr.dtype.kind not in "iu":
        raise DTypeError(f"{name}: expected an integer trit array (values -1, 0, +1), got dtype {arr.dtype}")
    xp = be.xp
    if not (kernel_checks and arr.dtype == np.int8):
        flat = arr.reshape(-1)
        for lo in range(0, flat.shape[0], TRIT_CHECK_CHUNK):
            part = flat[lo : lo + TRIT_CHECK_CHUNK]
            if bool(xp.any((part < -1) | (part > 1))):
                raise ConfigError(f"{name}: trits must be -1, 0 or +1")
    return xp.asarray(arr, dtype=xp.int8, order="C")


#: Message of a float array that is not finite once converted to float32 (a finite float64 such as
#: 1e300 becomes Inf there, so both cases are named).
NOT_FINITE_AS_FLOAT32 = "contains NaN or Inf, or values beyond the float32 range; finite float32 values required"


def check_finite_bits(max_bits: int, name: str, reason: str = NOT_FINITE_AS_FLOAT32) -> None:
    """Raise :class:`NonFiniteError` (``name: reason``) when a sign-cleared float32 bit maximum is Inf or NaN."""
    if max_bits >= F32_INF_BITS:
        raise NonFiniteError(f"{name}: {reason}")


def describe(value: Any) -> str:
    """``repr(value)`` for an error message, kept short (integers too long to print are described)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and abs(int(value)) >= 10**30:
        return f"an integer of {int(value).bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_int(value: Any, name: str, lo: int, hi: int) -> int:
    """``value`` as a Python int in ``[lo, hi]``; bools and non-integers are rejected."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DTypeError(f"{name}: expected an integer in [{lo}, {hi}], got {describe(value)}")
    v = int(value)
    if not lo <= v <= hi:
        raise ConfigError(f"{name}: expected an integer in [{lo}, {hi}], got {describe(v)}")
    return v


def check_seed(value: Any, name: str = "seed") -> int:
    """A seed: an integer in ``[0, 2**64 - 1]`` (the Philox key)."""
    return check_int(value, name, 0, UINT64_MAX)


def check_u32(value: Any, name: str) -> int:
    """A counter word: an integer in ``[0, 2**32 - 1]``."""
    return check_int(value, name, 0, UINT32_MAX)


def check_real(value: Any, name: str, lo: float, hi: float, *, lo_open: bool = False) -> float:
    """``value`` as a finite Python float in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DTypeError(f"{name}: expected a real number, got {describe(value)}")
    try:
        v = float(value)
    except OverflowError:  # an integer beyond the float range
        v = math.inf
    if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo):
        left = "(" if lo_open else "["
        raise ConfigError(f"{name}: expected a finite number in {left}{lo}, {hi}], got {describe(value)}")
    return v


def same_shape(a: Any, b: Any, names: str) -> None:
    """Raise :class:`ShapeError` unless ``a`` and ``b`` have the same shape."""
    if tuple(a.shape) != tuple(b.shape):
        raise ShapeError(f"{names}: shapes must match, got {tuple(a.shape)} and {tuple(b.shape)}")


def out_array(out: Any, name: str, be: Any, dtype: Any, shape: tuple[int, ...], *inputs: Any) -> Any:
    """Check a caller's output array: of backend ``be``, ``dtype`` and ``shape``, C-contiguous, writeable, sharing no memory with ``inputs``.

    Raises
    ------
    BackendError
        An array of another backend.
    DTypeError
        Not an array of ``dtype``, or read-only.
    ShapeError
        Another shape, or not C-contiguous.
    ConfigError
        It overlaps an input (the kernels read the inputs while they write it).
    """
    if not be.owns(out):
        if is_device_array(out) or isinstance(out, np.ndarray):
            raise BackendError(f"{name}: an array of backend {be.name!r} is needed, got {type(out).__name__}")
        raise DTypeError(f"{name}: expected an array, got {type(out).__name__}")
    if out.dtype != np.dtype(dtype):
        raise DTypeError(f"{name}: expected dtype {np.dtype(dtype).name}, got {out.dtype}")
    if tuple(out.shape) != tuple(shape) or not out.flags.c_contiguous:
        raise ShapeError(f"{name}: expected a C-contiguous array of shape {tuple(shape)}, got shape {tuple(out.shape)}"
                         + ("" if out.flags.c_contiguous else " (not C-contiguous)"))
    if not getattr(out.flags, "writeable", True):
        raise DTypeError(f"{name}: array is read-only; the result is written into it")
    overlaps = getattr(be.xp, "may_share_memory", np.may_share_memory)
    if any(overlaps(out, x) for x in inputs):
        raise ConfigError(f"{name}: shares memory with an input; give an array of its own")
    return out
