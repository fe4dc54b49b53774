"""Mutations of the pack family: trit codes, bit and digit order, padding and malformed-data checks."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import mutation

_POW3 = np.array([1, 3, 9, 27, 81], dtype=np.int32)


def _codes(trits: np.ndarray, per: int, minus_code: int = 2) -> np.ndarray:
    n = -(-trits.size // per)
    codes = np.zeros(n * per, np.int32)
    t = trits.astype(np.int32)
    codes[: trits.size] = np.where(t < 0, minus_code, t)
    return codes.reshape(n, per)


@mutation("pack", "layout", "kernel:pack_2bit")
def pack_2bit_msb_first(orig: Any) -> Any:
    """Trit 4j+k at bits 6 - 2k (most significant pair first)."""

    def pack_2bit(trits: np.ndarray) -> tuple[np.ndarray, bool]:
        _, ok = orig(trits)
        c = _codes(trits, 4)
        return (c[:, 3] | (c[:, 2] << 2) | (c[:, 1] << 4) | (c[:, 0] << 6)).astype(np.uint8), ok

    return pack_2bit


@mutation("pack", "layout", "kernel:pack_2bit")
def pack_2bit_minus_one_as_3(orig: Any) -> Any:
    """-1 stored as code 3 (two's complement bits) instead of 2."""

    def pack_2bit(trits: np.ndarray) -> tuple[np.ndarray, bool]:
        _, ok = orig(trits)
        c = _codes(trits, 4, minus_code=3)
        return (c[:, 0] | (c[:, 1] << 2) | (c[:, 2] << 4) | (c[:, 3] << 6)).astype(np.uint8), ok

    return pack_2bit


@mutation("pack", "layout", "kernel:pack_2bit")
def pack_2bit_pad_ones(orig: Any) -> Any:
    """Pad positions hold code 1 (+1) instead of 0."""

    def pack_2bit(trits: np.ndarray) -> tuple[np.ndarray, bool]:
        packed, ok = orig(trits)
        pad = (-trits.size) % 4
        if pad and packed.size:
            packed = packed.copy()
            for k in range(4 - pad, 4):
                packed[-1] |= np.uint8(1 << (2 * k))
        return packed, ok

    return pack_2bit


@mutation("pack", "check", "kernel:pack_2bit")
def pack_2bit_no_range_check(orig: Any) -> Any:
    """Values outside {-1, 0, 1} are packed by their low two bits."""

    def pack_2bit(trits: np.ndarray) -> tuple[np.ndarray, bool]:
        c = (trits.astype(np.int32) & 3)
        n = -(-trits.size // 4)
        codes = np.zeros(n * 4, np.int32)
        codes[: trits.size] = np.where(c == 3, 2, c)
        q = codes.reshape(n, 4)
        return (q[:, 0] | (q[:, 1] << 2) | (q[:, 2] << 4) | (q[:, 3] << 6)).astype(np.uint8), True

    return pack_2bit


@mutation("pack", "layout", "kernel:pack_base3")
def pack_base3_digits_reversed(orig: Any) -> Any:
    """Base-3 digit k weighted 3**(4 - k) (most significant digit first)."""

    def pack_base3(trits: np.ndarray) -> tuple[np.ndarray, bool]:
        _, ok = orig(trits)
        return (_codes(trits, 5) @ _POW3[::-1]).astype(np.uint8), ok

    return pack_base3


@mutation("pack", "layout", "kernel:pack_base3")
def pack_base3_balanced_offset(orig: Any) -> Any:
    """Digits are t + 1 (0, 1, 2 for -1, 0, +1) instead of t mod 3."""

    def pack_base3(trits: np.ndarray) -> tuple[np.ndarray, bool]:
        _, ok = orig(trits)
        n = -(-trits.size // 5)
        codes = np.zeros(n * 5, np.int32)
        codes[: trits.size] = trits.astype(np.int32) + 1
        return (codes.reshape(n, 5) @ _POW3).astype(np.uint8), ok

    return pack_base3


@mutation("pack", "rule", "kernel:pack_base3")
def pack_base3_four_per_byte(orig: Any) -> Any:
    """The last byte of an input whose length is a multiple of 5 plus 4 is dropped (ceil read as floor + 1 only when n mod 5 > 4)."""

    def pack_base3(trits: np.ndarray) -> tuple[np.ndarray, bool]:
        packed, ok = orig(trits)
        return (packed[:-1].copy() if trits.size % 5 == 4 else packed), ok

    return pack_base3


@mutation("pack", "check", "kernel:unpack_2bit")
def unpack_2bit_code3_as_minus_one(orig: Any) -> Any:
    """Code 3 decodes as -1 instead of being malformed."""

    def unpack_2bit(packed: np.ndarray, n: int) -> tuple[np.ndarray, bool]:
        trits, _ = orig(packed & np.uint8(0xFF), n)
        codes = ((packed[:, None].astype(np.int32) >> np.array([0, 2, 4, 6])) & 3).reshape(-1)
        ok = bool(np.all(codes[n:] == 0))
        return np.where(codes[:n] >= 2, -1, codes[:n]).astype(np.int8), ok

    return unpack_2bit


@mutation("pack", "check", "kernel:unpack_2bit")
def unpack_2bit_pad_not_checked(orig: Any) -> Any:
    """Nonzero pad codes are accepted."""

    def unpack_2bit(packed: np.ndarray, n: int) -> tuple[np.ndarray, bool]:
        codes = ((packed[:, None].astype(np.int32) >> np.array([0, 2, 4, 6])) & 3).reshape(-1)
        trits, _ = orig(packed, n)
        return trits, bool(np.all(codes[:n] != 3))

    return unpack_2bit


@mutation("pack", "layout", "kernel:unpack_2bit")
def unpack_2bit_msb_first(orig: Any) -> Any:
    """Trits read from the most significant bit pair first."""

    def unpack_2bit(packed: np.ndarray, n: int) -> tuple[np.ndarray, bool]:
        rev = packed.copy()
        rev = ((rev & 3) << 6) | ((rev & 12) << 2) | ((rev & 48) >> 2) | ((rev & 192) >> 6)
        return orig(rev.astype(np.uint8), n)

    return unpack_2bit


@mutation("pack", "boundary", "kernel:unpack_base3")
def unpack_base3_243_allowed(orig: Any) -> Any:
    """Bytes up to 243 accepted (the bound off by one)."""

    def unpack_base3(packed: np.ndarray, n: int) -> tuple[np.ndarray, bool]:
        trits, ok = orig(np.where(packed == 243, np.uint8(0), packed).astype(np.uint8), n)
        return trits, ok

    return unpack_base3


@mutation("pack", "check", "kernel:unpack_base3")
def unpack_base3_pad_not_checked(orig: Any) -> Any:
    """Nonzero pad digits are accepted."""

    def unpack_base3(packed: np.ndarray, n: int) -> tuple[np.ndarray, bool]:
        trits, _ = orig(packed, n)
        return trits, bool(np.all(packed <= 242))

    return unpack_base3


@mutation("pack", "layout", "kernel:unpack_base3")
def unpack_base3_digits_reversed(orig: Any) -> Any:
    """Digit k read with weight 3**(4 - k)."""

    def unpack_base3(packed: np.ndarray, n: int) -> tuple[np.ndarray, bool]:
        values = packed.astype(np.int32)
        digits = ((values[:, None] // _POW3[::-1]) % 3).reshape(-1)
        ok = bool(np.all(values <= 242) and np.all(digits[n:] == 0))
        return np.array([0, 1, -1], np.int8)[digits[:n]], ok

    return unpack_base3


@mutation("pack", "check", "vsaopt.ternary:_per_byte")
def unknown_encoding_is_config_error(orig: Any) -> Any:
    """An unknown encoding raises ConfigError instead of EncodingError."""
    from ...errors import ConfigError, EncodingError  # noqa: PLC0415

    def per_byte(encoding: Any) -> int:
        try:
            return orig(encoding)
        except EncodingError as exc:
            raise ConfigError(str(exc)) from None

    return per_byte


@mutation("pack", "check", "vsaopt.ternary:pack")
def pack_bad_value_is_encoding_error(orig: Any) -> Any:
    """pack of a value outside {-1, 0, 1} raises EncodingError instead of ConfigError."""
    from ...errors import ConfigError, EncodingError  # noqa: PLC0415

    def pack(trits: Any, encoding: str = "2bit", *, backend: Any = None) -> Any:
        try:
            return orig(trits, encoding, backend=backend)
        except ConfigError as exc:
            raise EncodingError(str(exc)) from None

    return pack


@mutation("pack", "check", "vsaopt.ternary:unpack")
def unpack_wrong_length_is_encoding_error(orig: Any) -> Any:
    """A packed array of the wrong length raises EncodingError instead of ShapeError."""
    from ...errors import EncodingError, ShapeError  # noqa: PLC0415

    def unpack(packed: Any, n: int, encoding: str = "2bit", *, backend: Any = None) -> Any:
        try:
            return orig(packed, n, encoding, backend=backend)
        except ShapeError as exc:
            raise EncodingError(str(exc)) from None

    return unpack
