"""Ternary accumulation and matrix-free projection kernels in numba.

Same arithmetic as the numpy reference (``spec/accumulator.md``,
``spec/compressor.md``): elementwise float32 operations in the spec's order,
integer stochastic-rounding decisions, and spec-order float64 sums.  Inputs of
at least ``PARALLEL_MIN`` elements run ``prange`` over chunks of independent
outputs; no float reduction happens inside ``prange`` except per-block sums
that are folded afterwards in the spec's fixed order.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from vsaopt.errors import DTypeError

from ._dispatch import chunk_count, chunk_range, run
from .philox import key_words, pairs_blocks, philox10
from .reduce import BLOCK, LANES, fold_lanes, fold_pairwise

#: Philox blocks (four words) per parallel task.
CHUNK_BLOCKS = 1 << 14
#: Elements (or bytes) per parallel task of the kernels that draw no random words.
CHUNK = 4 * CHUNK_BLOCKS
#: Philox blocks per tile of the stochastic add (8 KiB of words: L1-resident).
TILE_BLOCKS = 512
_TWO32 = 4294967296.0
U32 = np.uint64(32)
ONE = np.uint64(1)


def _words(seed: int, stream: int, step: int, tensor: int) -> tuple:
    k0, k1 = key_words(seed)
    return k0, k1, np.uint64(tensor), np.uint64(step), np.uint64(stream)


# --- random signs ------------------------------------------------------------------


@njit(cache=True)
def _signs_range(x, out, b0, b1, k0, k1, c1, c2, c3):
    """Philox blocks ``b0..b1-1``: block ``b`` gives words ``4b..4b+3``, word ``k`` flips elements ``32k..32k+31``."""
    lo, hi = 128 * b0, min(x.shape[0], 128 * b1)
    xs, os = x[lo:hi], out[lo:hi]
    n = hi - lo
    for jb in range(b1 - b0):
        w = philox10(np.uint64(b0 + jb), c1, c2, c3, k0, k1)
        for q in range(4):
            word = w[q]
            base = 128 * jb + 32 * q
            top = min(32, n - base)
            for j in range(top):
                v = xs[base + j]
                os[base + j] = -v if (word >> np.uint64(j)) & ONE else v


@njit(cache=True, parallel=True)
def _signs_par(x, out, b0, b1, k0, k1, c1, c2, c3):
    for c in prange(chunk_count(b1 - b0, CHUNK_BLOCKS)):
        lo, hi = chunk_range(c, CHUNK_BLOCKS, b0, b1)
        _signs_range(x, out, lo, hi, k0, k1, c1, c2, c3)


def random_signs(x: np.ndarray, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
    """``x_i`` negated where bit ``i % 32`` of word ``i // 32`` is set (float32 or int8)."""
    n = x.shape[0]
    out = np.empty_like(x)
    nblocks = -(-n // 128)
    run(n, _signs_range, _signs_par, x, out, 0, nblocks, *_words(seed, stream, step, tensor))
    return out


# --- Walsh-Hadamard transform --------------------------------------------------------


@njit(cache=True)
def _fwht_block(y, off, block, scale):
    """In-place butterflies of ``y[off:off+block]``, stage ``h = 1, 2, ...``; the last stage times ``scale``."""
    h = 1
    while h < block // 2:
        for i0 in range(off, off + block, 2 * h):
            for j in range(i0, i0 + h):
                a = y[j]
                b = y[j + h]
                y[j] = a + b
                y[j + h] = a - b
        h *= 2
    if block == 1:
        y[off] = y[off] * scale
        return
    for j in range(off, off + h):
        a = y[j]
        b = y[j + h]
        y[j] = (a + b) * scale
        y[j + h] = (a - b) * scale


@njit(cache=True)
def _fwht_serial(y, block, scale):
    for k in range(y.shape[0] // block):
        _fwht_block(y, k * block, block, scale)


@njit(cache=True, parallel=True)
def _fwht_par(y, block, scale):
    for k in prange(y.shape[0] // block):
        _fwht_block(y, k * block, block, scale)


def fwht(x: np.ndarray, block: int, scale: float) -> np.ndarray:
    """Blockwise unnormalised Walsh-Hadamard transform of float32 ``x``, times f32 ``scale``."""
    y = x.copy()
    s = np.float32(scale)
    n = x.shape[0] if x.shape[0] // block > 1 else 0  # a single block is not split
    run(n, _fwht_serial, _fwht_par, y, block, s)
    return y


# --- stratified sampling ---------------------------------------------------------------


@njit(cache=True, inline="always")
def _position(j, nprime, m, w):
    lo = (np.uint64(j) * nprime) // m
    hi = ((np.uint64(j) + ONE) * nprime) // m
    size = hi - lo
    return lo + ((w * size) >> U32), size


@njit(cache=True)
def _gather_range(z, y, m, nprime, q, a_lo, a_hi, b0, b1, k0, k1, c1, c2, c3):
    lo = 4 * b0
    ys = y[lo : 4 * b1]
    for jb in range(b1 - b0):
        w = philox10(np.uint64(b0 + jb), c1, c2, c3, k0, k1)
        for k in range(4):
            j = 4 * jb + k
            if lo + j < m:
                pos, size = _position(lo + j, nprime, m, w[k])
                a = a_hi if size > q else a_lo
                ys[j] = z[pos] * a


@njit(cache=True, parallel=True)
def _gather_par(z, y, m, nprime, q, a_lo, a_hi, b0, b1, k0, k1, c1, c2, c3):
    for c in prange(chunk_count(b1 - b0, CHUNK_BLOCKS)):
        lo, hi = chunk_range(c, CHUNK_BLOCKS, b0, b1)
        _gather_range(z, y, m, nprime, q, a_lo, a_hi, lo, hi, k0, k1, c1, c2, c3)


def srht_gather(z, d, m, a_lo, a_hi, seed, stream, step, tensor):
    """``y[j] = z[r_j] * a_j`` for ``j < m``, zeros after; float32 ``(d,)``."""
    y = np.zeros(d, dtype=np.float32)
    if m:
        nprime = np.uint64(z.shape[0])
        args = (z, y, np.uint64(m), nprime, np.uint64(z.shape[0] // m), np.float32(a_lo), np.float32(a_hi))
        run(m, _gather_range, _gather_par, *args, 0, -(-m // 4), *_words(seed, stream, step, tensor))
    return y


@njit(cache=True)
def _scatter_range(y, v, m, nprime, q, a_lo, a_hi, b0, b1, k0, k1, c1, c2, c3):
    lo = 4 * b0
    ys = y[lo : 4 * b1]
    for jb in range(b1 - b0):
        w = philox10(np.uint64(b0 + jb), c1, c2, c3, k0, k1)
        for k in range(4):
            j = 4 * jb + k
            if lo + j < m:
                pos, size = _position(lo + j, nprime, m, w[k])
                a = a_hi if size > q else a_lo
                v[pos] = ys[j] * a


@njit(cache=True, parallel=True)
def _scatter_par(y, v, m, nprime, q, a_lo, a_hi, b0, b1, k0, k1, c1, c2, c3):
    for c in prange(chunk_count(b1 - b0, CHUNK_BLOCKS)):
        lo, hi = chunk_range(c, CHUNK_BLOCKS, b0, b1)
        _scatter_range(y, v, m, nprime, q, a_lo, a_hi, lo, hi, k0, k1, c1, c2, c3)


def srht_scatter(y, nprime, m, a_lo, a_hi, seed, stream, step, tensor):
    """``v[r_j] = y[j] * a_j`` for ``j < m``, ``+0.0`` elsewhere; float32 ``(nprime,)``."""
    v = np.zeros(nprime, dtype=np.float32)
    if m:
        args = (y, v, np.uint64(m), np.uint64(nprime), np.uint64(nprime // m), np.float32(a_lo), np.float32(a_hi))
        run(m, _scatter_range, _scatter_par, *args, 0, -(-m // 4), *_words(seed, stream, step, tensor))
    return v


# --- masked |x| sum ----------------------------------------------------------------------


@njit(cache=True)
def _above_block(x, lo, hi, t):
    """Lane ``l`` adds ``|x_i|`` (or ``+0.0``) for ``i = lo + 32 r + l``, rows in order; then the lane fold."""
    lanes = np.zeros(LANES, dtype=np.float64)
    block = x[lo:hi]
    rows = block.shape[0] // LANES
    count = 0
    for r in range(rows):
        for j in range(LANES):
            a = abs(block[r * LANES + j])
            keep = a > t
            lanes[j] += np.float64(a) if keep else 0.0
            count += np.int64(keep)
    for j in range(block.shape[0] - rows * LANES):
        a = abs(block[rows * LANES + j])
        keep = a > t
        lanes[j] += np.float64(a) if keep else 0.0
        count += np.int64(keep)
    return fold_lanes(lanes), count


@njit(cache=True)
def _above_serial(x, t, sums, counts):
    n = x.shape[0]
    for k in range(sums.shape[0]):
        sums[k], counts[k] = _above_block(x, k * BLOCK, min(n, (k + 1) * BLOCK), t)


@njit(cache=True, parallel=True)
def _above_par(x, t, sums, counts):
    n = x.shape[0]
    for k in prange(sums.shape[0]):
        sums[k], counts[k] = _above_block(x, k * BLOCK, min(n, (k + 1) * BLOCK), t)


def abs_sum_above(x: np.ndarray, threshold: float) -> tuple[float, int]:
    """Spec'd f64 sum of ``|x_i|`` over ``|x_i| > t`` (f32 ``t``) and their count."""
    nblocks = -(-x.shape[0] // BLOCK)
    sums = np.empty(nblocks, dtype=np.float64)
    counts = np.zeros(nblocks, dtype=np.int64)
    run(x.shape[0], _above_serial, _above_par, x, np.float32(threshold), sums, counts)
    return float(fold_pairwise(sums)), int(counts.sum())


# --- accumulation -----------------------------------------------------------------------


@njit(cache=True, inline="always")
def _stoch_trit(v, w, inv):
    """``sign(v) * [f64(w) < f64(f32(|v| * inv)) * 2**32]`` as int8."""
    keep = np.float64(w) < np.float64(abs(v) * inv) * _TWO32
    return np.int8(keep) * (np.int8(v > 0) - np.int8(v < 0))


@njit(cache=True)
def _add_stoch_range(counts, g, inv, b0, b1, k0, k1, c1, c2, c3):
    """Whole Philox blocks ``b0..b1-1`` (elements ``4*b0 .. 4*b1-1``, all present).

    A tile of words goes to an L1-resident scratch, then one elementwise loop
    adds the trits: the rounds vectorize across blocks, the decisions across elements.
    """
    pairs = np.empty(2 * TILE_BLOCKS, dtype=np.uint64)
    words = pairs.view(np.uint32)
    for t0 in range(b0, b1, TILE_BLOCKS):
        m = min(TILE_BLOCKS, b1 - t0)
        pairs_blocks(pairs[: 2 * m], t0, k0, k1, c1, c2, c3)
        cs, gs = counts[4 * t0 : 4 * (t0 + m)], g[4 * t0 : 4 * (t0 + m)]
        for i in range(4 * m):
            cs[i] += _stoch_trit(gs[i], words[i], inv)


@njit(cache=True)
def _add_stoch_tail(counts, g, inv, k0, k1, c1, c2, c3):
    """The last ``n % 4`` elements (block ``n // 4``)."""
    n = g.shape[0]
    b = n // 4
    w = philox10(np.uint64(b), c1, c2, c3, k0, k1)
    for k in range(n - 4 * b):
        counts[4 * b + k] += _stoch_trit(g[4 * b + k], w[k], inv)


@njit(cache=True, parallel=True)
def _add_stoch_par(counts, g, inv, b0, b1, k0, k1, c1, c2, c3):
    for c in prange(chunk_count(b1 - b0, CHUNK_BLOCKS)):
        lo, hi = chunk_range(c, CHUNK_BLOCKS, b0, b1)
        _add_stoch_range(counts, g, inv, lo, hi, k0, k1, c1, c2, c3)


def accum_add_stochastic(counts, g, inv_scale, seed, stream, step, tensor):
    """``counts += sign(g) * [w < f32(|g| * inv) * 2**32]``; in place, returns ``counts``."""
    n = g.shape[0]
    full = n // 4
    w = _words(seed, stream, step, tensor)
    inv = np.float32(inv_scale)
    run(n, _add_stoch_range, _add_stoch_par, counts, g, inv, 0, full, *w)
    if n % 4:
        _add_stoch_tail(counts, g, inv, *w)
    return counts


@njit(cache=True)
def _add_thr_range(counts, g, t, lo, hi):
    cs, gs = counts[lo:hi], g[lo:hi]
    for i in range(hi - lo):
        v = gs[i]
        cs[i] += np.int8(v > t) - np.int8(v < -t)


@njit(cache=True, parallel=True)
def _add_thr_par(counts, g, t, start, stop):
    for c in prange(chunk_count(stop - start, CHUNK)):
        lo, hi = chunk_range(c, CHUNK, start, stop)
        _add_thr_range(counts, g, t, lo, hi)


def accum_add_threshold(counts, g, threshold):
    """``counts += [g > t] - [g < -t]`` (f32 ``t``); in place."""
    run(g.shape[0], _add_thr_range, _add_thr_par, counts, g, np.float32(threshold), 0, g.shape[0])
    return counts


@njit(cache=True, inline="always")
def _halve(c8, w, shift, mask, up):
    """``(c >> s) + [w < (c & (2**s - 1)) << (32 - s)]`` on int64, back to int8."""
    c = np.int64(c8)
    return np.int8((c >> shift) + np.int64(np.int64(w) < ((c & mask) << up)))


@njit(cache=True)
def _rescale_range(counts, shift, b0, b1, k0, k1, c1, c2, c3):
    """Whole Philox blocks ``b0..b1-1`` of ``counts``."""
    cs = counts[4 * b0 : 4 * b1]
    mask = (np.int64(1) << shift) - 1
    up = 32 - shift
    for jb in range(b1 - b0):
        w0, w1, w2, w3 = philox10(np.uint64(b0 + jb), c1, c2, c3, k0, k1)
        i = 4 * jb
        cs[i] = _halve(cs[i], w0, shift, mask, up)
        cs[i + 1] = _halve(cs[i + 1], w1, shift, mask, up)
        cs[i + 2] = _halve(cs[i + 2], w2, shift, mask, up)
        cs[i + 3] = _halve(cs[i + 3], w3, shift, mask, up)


@njit(cache=True)
def _rescale_tail(counts, shift, k0, k1, c1, c2, c3):
    n = counts.shape[0]
    b = n // 4
    mask = (np.int64(1) << shift) - 1
    w = philox10(np.uint64(b), c1, c2, c3, k0, k1)
    for k in range(n - 4 * b):
        counts[4 * b + k] = _halve(counts[4 * b + k], w[k], shift, mask, 32 - shift)


@njit(cache=True, parallel=True)
def _rescale_par(counts, shift, b0, b1, k0, k1, c1, c2, c3):
    for c in prange(chunk_count(b1 - b0, CHUNK_BLOCKS)):
        lo, hi = chunk_range(c, CHUNK_BLOCKS, b0, b1)
        _rescale_range(counts, shift, lo, hi, k0, k1, c1, c2, c3)


def accum_rescale(counts, shift, seed, stream, step, tensor):
    """Unbiased ``c / 2**shift`` by stochastic rounding on 32-bit words; in place."""
    n = counts.shape[0]
    full = n // 4
    w = _words(seed, stream, step, tensor)
    run(n, _rescale_range, _rescale_par, counts, np.int64(shift), 0, full, *w)
    if n % 4:
        _rescale_tail(counts, np.int64(shift), *w)
    return counts


@njit(cache=True)
def _abs_max_range(counts, lo, hi):
    """``max |c_i|`` over ``lo <= i < hi`` in int64 (an exact, order-free integer maximum)."""
    m = np.int64(0)
    for i in range(lo, hi):
        c = np.int64(counts[i])
        m = max(m, -c if c < 0 else c)
    return m


@njit(cache=True, parallel=True)
def _abs_max_par(counts, start, stop):
    k = chunk_count(stop - start, CHUNK)
    part = np.zeros(k, dtype=np.int64)
    for c in prange(k):
        lo, hi = chunk_range(c, CHUNK, start, stop)
        part[c] = _abs_max_range(counts, lo, hi)
    m = np.int64(0)
    for c in range(k):
        m = max(m, part[c])
    return m


def count_abs_max(counts):
    """``max |c_i|`` of int8 counts as an exact integer (``|-128| = 128``); 0 when there are none."""
    if counts.dtype != np.int8:
        raise DTypeError(f"counts: expected int8 counts, got dtype {counts.dtype}")
    return int(run(counts.shape[0], _abs_max_range, _abs_max_par, counts, 0, counts.shape[0]))


@njit(cache=True)
def _mean_range(counts, out, unit, divisor, lo, hi):
    cs, os = counts[lo:hi], out[lo:hi]
    for i in range(hi - lo):
        os[i] = np.float32((np.float64(cs[i]) * unit) / divisor)


@njit(cache=True, parallel=True)
def _mean_par(counts, out, unit, divisor, start, stop):
    for c in prange(chunk_count(stop - start, CHUNK)):
        lo, hi = chunk_range(c, CHUNK, start, stop)
        _mean_range(counts, out, unit, divisor, lo, hi)


def accum_mean(counts, unit, divisor):
    """``f32((f64(c) * unit) / divisor)`` for each count."""
    out = np.empty(counts.shape[0], dtype=np.float32)
    run(counts.shape[0], _mean_range, _mean_par, counts, out, float(unit), float(divisor), 0, counts.shape[0])
    return out


@njit(cache=True)
def _npack_range(c, out, lo, hi):
    n = c.shape[0]
    for j in range(lo, hi):
        a = np.uint8(c[2 * j] & 0xF)
        b = np.uint8(c[2 * j + 1] & 0xF) if 2 * j + 1 < n else np.uint8(0)
        out[j] = a | (b << np.uint8(4))


@njit(cache=True, parallel=True)
def _npack_par(c, out, start, stop):
    for k in prange(chunk_count(stop - start, CHUNK)):
        lo, hi = chunk_range(k, CHUNK, start, stop)
        _npack_range(c, out, lo, hi)


def nibble_pack(counts):
    """Counts in ``[-8, 7]`` as 4-bit two's complement, two a byte (low nibble first); pad 0."""
    out = np.empty((counts.shape[0] + 1) // 2, dtype=np.uint8)
    run(counts.shape[0], _npack_range, _npack_par, counts, out, 0, out.shape[0])
    return out


@njit(cache=True)
def _nunpack_range(p, out, lo, hi):
    n = out.shape[0]
    for j in range(lo, hi):
        b = np.int16(p[j])
        a = b & 0xF
        out[2 * j] = np.int8(a - 16 if a >= 8 else a)
        if 2 * j + 1 < n:
            h = b >> 4
            out[2 * j + 1] = np.int8(h - 16 if h >= 8 else h)


@njit(cache=True, parallel=True)
def _nunpack_par(p, out, start, stop):
    for k in prange(chunk_count(stop - start, CHUNK)):
        lo, hi = chunk_range(k, CHUNK, start, stop)
        _nunpack_range(p, out, lo, hi)


def nibble_unpack(packed, n):
    """Inverse of :func:`nibble_pack`: ``n`` int8 counts."""
    out = np.empty(n, dtype=np.int8)
    nbytes = min(packed.shape[0], (n + 1) // 2)  # bytes past the n counts are ignored, as in the reference
    run(n, _nunpack_range, _nunpack_par, packed, out, 0, nbytes)
    return out


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
