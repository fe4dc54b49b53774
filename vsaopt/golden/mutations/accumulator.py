"""Mutations of the accumulator family: stochastic adds, rescaling, the headroom rule, the mean, nibble packing."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import mutation

_TWO32 = 4294967296.0


def _add_stochastic(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def accum_add_stochastic(counts: np.ndarray, g: np.ndarray, inv_scale: float, seed: int, stream: int, step: int,
                                 tensor: int) -> np.ndarray:
            from ...backends.numpy.philox import philox_bits, uniform_f32  # noqa: PLC0415

            if rule == "f64_p":
                p = np.abs(g).astype(np.float64) * np.float64(inv_scale)
            else:
                p = (np.abs(g) * np.float32(inv_scale)).astype(np.float64)
            w = philox_bits(g.shape[0], seed, stream, step, tensor).astype(np.float64)
            if rule == "le":
                keep = w <= p * _TWO32
            elif rule == "uniform24":
                keep = uniform_f32(g.shape[0], seed, stream, step, tensor) < p.astype(np.float32)
            else:
                keep = w < p * _TWO32
            t = (keep & (g > 0)).astype(np.int8) - (keep & (g < 0)).astype(np.int8)
            counts += t
            return counts

        return accum_add_stochastic

    return make


for _rule, _cls, _doc in (
    ("le", "boundary", "A trit is added when w <= p * 2**32 (the equality keeps)."),
    ("f64_p", "exponent", "p = |g| * 2**-E formed in float64 (no float32 underflow of tiny ratios)."),
    ("uniform24", "rounding", "The 24-bit uniform compared with p instead of the 32-bit word with p * 2**32."),
):
    _m = _add_stochastic(_rule)
    _m.__name__, _m.__doc__ = f"add_stochastic_{_rule}", _doc
    mutation("accumulator", _cls, "kernel:accum_add_stochastic")(_m)


@mutation("accumulator", "boundary", "kernel:accum_add_threshold")
def add_threshold_inclusive(orig: Any) -> Any:
    """Threshold trits where g >= t (ties counted)."""

    def accum_add_threshold(counts: np.ndarray, g: np.ndarray, threshold: float) -> np.ndarray:
        t = np.float32(threshold)
        counts += (g >= t).astype(np.int8) - (g <= -t).astype(np.int8)
        return counts

    return accum_add_threshold


def _rescale(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def accum_rescale(counts: np.ndarray, shift: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
            from ...backends.numpy.philox import philox_bits  # noqa: PLC0415

            c = counts.astype(np.int64)
            if rule == "truncate":
                q = np.trunc(c / 2.0**shift).astype(np.int64)
                r = c - q * (1 << shift)
            else:
                q, r = c >> shift, c & ((1 << shift) - 1)
            thr = r << (32 - shift)
            w = philox_bits(c.shape[0], seed, stream, step, tensor).astype(np.int64)
            if rule == "floor":
                counts[...] = q.astype(np.int8)
            elif rule == "le":
                counts[...] = (q + ((w <= thr) & (r > 0))).astype(np.int8)
            elif rule == "nearest":
                counts[...] = (q + (2 * r >= (1 << shift))).astype(np.int8)
            else:
                counts[...] = (q + (w < thr)).astype(np.int8)
            return counts

        return accum_rescale

    return make


for _rule, _cls, _doc in (
    ("floor", "rounding", "Counts halved by an arithmetic shift (floor, biased) without the stochastic carry."),
    ("le", "boundary", "The carry added when w <= r * 2**(32 - s)."),
    ("nearest", "rounding", "Counts halved to nearest (ties up) instead of stochastically."),
    ("truncate", "rounding", "Division truncated toward zero (C's /), the remainder then negative for negative counts."),
):
    _m = _rescale(_rule)
    _m.__name__, _m.__doc__ = f"rescale_{_rule}", _doc
    mutation("accumulator", _cls, "kernel:accum_rescale")(_m)


@mutation("accumulator", "precision", "kernel:accum_mean")
def mean_in_f32(orig: Any) -> Any:
    """The mean computed in float32: f32(c) * f32(unit) / f32(count)."""
    return lambda counts, unit, divisor: (counts.astype(np.float32) * np.float32(unit) / np.float32(divisor)).astype(np.float32)


@mutation("accumulator", "precision", "kernel:accum_mean")
def mean_unit_over_count_first(orig: Any) -> Any:
    """The mean computed as c * (unit / count): the quotient rounded before the product."""
    return lambda counts, unit, divisor: (counts.astype(np.float64) * (np.float64(unit) / np.float64(divisor))).astype(np.float32)


@mutation("accumulator", "rule", "kernel:count_abs_max")
def count_max_signed(orig: Any) -> Any:
    """The measured maximum is max(c) instead of max |c| (negative counts never trigger a halving)."""
    return lambda counts: int(counts.astype(np.int16).max(initial=0))


@mutation("accumulator", "rounding", "kernel:count_abs_max")
def count_abs_in_int8(orig: Any) -> Any:
    """|c| taken in int8: |-128| wraps to -128 and is not the maximum."""
    return lambda counts: int(np.abs(counts).astype(np.int8).max(initial=0))


@mutation("accumulator", "layout", "kernel:nibble_pack")
def nibble_high_first(orig: Any) -> Any:
    """Element 2j in the high nibble, 2j+1 in the low one."""

    def nibble_pack(counts: np.ndarray) -> np.ndarray:
        p = orig(counts)
        return ((p >> np.uint8(4)) | (p << np.uint8(4))).astype(np.uint8)

    return nibble_pack


@mutation("accumulator", "rounding", "kernel:nibble_unpack")
def nibble_not_sign_extended(orig: Any) -> Any:
    """Nibbles 8..15 unpacked as 8..15 instead of -8..-1."""

    def nibble_unpack(packed: np.ndarray, n: int) -> np.ndarray:
        v = np.empty(2 * packed.size, dtype=np.int16)
        v[0::2], v[1::2] = packed & 0xF, packed >> 4
        return v[:n].astype(np.int8)

    return nibble_unpack


@mutation("accumulator", "boundary", "vsaopt.accumulator:TernaryGradientAccumulator._headroom")
def halve_at_c_minus_one(orig: Any) -> Any:
    """Counts halved when the measured maximum reaches C - 1 (bound + 1 >= C instead of > C)."""
    from ...accumulator import _ceil_shift  # noqa: PLC0415

    def headroom(self: Any, i: int, bound: int) -> tuple[int, int, Any]:
        if bound + 2 <= self._cmax:
            return bound, 0, None
        counts = self._load(i)
        bound = self._measured_bound(counts, bound)
        if bound + 2 <= self._cmax:
            return bound, 0, counts
        return _ceil_shift(bound, 1), 1, counts

    return headroom


@mutation("accumulator", "rule", "vsaopt.accumulator:TernaryGradientAccumulator._headroom")
def halve_on_worst_case_bound(orig: Any) -> Any:
    """Counts halved whenever the worst-case bound would pass C (version 6's rule), without measuring."""
    from ...accumulator import _ceil_shift  # noqa: PLC0415

    def headroom(self: Any, i: int, bound: int) -> tuple[int, int, Any]:
        if bound + 1 <= self._cmax:
            return bound, 0, None
        return _ceil_shift(bound, 1), 1, self._load(i)

    return headroom


@mutation("accumulator", "rounding", "vsaopt.accumulator:_ceil_shift")
def bound_shift_floors(orig: Any) -> Any:
    """The count bound is shifted with floor instead of ceiling."""
    return lambda b, shift: b >> shift


@mutation("accumulator", "layout", "vsaopt.accumulator:TernaryGradientAccumulator._rescale")
def rescale_chunks_share_stream(orig: Any) -> Any:
    """Every 32-bit chunk of a rescale draws on stream ACR + 0."""

    def rescale(self: Any, counts: Any, i: int, shift: int, step: int) -> None:
        while shift > 0:
            s = min(shift, 32)
            self._be.accum_rescale(counts, s, self.config.seed, 0x41435200, step, i)
            shift -= s

    return rescale


@mutation("accumulator", "rule", "vsaopt.accumulator:TernaryGradientAccumulator._rescale")
def rescale_chunks_of_31(orig: Any) -> Any:
    """Large rescales applied in chunks of 31 bits instead of 32."""

    def rescale(self: Any, counts: Any, i: int, shift: int, step: int) -> None:
        chunk = 0
        while shift > 0:
            s = min(shift, 31)
            self._be.accum_rescale(counts, s, self.config.seed, 0x41435200 + chunk, step, i)
            shift -= s
            chunk += 1

    return rescale


@mutation("accumulator", "exponent", "vsaopt.accumulator:ceil_exponent")
def exponent_of_power_of_two_plus_one(orig: Any) -> Any:
    """The scale exponent of a maximum that is a power of two is one too large (frexp's exponent taken as is)."""
    from ..._bits import f32_from_bits  # noqa: PLC0415

    return lambda bits: 0 if bits == 0 else math.frexp(float(f32_from_bits(bits)))[1]


@mutation("accumulator", "rule", "vsaopt.accumulator:TernaryGradientAccumulator._unit")
def threshold_unit_mean_scale_f32(orig: Any) -> Any:
    """Threshold mode: the unit's mean scale rounded to float32 before the power of two."""

    def unit(self: Any, i: int) -> float:
        if self.config.use_stochastic_rounding:
            return orig(self, i)
        return math.ldexp(float(np.float32(float(self._scale_sum[i]) / self._count)), int(self._exp[i]))

    return unit


@mutation("accumulator", "boundary", "kernel:abs_sum_above")
def scale_counts_ties(orig: Any) -> Any:
    """The threshold mode's scale sums |g| >= t (ties included)."""

    def abs_sum_above(x: np.ndarray, threshold: float) -> tuple[float, int]:
        from ...backends.numpy.reduce import spec_sum  # noqa: PLC0415

        ax = np.abs(x)
        keep = ax >= np.float32(threshold)
        return float(spec_sum(np.where(keep, ax.astype(np.float64), 0.0))), int(keep.sum())

    return abs_sum_above


@mutation("accumulator", "rule", "vsaopt.accumulator:TernaryGradientAccumulator.reset")
def reset_keeps_exponents(orig: Any) -> Any:
    """reset clears the counts but keeps each tensor's exponent and bound."""

    def reset(self: Any) -> None:
        exp, bound, has = self._exp.copy(), self._bound.copy(), self._has_scale.copy()
        orig(self)
        self._exp[:], self._bound[:], self._has_scale[:] = exp, bound, has

    return reset
