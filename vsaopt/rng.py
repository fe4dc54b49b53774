"""Counter-based randomness: the Philox4x32 block function and per-element uniforms.

All randomness in vsaopt comes from here.  There is no hidden state: element
``i`` of a draw identified by ``(seed, stream, step, tensor_index)`` uses block
``i // 4`` with counter ``(i // 4, tensor_index, step, stream)`` and key
``(seed mod 2**32, seed >> 32)``, and takes word ``i % 4`` of the block.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import numpy as np

from ._arrays import check_int, check_seed, check_u32
from .backend import Backend, resolve_backend
from .errors import DTypeError, ShapeError

__all__ = ["Stream", "philox4x32", "random_bits", "uniform", "MAX_ELEMENTS"]

#: Most elements one draw can address: ``2**32`` blocks of four words.
MAX_ELEMENTS = 2**34


class Stream(IntEnum):
    """Reserved values of the ``stream`` counter word, one per purpose inside vsaopt."""

    #: Free for callers (the default of the public functions).
    USER = 0
    #: :func:`vsaopt.vsa.random` hypervectors.
    VSA_RANDOM = 0x56534152  # "VSAR"
    #: Stochastic rounding of gradients in :class:`~vsaopt.accumulator.TernaryGradientAccumulator`.
    ACC_QUANTIZE = 0x41435155  # "ACQU"
    #: Rescaling of accumulated counts; chunk ``k`` of a rescale uses ``ACC_RESCALE + k`` (k < 8).
    ACC_RESCALE = 0x41435200  # "ACR" + chunk
    #: Random signs of the SRHT projection (:mod:`vsaopt.projection`).
    PROJ_SIGNS = 0x50524A53  # "PRJS"
    #: Sampled positions of the SRHT projection.
    PROJ_SAMPLE = 0x50524A50  # "PRJP"
    #: Binding keys of :class:`~vsaopt.compressor.VSAGradientCompressor`.
    VSA_KEYS = 0x5653414B  # "VSAK"
    #: Stochastic rounding in :func:`vsaopt.torch.ternary_comm_hook`.
    COMM_HOOK = 0x5445524E  # "TERN"
    #: Stochastic trits of compressed predictor history (:mod:`vsaopt.phase.history_codec`).
    HISTORY = 0x50485354  # "PHST"

    def __str__(self) -> str:
        return self.name


def philox4x32(counter: Any, key: Any, rounds: int = 10, *, backend: Backend | str | None = None) -> Any:
    """Philox4x32 block function (Salmon et al. 2011, Random123 constants).

    Parameters
    ----------
    counter : uint32 array, shape ``(..., 4)``
    key : uint32 array, shape ``(..., 2)``; broadcast against ``counter``'s batch shape.
    rounds : int, >= 1
        10 is the standard (``Philox4x32-10``).

    Returns
    -------
    uint32 array, shape ``(..., 4)`` (the broadcast batch shape).

    Examples
    --------
    >>> import numpy as np
    >>> out = philox4x32(np.zeros(4, np.uint32), np.zeros(2, np.uint32), backend="numpy")
    >>> [f"{w:08x}" for w in out]
    ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']
    """
    be = resolve_backend(backend, counter, key)
    rounds = check_int(rounds, "rounds", 1, 2**16)
    xp = be.xp
    c = _as_uint32(counter, "counter", be)
    k = _as_uint32(key, "key", be)
    if c.ndim < 1 or c.shape[-1] != 4:
        raise ShapeError(f"counter: expected shape (..., 4), got {tuple(c.shape)}")
    if k.ndim < 1 or k.shape[-1] != 2:
        raise ShapeError(f"key: expected shape (..., 2), got {tuple(k.shape)}")
    try:
        batch = np.broadcast_shapes(tuple(c.shape[:-1]), tuple(k.shape[:-1]))
    except ValueError:
        raise ShapeError(f"counter, key: batch shapes {tuple(c.shape[:-1])} and {tuple(k.shape[:-1])} do not broadcast") from None
    c2 = xp.ascontiguousarray(xp.broadcast_to(c, batch + (4,))).reshape(-1, 4)
    k2 = xp.ascontiguousarray(xp.broadcast_to(k, batch + (2,))).reshape(-1, 2)
    return be.philox4x32(c2, k2, rounds).reshape(batch + (4,))


def _as_uint32(a: Any, name: str, be: Any) -> Any:
    arr = a if be.owns(a) else np.asarray(a)
    if arr.dtype != np.uint32:
        raise DTypeError(f"{name}: expected dtype uint32, got {arr.dtype}")
    return arr


def _draw_args(n: int, seed: int, stream: int, step: int, tensor_index: int) -> tuple[int, int, int, int, int]:
    return (
        check_int(n, "n", 0, MAX_ELEMENTS),
        check_seed(seed),
        check_u32(stream, "stream"),
        check_u32(step, "step"),
        check_u32(tensor_index, "tensor_index"),
    )


def random_bits(
    n: int, seed: int, stream: int = 0, step: int = 0, tensor_index: int = 0, *, backend: Backend | str | None = None
) -> Any:
    """The 32-bit Philox word of each of ``n`` elements (uint32, shape ``(n,)``).

    Examples
    --------
    >>> random_bits(3, seed=0, backend="numpy").dtype
    dtype('uint32')
    """
    be = resolve_backend(backend)
    return be.philox_bits(*_draw_args(n, seed, stream, step, tensor_index))


def uniform(
    n: int, seed: int, stream: int = 0, step: int = 0, tensor_index: int = 0, *, backend: Backend | str | None = None
) -> Any:
    """Uniform float32 in ``[0, 1)``: the top 24 bits of each element's word times ``2**-24``.

    .. math:: u_i = \\lfloor w_i / 2^8 \\rfloor \\cdot 2^{-24}

    Examples
    --------
    >>> u = uniform(5, seed=7, backend="numpy")
    >>> bool(((u >= 0) & (u < 1)).all()), u.dtype
    (True, dtype('float32'))
    """
    be = resolve_backend(backend)
    return be.uniform_f32(*_draw_args(n, seed, stream, step, tensor_index))
