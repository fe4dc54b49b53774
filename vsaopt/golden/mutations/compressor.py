"""Mutations of the compressor family: the SRHT projection and its kernels, quantization, prescale, error feedback."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import mutation


@mutation("compressor", "layout", ".accum:sign_bits")
def sign_bits_msb_first(orig: Any) -> Any:
    """Sign i taken from bit 31 - i mod 32 of word i div 32."""

    def sign_bits(n: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
        from ...backends.numpy.philox import philox_bits  # noqa: PLC0415

        words = philox_bits(-(-n // 32), seed, stream, step, tensor)
        bits = (words[:, None] >> np.arange(31, -1, -1, dtype=np.uint32)) & np.uint32(1)
        return bits.reshape(-1)[:n].astype(bool)

    return sign_bits


@mutation("compressor", "layout", ".accum:sign_bits")
def sign_per_word(orig: Any) -> Any:
    """Sign i taken from bit 0 of word i (one word per element)."""

    def sign_bits(n: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
        from ...backends.numpy.philox import philox_bits  # noqa: PLC0415

        return (philox_bits(n, seed, stream, step, tensor) & np.uint32(1)).astype(bool)

    return sign_bits


def _fwht(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def fwht(x: np.ndarray, block: int, scale: float) -> np.ndarray:
            if rule == "scale_first":
                return orig((x * np.float32(scale)).astype(np.float32), block, 1.0)
            m = x.shape[0] // block
            y = x.reshape(m, block).astype(np.float32).copy()
            stages = []
            h = 1
            while h < block:
                stages.append(h)
                h *= 2
            for h in (stages[::-1] if rule == "reversed" else stages):
                v = y.reshape(m, block // (2 * h), 2, h)
                a, b = v[:, :, 0, :].copy(), v[:, :, 1, :].copy()
                v[:, :, 0, :], v[:, :, 1, :] = (a + b, a - b) if rule != "swapped" else (a + b, b - a)
            return (y.reshape(-1) * np.float32(scale)).astype(np.float32)

        return fwht

    return make


for _rule, _cls, _doc in (
    ("reversed", "order", "The butterfly stages run from h = block/2 down to 1."),
    ("scale_first", "precision", "The scale is applied before the transform instead of after it."),
    ("swapped", "rule", "The butterfly's difference is x[i+h] - x[i]."),
):
    _m = _fwht(_rule)
    _m.__name__, _m.__doc__ = f"fwht_{_rule}", _doc
    mutation("compressor", _cls, "kernel:fwht")(_m)


def _strata(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def strata(nprime: int, m: int, seed: int, stream: int, step: int, tensor: int) -> tuple[np.ndarray, np.ndarray]:
            from ...backends.numpy.philox import philox_bits  # noqa: PLC0415

            j = np.arange(m, dtype=np.uint64)
            if rule == "float_bounds":
                lo = np.floor(j.astype(np.float32) * np.float32(nprime / m)).astype(np.uint64)
                hi = np.floor((j + 1).astype(np.float32) * np.float32(nprime / m)).astype(np.uint64)
                hi[-1:] = nprime
            else:
                lo = (j * np.uint64(nprime)) // np.uint64(m)
                hi = ((j + np.uint64(1)) * np.uint64(nprime)) // np.uint64(m)
            size = hi - lo
            w = philox_bits(m, seed, stream, step, tensor).astype(np.uint64)
            off = w % np.maximum(size, np.uint64(1)) if rule == "modulo" else (w * size) >> np.uint64(32)
            big = size >= np.uint64(nprime // m) if rule == "big_ge" else size > np.uint64(nprime // m)
            return (lo + off).astype(np.int64), big

        return strata

    return make


for _rule, _cls, _doc in (
    ("modulo", "rounding", "The position in a stratum is w mod size instead of (w * size) >> 32."),
    ("float_bounds", "precision", "Stratum bounds computed in float32 as floor(j * N / m)."),
    ("big_ge", "boundary", "Every stratum weighted a_hi (size >= N div m instead of >)."),
):
    _m = _strata(_rule)
    _m.__name__, _m.__doc__ = f"strata_{_rule}", _doc
    mutation("compressor", _cls, ".accum:_strata")(_m)


@mutation("compressor", "layout", "vsaopt.projection:hadamard_blocks")
def remainder_blocks_smallest_first(orig: Any) -> Any:
    """The remainder's power-of-two blocks laid out smallest first."""

    def hadamard_blocks(nprime: int) -> tuple[tuple[int, int, int], ...]:
        segs = list(orig(nprime))
        full = [s for s in segs if s[2] > 1 or s[1] == 1 << 16]
        rest = [s for s in segs if s not in full][::-1]
        off = sum(b * c for _, b, c in full)
        out = list(full)
        for _, b, c in rest:
            out.append((off, b, c))
            off += b
        return tuple(out)

    return hadamard_blocks


@mutation("compressor", "rule", "vsaopt.projection:padded_length")
def padded_to_power_of_two(orig: Any) -> Any:
    """Every length padded to a power of two (one Hadamard block)."""

    def padded_length(n: int) -> int:
        p = orig(n)
        return 0 if n == 0 else max(p, 1 << (int(n) - 1).bit_length()) if n <= 1 << 16 else p

    return padded_length


@mutation("compressor", "precision", "vsaopt.projection:_fwht_segments",
          equivalent="blocks are 2**k with k <= 16: for even k both forms are the exact power 2**(-k/2); for odd k "
                     "f32(1) / sqrt(f32(2**k)) and f32(1 / sqrt(2**k)) are the same float32 for all eight k "
                     "(checked in tests/test_spec_mutate.py)")
def block_scale_in_f32(orig: Any) -> Any:
    """The block scale computed in float32 as 1 / sqrt(f32(block))."""

    def fwht_segments(be: Any, x: Any, segments: Any) -> Any:
        out = be.xp.empty_like(x)
        for off, block, count in segments:
            scale = float(np.float32(1.0) / np.sqrt(np.float32(block)))
            out[off: off + block * count] = be.fwht(x[off: off + block * count], block, scale)
        return out

    return fwht_segments


@mutation("compressor", "exponent", "vsaopt.compressor:_split_exponent")
def prescale_sign_flipped(orig: Any) -> Any:
    """The prescale multiplies by 2**(+e) (the sign of the exponent read the other way)."""
    return lambda e: orig(-e)


@mutation("compressor", "exponent", "vsaopt.compressor:_split_exponent")
def prescale_one_factor(orig: Any) -> Any:
    """The prescale is one float32 factor 2**e (overflows or flushes beyond the exponent range)."""

    def split(e: int) -> tuple[np.float32, np.float32]:
        with np.errstate(all="ignore"):
            return np.float32(math.ldexp(1.0, e)) if -149 <= e <= 127 else np.float32(0.0 if e < 0 else np.inf), np.float32(1.0)

    return split


def _quantize(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def quantize(self: Any, y: Any, m: int, d: int) -> tuple[Any, float]:
            be = self._be
            trits = np.zeros(d, dtype=np.int8)
            if m == 0:
                return trits, 0.0
            head = y[:m]
            total, _ = be.abs_stats(head)
            if rule == "f64_ratio":
                thr = np.float32(0.75 * (total / m))
            elif rule == "mean_over_d":
                thr = np.float32(0.75) * np.float32(total / d)
            else:
                thr = np.float32(0.75) * np.float32(total / m)
            trits[:m] = be.quantize_threshold(head, float(thr))
            above, kept = be.abs_sum_above(head, float(thr))
            if rule == "scale_f32_div":
                return trits, float(np.float32(above) / np.float32(kept)) if kept else 0.0
            if rule == "scale_mean_all":
                return trits, float(np.float32(total / m))
            return trits, float(np.float32(above / kept)) if kept else 0.0

        return quantize

    return make


for _rule, _cls, _doc in (
    ("f64_ratio", "precision", "The threshold 0.75 * mean formed in float64 and rounded once."),
    ("mean_over_d", "rule", "The mean |y| divides by d instead of the m sampled coordinates."),
    ("scale_f32_div", "precision", "The scale divides the float32-rounded sum by float32 count."),
    ("scale_mean_all", "rule", "The scale is mean |y| over all coordinates instead of over the kept ones."),
):
    _m = _quantize(_rule)
    _m.__name__, _m.__doc__ = f"quantize_{_rule}", _doc
    mutation("compressor", _cls, "vsaopt.compressor:VSAGradientCompressor._quantize")(_m)


@mutation("compressor", "rule", "vsaopt.compressor:VSAGradientCompressor._dequantize")
def error_feedback_from_unscaled_trits(orig: Any) -> Any:
    """Error feedback reconstructs from the trits instead of the alpha-scaled trits."""
    return lambda self, trits, scale, m, d: orig(self, trits, 1.0, m, d)


@mutation("compressor", "rule", "vsaopt.compressor:VSAGradientCompressor._new_residual")
def error_feedback_sign_flipped(orig: Any) -> Any:
    """The residual is sent - x instead of x - sent."""

    def new_residual(self: Any, x: Any, sent: Any, name: str) -> Any:
        return -orig(self, x, sent, name)

    return new_residual


@mutation("compressor", "precision", "vsaopt.compressor:hypervector_dim")
def dimension_product_in_f64(orig: Any) -> Any:
    """The dimension rule multiplies n by the ratio in float64."""

    def hypervector_dim(n: int, config: Any) -> int:
        return max(config.dimension, int(max(n * config.compression_ratio, 256.0)))

    return hypervector_dim


@mutation("compressor", "rounding", "vsaopt.compressor:hypervector_dim")
def dimension_ceil(orig: Any) -> Any:
    """The dimension rule rounds n * ratio up instead of down."""

    def hypervector_dim(n: int, config: Any) -> int:
        scaled = max(float(np.float32(n) * np.float32(config.compression_ratio)), 256.0)
        return max(config.dimension, math.ceil(scaled))

    return hypervector_dim
