"""Ternary quantization (glossary: docs/architecture.md): float32 to trits with a scale, and trit packing.

Trits are int8 values in ``{-1, 0, +1}``.  A quantizer returns ``(trits, scale)``
so that ``scale * trits`` approximates ``x``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._arrays import (check_finite_bits, check_int, check_real, check_seed, check_u32, float32_array, integer_array, out_array,
                      trit_array)
from ._bits import f32_from_bits
from .backend import Backend, resolve_backend
from .errors import ConfigError, EncodingError, ShapeError
from .rng import MAX_ELEMENTS

__all__ = ["quantize_deterministic", "quantize_stochastic", "pack", "unpack", "packed_size", "ENCODINGS"]

#: Trits per byte of each packing.
ENCODINGS = {"2bit": 4, "base3": 5}


def _stats(x: Any, be: Any) -> tuple[Any, float, np.float32]:
    flat = float32_array(x, "x", be).reshape(-1)
    if flat.size > MAX_ELEMENTS:
        raise ShapeError(f"x: at most {MAX_ELEMENTS} elements, got {flat.size}")
    total, max_bits = be.abs_stats(flat)
    check_finite_bits(max_bits, "x")
    scale = f32_from_bits(max_bits)
    return flat, total, scale


def quantize_deterministic(
    x: Any, threshold: float | None = None, ratio: float = 0.5, *, backend: Backend | str | None = None
) -> tuple[Any, np.float32]:
    """Threshold ternarization: ``+1`` where ``x > t``, ``-1`` where ``x < -t``, else ``0``.

    .. math:: t = \\mathrm{f32}(\\text{ratio}) \\cdot \\mathrm{f32}\\Big(\\frac{1}{n}\\sum_i |x_i|\\Big)

    unless ``threshold`` gives ``t`` directly.  vsa-optim-rs documents its
    ``ternary_threshold`` as relative to mean ``|x|`` but applies it as an
    absolute threshold; vsaopt applies ``ratio`` relative to mean ``|x|`` as
    documented there.  The scale is ``max |x|`` as in the crate.  Deterministic
    quantization is biased: ``E[scale * t] != x`` in general.

    Parameters
    ----------
    x : float array, any shape (float16/64 are rounded to float32 first)
    threshold : float >= 0, optional
        Absolute threshold; overrides ``ratio``.
    ratio : float >= 0
        Threshold relative to mean ``|x|``.

    Returns
    -------
    trits : int8 array of ``x``'s shape
    scale : numpy.float32, ``max |x|``

    Examples
    --------
    >>> import numpy as np
    >>> t, s = quantize_deterministic(np.array([0.9, -0.1, -2.0, 0.3], np.float32), backend="numpy")
    >>> t.tolist(), float(s)
    ([1, 0, -1, 0], 2.0)
    """
    be = resolve_backend(backend, x)
    if threshold is not None:
        t = np.float32(check_real(threshold, "threshold", 0.0, float(np.finfo(np.float32).max)))
    ratio = check_real(ratio, "ratio", 0.0, 1e30)
    flat, total, scale = _stats(x, be)
    if threshold is None:
        mean = np.float32(total / flat.size) if flat.size else np.float32(0.0)
        with np.errstate(over="ignore"):  # an infinite threshold is valid: all trits 0
            t = np.float32(ratio) * mean
    trits = be.quantize_threshold(flat, t)
    return trits.reshape(np.shape(x)), scale


def quantize_stochastic(
    x: Any,
    seed: int,
    stream: int = 0,
    step: int = 0,
    tensor_index: int = 0,
    *,
    backend: Backend | str | None = None,
) -> tuple[Any, np.float32]:
    """TernGrad stochastic ternarization, reproducible from ``(seed, stream, step, tensor_index)``.

    .. math:: s = \\max_i |x_i|, \\quad t_i = \\operatorname{sign}(x_i)\\,[u_i < |x_i| / s]

    with ``u_i`` the spec's Philox uniform of element ``i`` (:func:`vsaopt.rng.uniform`)
    and the ratio rounded to float32.  ``E[s t_i] = x_i`` up to the ``2**-24``
    grid of ``u``.

    Examples
    --------
    >>> import numpy as np
    >>> t, s = quantize_stochastic(np.array([0.5, -1.0, 0.0], np.float32), seed=1, backend="numpy")
    >>> int(t[1]), int(t[2]), float(s)
    (-1, 0, 1.0)
    """
    be = resolve_backend(backend, x)
    seed = check_seed(seed)
    stream = check_u32(stream, "stream")
    step = check_u32(step, "step")
    tensor_index = check_u32(tensor_index, "tensor_index")
    flat, _, scale = _stats(x, be)
    trits = be.quantize_stochastic(flat, scale, seed, stream, step, tensor_index)
    return trits.reshape(np.shape(x)), scale


def _per_byte(encoding: Any) -> int:
    if not isinstance(encoding, str) or encoding not in ENCODINGS:
        raise EncodingError(f"encoding: expected one of {sorted(ENCODINGS)}, got {encoding!r}")
    return ENCODINGS[encoding]


def packed_size(n: int, encoding: str = "2bit") -> int:
    """Bytes needed to pack ``n`` trits: ``ceil(n / 4)`` (2bit) or ``ceil(n / 5)`` (base3)."""
    per = _per_byte(encoding)
    return -(-check_int(n, "n", 0, MAX_ELEMENTS) // per)


def pack(trits: Any, encoding: str = "2bit", *, backend: Backend | str | None = None) -> Any:
    """Pack trits (flattened in C order) into bytes.

    ``"2bit"``: four trits a byte, trit ``i`` at bits ``2*(i mod 4)`` as code
    ``t mod 3`` (0, 1, 2 for 0, +1, -1).  ``"base3"``: five trits a byte,
    ``sum_k (t_k mod 3) 3**k``.  Pad codes are 0.

    Examples
    --------
    >>> import numpy as np
    >>> pack(np.array([1, -1, 0, 1, -1], np.int8), backend="numpy").tolist()
    [73, 2]
    """
    per = _per_byte(encoding)
    be = resolve_backend(backend, trits)
    flat = trit_array(trits, "trits", be, kernel_checks=True).reshape(-1)
    packed, all_trits = getattr(be, "pack_2bit" if per == 4 else "pack_base3")(flat)
    if not all_trits:  # checked in the packing pass: no full-size temporary
        raise ConfigError("trits: trits must be -1, 0 or +1")
    return packed


def unpack(packed: Any, n: int, encoding: str = "2bit", *, out: Any = None, backend: Backend | str | None = None) -> Any:
    """Unpack ``n`` trits (int8, 1-D) from bytes made by :func:`pack`.

    Raises :class:`~vsaopt.errors.EncodingError` when a byte is not a valid code
    (2bit code 3, base3 byte above 242) or a pad position is nonzero, and
    :class:`~vsaopt.errors.ShapeError` when ``packed`` is not ``packed_size(n)`` bytes.

    ``out``, an int8 array of shape ``(n,)`` of the backend (C-contiguous,
    writeable, not overlapping ``packed``), receives the trits and is
    returned: decoding into a buffer that is reused costs no allocation and
    no first touch of fresh memory.  When the call raises EncodingError,
    ``out`` holds unspecified trits.  A bad ``out`` raises DTypeError,
    ShapeError, BackendError or ConfigError before anything is written.

    Examples
    --------
    >>> import numpy as np
    >>> unpack(np.array([73, 2], np.uint8), 5, backend="numpy").tolist()
    [1, -1, 0, 1, -1]
    >>> buf = np.empty(5, np.int8)
    >>> unpack(np.array([73, 2], np.uint8), 5, out=buf, backend="numpy") is buf
    True
    """
    per = _per_byte(encoding)
    n = check_int(n, "n", 0, MAX_ELEMENTS)
    be = resolve_backend(backend, packed)
    data = integer_array(packed, "packed", be, np.uint8).reshape(-1)
    if data.size != -(-n // per):
        raise ShapeError(f"packed: {n} trits in {encoding} need {-(-n // per)} bytes, got {data.size}")
    kernel = getattr(be, "unpack_2bit" if per == 4 else "unpack_base3")
    if out is None:
        trits, ok = kernel(data, n)
    else:
        trits, ok = kernel(data, n, out_array(out, "out", be, np.int8, (n,), data))
    if not ok:
        raise EncodingError(f"packed: malformed {encoding} data (invalid code or nonzero padding)")
    return trits
