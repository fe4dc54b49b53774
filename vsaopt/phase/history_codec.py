"""Gradient-history rows held compressed: float32, bfloat16 or 2-bit stochastic trits (spec/history.md).

A predictor's history is a ring of flat float32 gradients.  This module holds
such rows in one of three encodings and decodes them to float32 when read:

- ``"none"``: the float32 row itself (4 bytes per element);
- ``"bfloat16"``: the top 16 bits of each float32, rounded to nearest even
  by integer arithmetic on the bit pattern (2 bytes per element);
- ``"ternary"``: stochastic trits ``t_i`` with one power-of-two float32 scale
  ``s`` per row, so that ``E[s t_i] = g_i``; four trits a byte (0.25 bytes per
  element plus 4 bytes per row).  The draws use stream ``Stream.HISTORY``,
  seed 0 and the record's global step as counter words.

Every encoding is integer glue or one of the shared kernels
(``quantize_stochastic``, ``pack_2bit``, ``unpack_2bit``), so the bytes are the
same on every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._bits import ceil_exponent
from ..errors import ConfigError
from ..rng import Stream

__all__ = [
    "COMPRESSIONS",
    "HISTORY_SEED",
    "STREAM_HISTORY",
    "EncodedRow",
    "check_compression",
    "bf16_encode",
    "bf16_decode",
    "ternary_scale",
    "ternary_encode",
    "ternary_decode",
    "encode_row",
    "decode_row",
    "decode_block",
    "row_nbytes",
]

#: Accepted values of ``history_compression``.
COMPRESSIONS = ("none", "bfloat16", "ternary")
#: Philox key of the ternary rows (the configs carry no seed; rows differ by step).
HISTORY_SEED = 0
#: Philox stream of the ternary rows ("PHST").
STREAM_HISTORY = int(Stream.HISTORY)
#: bfloat16 bit pattern of the largest finite magnitude; a rounding that reaches Inf stops here.
BF16_MAX_BITS = 0x7F7F
#: bfloat16 bit pattern of +Inf (sign cleared).
BF16_INF_BITS = 0x7F80
#: bfloat16 bit pattern a NaN is held as (sign kept).
BF16_NAN_BITS = 0x7FC0
#: Exponent range of a ternary scale ``2**E`` (an exact normal float32).
SCALE_EXP_MIN, SCALE_EXP_MAX = -126, 127


def check_compression(value: object, name: str = "history_compression") -> str:
    """``value`` if it is one of :data:`COMPRESSIONS`, else a :class:`~vsaopt.errors.ConfigError` naming ``name``."""
    if not isinstance(value, str) or value not in COMPRESSIONS:
        raise ConfigError(f"{name}: expected one of {', '.join(map(repr, COMPRESSIONS))}, got {value!r}")
    return value


def bf16_encode(x: Any, be: Any) -> Any:
    """bfloat16 bit patterns (uint16) of finite float32 ``x``, rounded to nearest, ties to even.

    .. math:: h = \\lfloor (b + \\mathtt{0x7FFF} + ((b \\gg 16) \\mathbin{\\&} 1)) / 2^{16} \\rfloor

    on the uint32 pattern ``b`` of each element; a result whose magnitude is
    the Inf pattern ``0x7F80`` (a rounding overflow, or an infinite input)
    becomes ``0x7F7F`` (the largest finite value, sign kept); a NaN becomes
    ``0x7FC0`` with its sign.

    Examples
    --------
    >>> import numpy as np
    >>> from vsaopt.backend import get_backend
    >>> [hex(v) for v in bf16_encode(np.array([1.0, 1.00390625, 3.4e38], np.float32), get_backend("numpy"))]
    ['0x3f80', '0x3f80', '0x7f7f']
    """
    xp = be.xp
    bits = xp.ascontiguousarray(x).view(xp.uint32)
    lsb = (bits >> xp.uint32(16)) & xp.uint32(1)
    top = ((bits + (xp.uint32(0x7FFF) + lsb)) >> xp.uint32(16)).astype(xp.uint16)
    mag = top & xp.uint16(0x7FFF)
    top = xp.where(mag == xp.uint16(BF16_INF_BITS), top - xp.uint16(1), top)
    nan = (bits & xp.uint32(0x7FFFFFFF)) > xp.uint32(0x7F800000)
    sign = (bits >> xp.uint32(16)).astype(xp.uint16) & xp.uint16(0x8000)
    return xp.where(nan, sign | xp.uint16(BF16_NAN_BITS), top)


def bf16_decode(h: Any, be: Any) -> Any:
    """float32 values of bfloat16 bit patterns (exact: the pattern shifted into the top half).

    Examples
    --------
    >>> import numpy as np
    >>> from vsaopt.backend import get_backend
    >>> bf16_decode(np.array([0x3F80, 0xC000], np.uint16), get_backend("numpy")).tolist()
    [1.0, -2.0]
    """
    xp = be.xp
    return (h.astype(xp.uint32) << xp.uint32(16)).view(xp.float32)


def ternary_scale(max_bits: int) -> np.float32:
    """The row scale of a float32 row whose sign-cleared maximum bit pattern is ``max_bits``.

    ``2**E`` with ``E = max(-126, ceil_exponent(max))`` (the accumulator's
    convention: ``|g_i| / 2**E`` is exact and at most 1); ``max`` itself when
    ``E`` would pass 127; 0 for an all-zero row.

    Examples
    --------
    >>> float(ternary_scale(0x3F400000)), float(ternary_scale(0))   # max 0.75 -> 1.0
    (1.0, 0.0)
    """
    if max_bits == 0:
        return np.float32(0.0)
    e = max(SCALE_EXP_MIN, ceil_exponent(max_bits))
    if e > SCALE_EXP_MAX:
        return np.float32(np.array(max_bits, np.uint32).view(np.float32)[()])
    return np.float32(2.0**e)


def _draw_words(step: int) -> tuple[int, int]:
    """Counter words ``(step, tensor_index)`` of a record's draw: the low and high 32 bits of its global step."""
    if not 0 <= step < 2**64:
        raise ConfigError(f"step: expected an integer in [0, 2**64), got {step}")
    return step & 0xFFFFFFFF, step >> 32


def ternary_encode(x: Any, step: int, be: Any) -> tuple[Any, np.float32]:
    """Stochastic trits of the flat float32 row ``x`` recorded at global ``step``, 2-bit packed, and the row scale.

    Trits come from the ``quantize_stochastic`` kernel with scale
    :func:`ternary_scale`, seed :data:`HISTORY_SEED`, stream
    :data:`STREAM_HISTORY`, counter step ``step mod 2**32`` and tensor index
    ``step // 2**32``; they are packed with ``pack_2bit``.

    Examples
    --------
    >>> import numpy as np
    >>> from vsaopt.backend import get_backend
    >>> packed, scale = ternary_encode(np.array([1.0, -1.0, 0.0, 0.5], np.float32), 7, get_backend("numpy"))
    >>> float(scale), int(packed[0]) & 0b1111    # +1 (code 1), -1 (code 2): drawn with probability 1
    (1.0, 9)
    """
    _, max_bits = be.abs_stats(x)
    scale = ternary_scale(int(max_bits))
    lo, hi = _draw_words(step)
    trits = be.quantize_stochastic(x, scale, HISTORY_SEED, STREAM_HISTORY, lo, hi)
    packed, _ = be.pack_2bit(trits)
    return packed, scale


def ternary_decode(packed: Any, scale: Any, n: int, be: Any) -> Any:
    """float32 row ``scale * t_i`` of ``n`` packed trits (exact: each value is 0 or ``±scale``).

    Examples
    --------
    >>> import numpy as np
    >>> from vsaopt.backend import get_backend
    >>> ternary_decode(np.array([9], np.uint8), np.float32(0.5), 3, get_backend("numpy")).tolist()
    [0.5, -0.5, 0.0]
    """
    xp = be.xp
    trits, _ = be.unpack_2bit(packed, n)
    return trits.astype(xp.float32) * xp.float32(scale)


@dataclass(frozen=True, eq=False)
class EncodedRow:
    """One history row as held: ``data`` (float32, uint16 or packed uint8 array of the backend) and its scale.

    ``scale`` is the ternary row scale (float32), 0 for the other encodings.
    """

    compression: str
    n: int
    data: Any
    scale: np.float32

    @property
    def nbytes(self) -> int:
        """Bytes held: the data array, plus 4 for a ternary scale."""
        return int(self.data.nbytes) + (4 if self.compression == "ternary" else 0)


def encode_row(flat: Any, step: int, compression: str, be: Any, *, owned: bool = False) -> EncodedRow:
    """Hold the flat float32 gradient ``flat`` recorded at global ``step`` in ``compression``.

    ``"none"`` keeps a copy of ``flat`` (``flat`` itself when ``owned``: the
    caller gives it up and never writes it again); ``step`` only matters for ``"ternary"``.
    """
    n = int(flat.shape[0])
    if compression == "bfloat16":
        return EncodedRow(compression, n, bf16_encode(flat, be), np.float32(0.0))
    if compression == "ternary":
        packed, scale = ternary_encode(flat, step, be)
        return EncodedRow(compression, n, packed, scale)
    return EncodedRow(compression, n, flat if owned else flat.copy(), np.float32(0.0))


def decode_row(row: EncodedRow, be: Any) -> Any:
    """The float32 row of ``row`` (for ``"none"`` the held array itself: read it, do not write it)."""
    if row.compression == "bfloat16":
        return bf16_decode(row.data, be)
    if row.compression == "ternary":
        return ternary_decode(row.data, row.scale, row.n, be)
    return row.data


def decode_block(rows: Sequence[EncodedRow], lo: int, hi: int, be: Any) -> Any:
    """float32 ``(len(rows), hi - lo)``: elements ``lo:hi`` of each row (``lo`` a multiple of 4)."""
    xp = be.xp
    out = xp.empty((len(rows), hi - lo), dtype=xp.float32)
    for i, row in enumerate(rows):
        if row.compression == "ternary":
            out[i] = ternary_decode(row.data[lo // 4 : -(-hi // 4)], row.scale, hi - lo, be)
        elif row.compression == "bfloat16":
            out[i] = bf16_decode(row.data[lo:hi], be)
        else:
            out[i] = row.data[lo:hi]
    return out


def row_nbytes(n: int, compression: str) -> int:
    """Bytes one row of ``n`` elements holds in ``compression``: ``4n``, ``2n`` or ``ceil(n/4) + 4``.

    Examples
    --------
    >>> row_nbytes(10, "none"), row_nbytes(10, "bfloat16"), row_nbytes(10, "ternary")
    (40, 20, 7)
    """
    if compression == "bfloat16":
        return 2 * n
    if compression == "ternary":
        return -(-n // 4) + 4
    return 4 * n
