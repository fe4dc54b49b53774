"""Mutations of the history family: the bfloat16 and ternary row codecs and the predictors that hold them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import mutation


def _bf16(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def bf16_encode(x: Any, be: Any) -> Any:
            bits = np.ascontiguousarray(x).view(np.uint32).astype(np.uint64)
            if rule == "truncate":
                top = (bits >> 16).astype(np.uint16)
            elif rule == "half_up":
                top = ((bits + 0x8000) >> 16).astype(np.uint32)
                top = np.where((top & 0x7FFF) == 0x7F80, top - 1, top).astype(np.uint16)
            else:
                return orig(x, be)
            nan = (bits & 0x7FFFFFFF) > 0x7F800000
            return np.where(nan, ((bits >> 16) & 0x8000).astype(np.uint16) | np.uint16(0x7FC0), top).astype(np.uint16)

        return bf16_encode

    return make


@mutation("history", "rounding", "vsaopt.phase.history_codec:bf16_encode")
def bf16_truncates(orig: Any) -> Any:
    """float32 to bfloat16 by truncation (the low 16 bits dropped)."""
    return _bf16("truncate")(orig)


@mutation("history", "rounding", "vsaopt.phase.history_codec:bf16_encode")
def bf16_ties_away(orig: Any) -> Any:
    """float32 to bfloat16 rounded half up (ties away from zero) instead of ties to even."""
    return _bf16("half_up")(orig)


@mutation("history", "rounding", "vsaopt.phase.history_codec:bf16_encode")
def bf16_overflow_to_inf(orig: Any) -> Any:
    """A rounding overflow gives the Inf pattern instead of the largest finite value."""

    def bf16_encode(x: Any, be: Any) -> Any:
        out = orig(x, be)
        bits = np.ascontiguousarray(x).view(np.uint32)
        lsb = (bits >> np.uint32(16)) & np.uint32(1)
        raw = ((bits.astype(np.uint64) + 0x7FFF + lsb) >> 16).astype(np.uint16)
        return np.where((raw & 0x7FFF) == 0x7F80, raw, out).astype(np.uint16)

    return bf16_encode


@mutation("history", "rounding", "vsaopt.phase.history_codec:bf16_encode")
def bf16_nan_payload_rounded(orig: Any) -> Any:
    """NaN rounded like a number (its payload carried, may round to Inf or another NaN) instead of 0x7FC0 with its sign."""

    def bf16_encode(x: Any, be: Any) -> Any:
        out = orig(x, be)
        bits = np.ascontiguousarray(x).view(np.uint32)
        nan = (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
        lsb = (bits >> np.uint32(16)) & np.uint32(1)
        raw = ((bits.astype(np.uint64) + 0x7FFF + lsb) >> 16).astype(np.uint16)
        return np.where(nan, raw, out).astype(np.uint16)

    return bf16_encode


@mutation("history", "rounding", "vsaopt.phase.history_codec:bf16_encode")
def bf16_nan_sign_dropped(orig: Any) -> Any:
    """NaN encoded as 0x7FC0 whatever its sign."""

    def bf16_encode(x: Any, be: Any) -> Any:
        out = orig(x, be)
        bits = np.ascontiguousarray(x).view(np.uint32)
        nan = (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
        return np.where(nan, np.uint16(0x7FC0), out).astype(np.uint16)

    return bf16_encode


@mutation("history", "exponent", "vsaopt.phase.history_codec:ternary_scale")
def ternary_scale_is_max(orig: Any) -> Any:
    """The row scale is max |x| itself instead of the next power of two."""
    return lambda max_bits: np.float32(np.array(max_bits, np.uint32).view(np.float32)[()])


@mutation("history", "exponent", "vsaopt.phase.history_codec:ternary_scale")
def ternary_scale_no_lower_clamp(orig: Any) -> Any:
    """The scale exponent is not clamped at -126 (a subnormal power of two)."""
    from ..._bits import ceil_exponent  # noqa: PLC0415

    def ternary_scale(max_bits: int) -> np.float32:
        if max_bits == 0:
            return np.float32(0.0)
        e = ceil_exponent(max_bits)
        return orig(max_bits) if e > 127 else np.float32(2.0**e)

    return ternary_scale


@mutation("history", "exponent", "vsaopt.phase.history_codec:ternary_scale")
def ternary_scale_exponent_128_saturates(orig: Any) -> Any:
    """A maximum above 2**127 gets the scale 2**127 (the exponent clamped) instead of the maximum itself."""

    def ternary_scale(max_bits: int) -> np.float32:
        s = orig(max_bits)
        return np.float32(2.0**127) if s > np.float32(2.0**127) else s

    return ternary_scale


@mutation("history", "exponent", "vsaopt.phase.history_codec:ternary_scale")
def ternary_scale_power_of_two_doubled(orig: Any) -> Any:
    """A maximum that is a power of two gets twice itself as the scale (frexp's exponent taken as is)."""
    from ..._bits import f32_from_bits  # noqa: PLC0415

    def ternary_scale(max_bits: int) -> np.float32:
        s = orig(max_bits)
        if max_bits == 0 or s != f32_from_bits(max_bits) or s > np.float32(2.0**126):
            return s
        return np.float32(2.0 ** max(-126, math.frexp(float(s))[1]))

    return ternary_scale


@mutation("history", "layout", "vsaopt.phase.history_codec:_draw_words")
def draw_step_high_word_dropped(orig: Any) -> Any:
    """The record's draw ignores the high 32 bits of the global step (tensor index 0)."""
    return lambda step: (orig(step)[0], 0)


@mutation("history", "layout", "vsaopt.phase.history_codec:_draw_words")
def draw_words_swapped(orig: Any) -> Any:
    """The step's low word goes to the tensor index and the high word to the counter step."""
    return lambda step: orig(step)[::-1]


@mutation("history", "rule", "vsaopt.phase.history_codec:encode_row")
def row_encoded_at_next_step(orig: Any) -> Any:
    """A row is encoded with the draw of step + 1 (the step counter incremented before the record)."""

    def encode_row(flat: Any, step: int, compression: str, be: Any, *, owned: bool = False) -> Any:
        return orig(flat, step + 1, compression, be, owned=owned)

    return encode_row


@mutation("history", "rule", "vsaopt.phase.history_codec:ternary_decode")
def ternary_row_decoded_without_scale(orig: Any) -> Any:
    """A ternary row decodes to its trits (scale 1) instead of scale * trits."""
    return lambda packed, scale, n, be: orig(packed, np.float32(1.0) if float(scale) else scale, n, be)


@mutation("history", "precision", "vsaopt.phase.history_codec:ternary_decode",
          equivalent="scale * t with t in {-1, 0, 1} is exact in any precision")
def ternary_decode_in_f64(orig: Any) -> Any:
    """Trits times the scale formed in float64 and rounded to float32."""
    return lambda packed, scale, n, be: orig(packed, scale, n, be).astype(np.float64).astype(np.float32)


@mutation("history", "boundary", "kernel:quantize_stochastic")
def history_keep_when_equal(orig: Any) -> Any:
    """A history trit is kept when u <= |x| / scale (the equality keeps)."""

    def quantize_stochastic(x: np.ndarray, scale: float, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
        from ...backends.numpy.philox import uniform_f32  # noqa: PLC0415

        s = np.float32(scale)
        if s == 0:
            return np.zeros(x.shape, dtype=np.int8)
        keep = uniform_f32(x.size, seed, stream, step, tensor) <= np.abs(x) / s
        return np.where(keep, np.sign(x), np.float32(0)).astype(np.int8)

    return quantize_stochastic
