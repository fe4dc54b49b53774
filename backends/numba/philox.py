"""Philox4x32 in numba: the block function and the spec's per-element words."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._config import use_parallel
from ._dispatch import chunk_count, chunk_range, run

# Random123 constants: round multipliers and the Weyl key increments.
M0 = np.uint64(0xD2511F53)
M1 = np.uint64(0xCD9E8D57)
W0 = np.uint64(0x9E3779B9)
W1 = np.uint64(0xBB67AE85)
LO32 = np.uint64(0xFFFFFFFF)
S32 = np.uint64(32)
#: Blocks of four elements handled by one parallel task.
CHUNK_BLOCKS = 1 << 16


@njit(cache=True, inline="always")
def philox_round(c0, c1, c2, c3, k0, k1):
    """One Philox round on uint64-held 32-bit words; returns the new counter words."""
    p0 = M0 * c0
    p1 = M1 * c2
    return (p1 >> S32) ^ c1 ^ k0, p1 & LO32, (p0 >> S32) ^ c3 ^ k1, p0 & LO32


@njit(cache=True, inline="always")
def philox10(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of one counter (all words uint64 holding 32-bit values)."""
    for r in range(10):
        if r:
            k0 = (k0 + W0) & LO32
            k1 = (k1 + W1) & LO32
        c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    return c0, c1, c2, c3


@njit(cache=True)
def philox4x32(counter, key, rounds):
    """Philox4x32-``rounds`` of uint32 ``(n, 4)`` counters under uint32 ``(n, 2)`` keys."""
    n = counter.shape[0]
    out = np.empty((n, 4), dtype=np.uint32)
    for i in range(n):
        c0, c1 = np.uint64(counter[i, 0]), np.uint64(counter[i, 1])
        c2, c3 = np.uint64(counter[i, 2]), np.uint64(counter[i, 3])
        k0, k1 = np.uint64(key[i, 0]), np.uint64(key[i, 1])
        for r in range(rounds):
            if r:
                k0 = (k0 + W0) & LO32
                k1 = (k1 + W1) & LO32
            c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = c0, c1, c2, c3
    return out


def key_words(seed: int) -> tuple[np.uint64, np.uint64]:
    """The Philox key words of a 64-bit seed."""
    return np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32)


def counter_words(stream: int, step: int, tensor: int) -> tuple[np.uint64, np.uint64, np.uint64]:
    """Counter words 1..3 of the spec's layout: ``(tensor, step, stream)``."""
    return np.uint64(tensor), np.uint64(step), np.uint64(stream)


def by_blocks(serial, parallel, src, out, n, seed, stream, step, tensor, *extra):
    """Run a block kernel over the whole blocks of ``n`` elements, then the partial last block.

    ``serial(src, out, b0, *extra, k0, k1, c1, c2, c3)`` handles whole blocks of
    the slices it is given, starting at block ``b0``; the last ``n % 4``
    elements go through it padded with zeros, so no kernel has a tail branch.
    """
    words = key_words(seed) + counter_words(stream, step, tensor)
    full = n // 4
    if use_parallel(n):
        parallel(src, out, full, *extra, *words)
    elif full:
        serial(src[: 4 * full], out[: 4 * full], 0, *extra, *words)
    rest = n - 4 * full
    if rest:
        pad_src = np.zeros(4, dtype=src.dtype)
        pad_src[:rest] = src[4 * full :]
        pad_out = np.empty(4, dtype=out.dtype)
        serial(pad_src, pad_out, full, *extra, *words)
        out[4 * full :] = pad_out[:rest]
    return out


@njit(cache=True, inline="always")
def philox10_pairs(c0, c1, c2, c3, k0, k1):
    """:func:`philox10` (inputs below 2**32) as two uint64: ``w0 | w1 << 32`` and ``w2 | w3 << 32``.

    The last round rotates each product by 32 bits instead of splitting it:
    ``rot(p1) ^ (c1 ^ k0)`` holds ``hi(p1) ^ c1 ^ k0`` in its low and ``lo(p1)``
    in its high half, which is words 0 and 1 of a uint32 array seen as uint64
    (numba's hosts are little-endian).
    """
    for r in range(9):
        if r:
            k0 = (k0 + W0) & LO32
            k1 = (k1 + W1) & LO32
        c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + W0) & LO32
    k1 = (k1 + W1) & LO32
    p0 = M0 * c0
    p1 = M1 * c2
    return ((p1 << S32) | (p1 >> S32)) ^ (c1 ^ k0), ((p0 << S32) | (p0 >> S32)) ^ (c3 ^ k1)


@njit(cache=True)
def pairs_blocks(pairs, b0, k0, k1, c1, c2, c3):
    """Words of blocks ``b0, b0 + 1, ...`` as :func:`philox10_pairs`, two uint64 a block, for all of ``pairs``.

    Counter and key words are taken mod 2**32 (the spec's uint32 words), so
    every product is 32 x 32 -> 64 bits and LLVM vectorizes the rounds with
    ``vpmuludq`` across blocks.
    """
    k0, k1, c1, c2, c3 = k0 & LO32, k1 & LO32, c1 & LO32, c2 & LO32, c3 & LO32
    first = np.uint64(b0)
    for j in range(pairs.shape[0] // 2):
        a, b = philox10_pairs((first + np.uint64(j)) & LO32, c1, c2, c3, k0, k1)
        pairs[2 * j] = a
        pairs[2 * j + 1] = b


@njit(cache=True, parallel=True)
def pairs_parallel(pairs, b0, k0, k1, c1, c2, c3):
    """:func:`pairs_blocks` over chunks of blocks, in parallel (independent outputs)."""
    nblocks = pairs.shape[0] // 2
    for c in prange(chunk_count(nblocks, CHUNK_BLOCKS)):
        lo, hi = chunk_range(c, CHUNK_BLOCKS, 0, nblocks)
        pairs_blocks(pairs[2 * lo : 2 * hi], b0 + lo, k0, k1, c1, c2, c3)


def philox_bits(n: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
    """Word ``i % 4`` of block ``(i // 4, tensor, step, stream)`` for each ``i < n``."""
    out = np.empty(n, dtype=np.uint32)
    words = key_words(seed) + counter_words(stream, step, tensor)
    full = n // 4
    if full:  # whole blocks straight into the output, seen as two uint64 a block
        run(n, pairs_blocks, pairs_parallel, out[: 4 * full].view(np.uint64), 0, *words)
    if n > 4 * full:
        last = np.empty(2, dtype=np.uint64)
        pairs_blocks(last, full, *words)
        out[4 * full :] = last.view(np.uint32)[: n - 4 * full]
    return out


@njit(cache=True)
def to_uniform(bits):
    """``(w >> 8) * 2**-24`` as float32 for each word."""
    out = np.empty(bits.shape[0], dtype=np.float32)
    for i in range(bits.shape[0]):
        out[i] = np.float32(bits[i] >> np.uint32(8)) * np.float32(5.9604644775390625e-08)
    return out


def uniform_f32(n: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
    """Top 24 bits of each element's word times 2**-24, as float32."""
    return to_uniform(philox_bits(n, seed, stream, step, tensor))


KERNELS = {"philox4x32": philox4x32, "philox_bits": philox_bits, "uniform_f32": uniform_f32}
