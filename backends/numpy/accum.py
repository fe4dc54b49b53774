"""Ternary accumulation and matrix-free projection kernels (reference).

The arithmetic of each kernel is normative (``spec/accumulator.md``,
``spec/compressor.md``); this module writes it as plainly as numpy allows.
"""

from __future__ import annotations

import numpy as np

from vsaopt.errors import DTypeError

from .philox import philox_bits
from .reduce import spec_sum

_TWO32 = np.float64(4294967296.0)


# --- matrix-free projection -------------------------------------------------


def sign_bits(n: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
    """Bit ``i % 32`` of word ``i // 32`` of the draw, for each ``i < n`` (bool: True = negate)."""
    words = philox_bits(-(-n // 32), seed, stream, step, tensor)
    bits = (words[:, None] >> np.arange(32, dtype=np.uint32)) & np.uint32(1)
    return bits.reshape(-1)[:n].astype(bool)


def random_signs(x: np.ndarray, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
    """``x_i`` negated where sign bit ``i`` is 1 (float32: IEEE negation; int8: ``-t``)."""
    flip = sign_bits(x.shape[0], seed, stream, step, tensor)
    return np.where(flip, -x, x).astype(x.dtype)


def fwht(x: np.ndarray, block: int, scale: float) -> np.ndarray:
    """Unnormalised Walsh-Hadamard transform of each length-``block`` block of float32 ``x``, times f32 ``scale``.

    Stage ``h = 1, 2, 4, ..., block/2``: for each ``i`` with ``i & h == 0``,
    ``(x[i], x[i+h]) <- (x[i] + x[i+h], x[i] - x[i+h])`` in float32.
    """
    m = x.shape[0] // block
    y = x.reshape(m, block).copy()
    h = 1
    while h < block:
        v = y.reshape(m, block // (2 * h), 2, h)
        a = v[:, :, 0, :].copy()
        b = v[:, :, 1, :]
        v[:, :, 0, :] = a + b
        v[:, :, 1, :] = a - b
        h *= 2
    return (y.reshape(-1) * np.float32(scale)).astype(np.float32)


def _strata(nprime: int, m: int, seed: int, stream: int, step: int, tensor: int) -> tuple[np.ndarray, np.ndarray]:
    j = np.arange(m, dtype=np.uint64)
    lo = (j * np.uint64(nprime)) // np.uint64(m)
    hi = ((j + np.uint64(1)) * np.uint64(nprime)) // np.uint64(m)
    size = hi - lo
    w = philox_bits(m, seed, stream, step, tensor).astype(np.uint64)
    pos = lo + ((w * size) >> np.uint64(32))
    big = size > np.uint64(nprime // m)
    return pos.astype(np.int64), big


def srht_gather(
    z: np.ndarray, d: int, m: int, a_lo: float, a_hi: float, seed: int, stream: int, step: int, tensor: int
) -> np.ndarray:
    """``y[j] = z[r_j] * a_j`` for ``j < m`` (stratified positions), ``0`` for ``m <= j < d``; float32 ``(d,)``."""
    y = np.zeros(d, dtype=np.float32)
    if m:
        pos, big = _strata(z.shape[0], m, seed, stream, step, tensor)
        a = np.where(big, np.float32(a_hi), np.float32(a_lo)).astype(np.float32)
        y[:m] = z[pos] * a
    return y


def srht_scatter(
    y: np.ndarray, nprime: int, m: int, a_lo: float, a_hi: float, seed: int, stream: int, step: int, tensor: int
) -> np.ndarray:
    """``v[r_j] = y[j] * a_j`` for ``j < m``, every other ``v`` entry ``+0.0``; float32 ``(nprime,)``."""
    v = np.zeros(nprime, dtype=np.float32)
    if m:
        pos, big = _strata(nprime, m, seed, stream, step, tensor)
        a = np.where(big, np.float32(a_hi), np.float32(a_lo)).astype(np.float32)
        v[pos] = y[:m] * a
    return v


def abs_sum_above(x: np.ndarray, threshold: float) -> tuple[float, int]:
    """Spec'd f64 sum of ``|x_i|`` over ``|x_i| > t`` (``t`` f32; others add ``+0.0``) and their count."""
    t = np.float32(threshold)
    ax = np.abs(x)
    keep = ax > t
    return float(spec_sum(np.where(keep, ax.astype(np.float64), 0.0))), int(keep.sum())


# --- ternary accumulation ----------------------------------------------------


def accum_add_stochastic(
    counts: np.ndarray, g: np.ndarray, inv_scale: float, seed: int, stream: int, step: int, tensor: int
) -> np.ndarray:
    """``counts += sign(g) * [w < p * 2**32]``, ``p = f32(|g| * inv_scale)``, in f64; in place, returns ``counts``."""
    p = np.abs(g) * np.float32(inv_scale)
    w = philox_bits(g.shape[0], seed, stream, step, tensor).astype(np.float64)
    keep = w < p.astype(np.float64) * _TWO32
    t = (keep & (g > 0)).astype(np.int8) - (keep & (g < 0)).astype(np.int8)
    counts += t
    return counts


def accum_add_threshold(counts: np.ndarray, g: np.ndarray, threshold: float) -> np.ndarray:
    """``counts += [g > t] - [g < -t]`` (``t`` f32); in place, returns ``counts``."""
    t = np.float32(threshold)
    counts += (g > t).astype(np.int8) - (g < -t).astype(np.int8)
    return counts


def accum_rescale(counts: np.ndarray, shift: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
    """Unbiased ``c / 2**shift`` (``1 <= shift <= 32``): ``(c >> s) + [w < (c mod 2**s) << (32 - s)]``; in place."""
    c = counts.astype(np.int64)
    q = c >> shift
    r = c & ((1 << shift) - 1)
    thr = r << (32 - shift)
    w = philox_bits(c.shape[0], seed, stream, step, tensor).astype(np.int64)
    counts[...] = (q + (w < thr)).astype(np.int8)
    return counts


def count_abs_max(counts: np.ndarray) -> int:
    """``max |c_i|`` of int8 counts as an exact integer (``|-128| = 128``); 0 when there are none."""
    if counts.dtype != np.int8:
        raise DTypeError(f"counts: expected int8 counts, got dtype {counts.dtype}")
    return int(np.abs(counts.astype(np.int16)).max(initial=0))


def accum_mean(counts: np.ndarray, unit: float, divisor: float) -> np.ndarray:
    """``f32((f64(c) * unit) / divisor)`` for each count."""
    return ((counts.astype(np.float64) * np.float64(unit)) / np.float64(divisor)).astype(np.float32)


def nibble_pack(counts: np.ndarray) -> np.ndarray:
    """Counts in ``[-8, 7]`` as 4-bit two's complement, two a byte: element ``2j`` low nibble, ``2j+1`` high; pad 0."""
    u = (counts.astype(np.int16) & 0xF).astype(np.uint8)
    if u.size % 2:
        u = np.concatenate([u, np.zeros(1, np.uint8)])
    return (u[0::2] | (u[1::2] << np.uint8(4))).astype(np.uint8)


def nibble_unpack(packed: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`nibble_pack`: ``n`` int8 counts (nibbles sign-extended)."""
    v = np.empty(2 * packed.size, dtype=np.int16)
    v[0::2] = packed & 0xF
    v[1::2] = packed >> 4
    return np.where(v >= 8, v - 16, v)[:n].astype(np.int8)


KERNELS = {
    "random_signs": random_signs,
    "fwht": fwht,
    "srht_gather": srht_gather,
    "srht_scatter": srht_scatter,
    "abs_sum_above": abs_sum_above,
    "accum_add_stochastic": accum_add_stochastic,
    "accum_add_threshold": accum_add_threshold,
    "accum_rescale": accum_rescale,
    "count_abs_max": count_abs_max,
    "accum_mean": accum_mean,
    "nibble_pack": nibble_pack,
    "nibble_unpack": nibble_unpack,
}
