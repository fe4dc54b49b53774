"""Trit packing: 2-bit (4 trits per byte) and base-3 (5 trits per byte) (reference).

A trit ``t`` is stored as its code ``t mod 3``: 0 -> 0, +1 -> 1, -1 -> 2.
Pad positions after the last trit hold code 0.
"""

from __future__ import annotations

import numpy as np

_DECODE = np.array([0, 1, -1], dtype=np.int8)
_POW3 = np.array([1, 3, 9, 27, 81], dtype=np.int32)


def _codes(trits: np.ndarray, per_byte: int) -> tuple[np.ndarray, bool]:
    ok = bool(np.all((trits >= -1) & (trits <= 1)))
    nbytes = -(-trits.size // per_byte)
    codes = np.zeros(nbytes * per_byte, dtype=np.int32)
    codes[: trits.size] = np.remainder(trits.astype(np.int32), 3)
    return codes.reshape(nbytes, per_byte), ok


def pack_2bit(trits: np.ndarray) -> tuple[np.ndarray, bool]:
    """Byte ``j`` holds trits ``4j..4j+3``, trit ``i`` at bits ``2*(i % 4)``."""
    codes, ok = _codes(trits, 4)
    packed = codes[:, 0] | (codes[:, 1] << 2) | (codes[:, 2] << 4) | (codes[:, 3] << 6)
    return packed.astype(np.uint8), ok


def _into(trits: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """``trits``, or ``out`` holding them."""
    if out is None:
        return trits
    out[...] = trits
    return out


def unpack_2bit(packed: np.ndarray, n: int, out: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Inverse of :func:`pack_2bit` (into ``out`` when given); ``ok`` is False on a code 3 or a nonzero pad code."""
    codes = (packed[:, None].astype(np.int32) >> np.array([0, 2, 4, 6])) & 3
    codes = codes.reshape(-1)
    ok = bool(np.all(codes[:n] != 3) and np.all(codes[n:] == 0))
    return _into(_DECODE[np.minimum(codes[:n], 2)], out), ok


def pack_base3(trits: np.ndarray) -> tuple[np.ndarray, bool]:
    """Byte ``j`` holds ``sum_k (t[5j+k] mod 3) * 3**k`` for ``k = 0..4``."""
    codes, ok = _codes(trits, 5)
    return (codes @ _POW3).astype(np.uint8), ok


def unpack_base3(packed: np.ndarray, n: int, out: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Inverse of :func:`pack_base3` (into ``out`` when given); ``ok`` is False on a byte above 242 or a nonzero pad digit."""
    values = packed.astype(np.int32)
    digits = (values[:, None] // _POW3) % 3
    digits = digits.reshape(-1)
    ok = bool(np.all(values <= 242) and np.all(digits[n:] == 0))
    return _into(_DECODE[digits[:n]], out), ok


KERNELS = {
    "pack_2bit": pack_2bit,
    "unpack_2bit": unpack_2bit,
    "pack_base3": pack_base3,
    "unpack_base3": unpack_base3,
}
