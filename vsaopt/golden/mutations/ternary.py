"""Mutations of the ternary family: the threshold rule, its mean and ratio, and the stochastic rule."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import mutation


def _threshold_kernel(rule: str) -> Any:
    def quantize_threshold(x: np.ndarray, threshold: float) -> np.ndarray:
        t = np.float32(threshold)
        if rule == "ge":
            return (x >= t).astype(np.int8) - (x <= -t).astype(np.int8)
        if rule == "f64":
            x64, t64 = x.astype(np.float64), np.float64(threshold)
            return (x64 > t64).astype(np.int8) - (x64 < -t64).astype(np.int8)
        if rule == "abs":  # |x| > t, then sign: -0.0 and +0.0 alike, but also the same as the reference...
            return np.where(np.abs(x) > t, np.sign(x), 0).astype(np.int8)
        return (x > t).astype(np.int8) - (x < t).astype(np.int8) * (x < 0)  # negative side compared with +t

    return quantize_threshold


@mutation("ternary", "boundary", "kernel:quantize_threshold")
def threshold_inclusive(orig: Any) -> Any:
    """Values equal to the threshold become +-1 (>= instead of >)."""
    return _threshold_kernel("ge")


@mutation("ternary", "precision", "kernel:quantize_threshold",
          equivalent="the kernel is given the float32 threshold; comparing float32 x with it in float64 is exact")
def threshold_compared_in_f64(orig: Any) -> Any:
    """x compared with the float64 threshold instead of its float32 rounding."""
    return _threshold_kernel("f64")


@mutation("ternary", "rule", "kernel:quantize_threshold", equivalent="|x| > t then sign(x) is the same predicate as x > t or x < -t for t >= 0")
def threshold_on_abs(orig: Any) -> Any:
    """|x| > t, then the sign of x."""
    return _threshold_kernel("abs")


@mutation("ternary", "rule", "kernel:quantize_threshold")
def negative_side_against_plus_t(orig: Any) -> Any:
    """The negative side compares x < t (for x < 0) instead of x < -t."""
    return _threshold_kernel("neg")


def _deterministic(rule: str) -> Any:
    """``quantize_deterministic`` with the mean or the threshold product computed another way."""

    def make(orig: Any) -> Any:
        from ... import ternary  # noqa: PLC0415

        def quantize_deterministic(x: Any, threshold: Any = None, ratio: float = 0.5, *, backend: Any = None) -> Any:
            if threshold is not None or rule == "pass":
                return orig(x, threshold, ratio, backend=backend)
            from ...backend import resolve_backend  # noqa: PLC0415

            be = resolve_backend(backend, x)
            orig(x, None, ratio, backend=be)  # the reference's checks and errors
            flat, total, scale = ternary._stats(x, be)
            n = flat.size
            if rule == "mean_f32_sum":
                mean = np.float32(np.float32(total) / np.float32(n)) if n else np.float32(0.0)
            elif rule == "mean_over_n_minus_1":
                mean = np.float32(total / max(n - 1, 1)) if n else np.float32(0.0)
            else:
                mean = np.float32(total / n) if n else np.float32(0.0)
            if rule == "product_f64":
                t = np.float32(np.float64(ratio) * np.float64(total / n)) if n else np.float32(0.0)
            elif rule == "ratio_f64_times_mean":
                t = np.float32(np.float64(ratio) * np.float64(mean))
            elif rule == "ratio_divides":
                t = np.float32(mean / np.float32(ratio)) if ratio else np.float32(np.inf)
            else:
                with np.errstate(over="ignore"):
                    t = np.float32(ratio) * mean
            trits = be.quantize_threshold(flat, t)
            if rule == "scale_is_mean":
                scale = mean
            return trits.reshape(np.shape(x)), scale

        return quantize_deterministic

    return make


for _rule, _cls, _doc in (
    ("mean_f32_sum", "precision", "The mean divides the float32-rounded sum by float32 n."),
    ("mean_over_n_minus_1", "rule", "The mean divides by n - 1."),
    ("product_f64", "precision", "t = f32(ratio * sum / n) in float64 (one rounding at the end)."),
    ("ratio_f64_times_mean", "precision", "t = f32(f64(ratio) * mean): the ratio not rounded to float32 first."),
    ("ratio_divides", "rule", "t = mean / ratio."),
    ("scale_is_mean", "rule", "The returned scale is mean |x| instead of max |x|."),
):
    _m = _deterministic(_rule)
    _m.__name__, _m.__doc__ = f"deterministic_{_rule}", _doc
    mutation("ternary", _cls, "vsaopt.ternary:quantize_deterministic")(_m)


def _stochastic(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def quantize_stochastic(x: np.ndarray, scale: float, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
            from ...backends.numpy.philox import philox_bits, uniform_f32  # noqa: PLC0415

            s = np.float32(scale)
            if s == 0:
                return np.zeros(x.shape, dtype=np.int8)
            u = uniform_f32(x.size, seed, stream, step, tensor)
            p = np.abs(x) / s
            if rule == "le":
                keep = u <= p
            elif rule == "f64_ratio":
                keep = u.astype(np.float64) < np.abs(x).astype(np.float64) / np.float64(s)
            elif rule == "times_inverse":
                keep = u < np.abs(x) * (np.float32(1.0) / s)
            elif rule == "gt_complement":
                keep = np.float32(1.0) - u <= p
            elif rule == "word_compare":
                keep = philox_bits(x.size, seed, stream, step, tensor).astype(np.float64) < p.astype(np.float64) * 2.0**32
            elif rule == "sign_plus_zero":
                keep = u < p
                return np.where(keep, np.where(x >= 0, 1, -1), 0).astype(np.int8)
            else:
                keep = u < p
            return np.where(keep, np.sign(x), np.float32(0)).astype(np.int8)

        return quantize_stochastic

    return make


for _rule, _cls, _doc in (
    ("le", "boundary", "A trit is kept when u <= p (u == p keeps)."),
    ("f64_ratio", "precision", "p = |x| / s in float64."),
    ("times_inverse", "precision", "p = |x| * (1 / s): a multiply by the float32 reciprocal."),
    ("gt_complement", "boundary", "A trit is kept when 1 - u <= p."),
    ("word_compare", "rounding", "The 32-bit word compared with p * 2**32 (no 24-bit uniform)."),
):
    _m = _stochastic(_rule)
    _m.__name__, _m.__doc__ = f"stochastic_{_rule}", _doc
    mutation("ternary", _cls, "kernel:quantize_stochastic")(_m)


@mutation("ternary", "rule", "vsaopt.ternary:quantize_stochastic")
def stochastic_stream_ignored(orig: Any) -> Any:
    """The stream argument is not passed on (every draw on stream 0)."""

    def quantize_stochastic(x: Any, seed: int, stream: int = 0, step: int = 0, tensor_index: int = 0, *, backend: Any = None) -> Any:
        orig(x, seed, stream, step, tensor_index, backend=backend)
        return orig(x, seed, 0, step, tensor_index, backend=backend)

    return quantize_stochastic


@mutation("ternary", "rule", "vsaopt.ternary:quantize_stochastic")
def stochastic_step_and_tensor_swapped(orig: Any) -> Any:
    """step and tensor_index passed in each other's place."""

    def quantize_stochastic(x: Any, seed: int, stream: int = 0, step: int = 0, tensor_index: int = 0, *, backend: Any = None) -> Any:
        orig(x, seed, stream, step, tensor_index, backend=backend)
        return orig(x, seed, stream, tensor_index, step, backend=backend)

    return quantize_stochastic


@mutation("ternary", "exponent", "kernel:abs_stats")
def scale_flushes_subnormal_max(orig: Any) -> Any:
    """A subnormal maximum is flushed to 0 (scale 0: no trit kept)."""

    def abs_stats(x: np.ndarray) -> tuple[float, int]:
        total, bits = orig(x)
        return total, 0 if bits < 0x00800000 else bits

    return abs_stats


@mutation("ternary", "check", "vsaopt._arrays:check_real")
def threshold_zero_rejected(orig: Any) -> Any:
    """A threshold or ratio of 0 is rejected (the range read as open)."""

    def check_real(value: Any, name: str, lo: float, hi: float, *, lo_open: bool = False) -> float:
        return orig(value, name, lo, hi, lo_open=lo_open or name in ("threshold", "ratio"))

    return check_real


@mutation("ternary", "check", "vsaopt._arrays:check_real")
def ratio_upper_bound_1(orig: Any) -> Any:
    """A ratio above 1 is rejected."""

    def check_real(value: Any, name: str, lo: float, hi: float, *, lo_open: bool = False) -> float:
        return orig(value, name, lo, 1.0 if name == "ratio" else hi, lo_open=lo_open)

    return check_real
