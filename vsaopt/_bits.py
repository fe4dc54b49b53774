"""float32 bit patterns: the constants and conversions the kernels' integer results need.

Kernels report the maximum of ``|x|`` as the largest sign-cleared float32 bit
pattern (an order-free integer maximum, identical on every backend); these
helpers turn such patterns back into values and exponents.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["F32_ABS_MASK", "F32_INF_BITS", "f32_from_bits", "sign_cleared_bits", "ceil_exponent"]

#: Mask that clears the sign bit of a float32 bit pattern (``|x|`` as bits).
F32_ABS_MASK = 0x7FFFFFFF
#: float32 bit pattern of +Inf; sign-cleared patterns at or above it are Inf or NaN.
F32_INF_BITS = 0x7F800000


def f32_from_bits(bits: int) -> np.float32:
    """The float32 whose bit pattern is the unsigned 32-bit integer ``bits``.

    Parameters
    ----------
    bits : int
        A bit pattern in ``[0, 2**32 - 1]``.

    Returns
    -------
    numpy.float32
        The value with exactly those bits.

    Examples
    --------
    >>> f32_from_bits(0x3F800000)
    np.float32(1.0)
    >>> f32_from_bits(0x80000000)
    np.float32(-0.0)
    """
    return np.float32(np.array(bits, dtype=np.uint32).view(np.float32)[()])


def sign_cleared_bits(bits: int) -> int:
    """The bit pattern of ``|x|`` for the float32 ``x`` of pattern ``bits``.

    Examples
    --------
    >>> hex(sign_cleared_bits(0xBF800000))  # -1.0 -> 1.0
    '0x3f800000'
    """
    return int(bits) & F32_ABS_MASK


def ceil_exponent(bits: int) -> int:
    """Smallest ``E`` with ``2**E >= v`` for the positive float32 ``v`` of pattern ``bits``; 0 for ``bits == 0``.

    Parameters
    ----------
    bits : int
        Sign-cleared bit pattern of a finite float32.

    Returns
    -------
    int
        The exponent ``E`` (exact: powers of two give their own exponent).

    Examples
    --------
    >>> ceil_exponent(0x3F800000), ceil_exponent(0x3F800001), ceil_exponent(0x3F000000)  # 1.0, 1.0+ulp, 0.5
    (0, 1, -1)
    """
    if bits == 0:
        return 0
    mant, exp = math.frexp(float(f32_from_bits(bits)))  # v = mant * 2**exp, mant in [0.5, 1)
    return exp - 1 if mant == 0.5 else exp
