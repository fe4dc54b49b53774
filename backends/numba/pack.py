"""Trit packing in numba: 2-bit (4 trits a byte) and base-3 (5 trits a byte).

Kernels work on whole bytes of slices they are given; the wrappers pass the
partial last byte through the same kernel with zero padding and check that
pad positions decode to code 0.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._config import use_parallel
from ._dispatch import chunk_count, chunk_range

#: Bytes handled by one parallel task.
CHUNK = 1 << 18


@njit(cache=True, inline="always")
def code(t):
    """``t mod 3`` of a trit: 0 -> 0, +1 -> 1, -1 -> 2."""
    return np.uint8((t & 3) - ((t >> 7) & 1))


@njit(cache=True, inline="always")
def not_trit(t):
    return np.uint8(np.uint8(t + 1) > 2)


@njit(cache=True, inline="always")
def trit(c):
    """Trit of a code: 0 -> 0, 1 -> +1, 2 -> -1 (3 is flagged by the caller)."""
    return np.int8(c & 1) - np.int8(c >> 1)


@njit(cache=True)
def pack2(t, out):
    bad = np.uint8(0)
    for j in range(out.shape[0]):
        a, b, c, d = t[4 * j], t[4 * j + 1], t[4 * j + 2], t[4 * j + 3]
        bad |= not_trit(a) | not_trit(b) | not_trit(c) | not_trit(d)
        out[j] = code(a) | (code(b) << 2) | (code(c) << 4) | (code(d) << 6)
    return bad


@njit(cache=True)
def unpack2(p, out):
    bad = np.uint8(0)
    for j in range(p.shape[0]):
        v = p[j]
        bad |= np.uint8((v & (v >> 1) & 0x55) != 0)
        for k in range(4):
            out[4 * j + k] = trit((v >> (2 * k)) & 3)
    return bad


@njit(cache=True)
def pack3(t, out):
    bad = np.uint8(0)
    for j in range(out.shape[0]):
        v = np.uint8(0)
        for k in range(4, -1, -1):  # Horner form of sum_k code(t_k) 3**k
            bad |= not_trit(t[5 * j + k])
            v = v * np.uint8(3) + code(t[5 * j + k])
        out[j] = v
    return bad


@njit(cache=True)
def unpack3(p, out):
    bad = np.uint8(0)
    for j in range(p.shape[0]):
        v = p[j]
        bad |= np.uint8(v > 242)
        for k in range(5):
            out[5 * j + k] = trit(v % 3)
            v //= 3
    return bad


@njit(cache=True, parallel=True)
def pack2_parallel(src, out, units):
    flags = np.zeros(chunk_count(units, CHUNK) + 1, dtype=np.uint8)
    for c in prange(chunk_count(units, CHUNK)):
        lo, hi = chunk_range(c, CHUNK, 0, units)
        flags[c] = pack2(src[4 * lo : 4 * hi], out[lo:hi])
    return flags.max()


@njit(cache=True, parallel=True)
def unpack2_parallel(src, out, units):
    flags = np.zeros(chunk_count(units, CHUNK) + 1, dtype=np.uint8)
    for c in prange(chunk_count(units, CHUNK)):
        lo, hi = chunk_range(c, CHUNK, 0, units)
        flags[c] = unpack2(src[lo:hi], out[4 * lo : 4 * hi])
    return flags.max()


@njit(cache=True, parallel=True)
def pack3_parallel(src, out, units):
    flags = np.zeros(chunk_count(units, CHUNK) + 1, dtype=np.uint8)
    for c in prange(chunk_count(units, CHUNK)):
        lo, hi = chunk_range(c, CHUNK, 0, units)
        flags[c] = pack3(src[5 * lo : 5 * hi], out[lo:hi])
    return flags.max()


@njit(cache=True, parallel=True)
def unpack3_parallel(src, out, units):
    flags = np.zeros(chunk_count(units, CHUNK) + 1, dtype=np.uint8)
    for c in prange(chunk_count(units, CHUNK)):
        lo, hi = chunk_range(c, CHUNK, 0, units)
        flags[c] = unpack3(src[lo:hi], out[5 * lo : 5 * hi])
    return flags.max()


def _run(kernel, parallel, src, out, units: int, src_per: int, out_per: int, n: int) -> bool:
    """Run ``kernel`` over ``units`` whole bytes (``parallel`` for large inputs); True if it flagged bad input."""
    if units == 0:
        return False
    if use_parallel(n):
        return bool(parallel(src, out, units))
    return bool(kernel(src[: units * src_per], out[: units * out_per]))


def _pack(kernel, parallel, trits: np.ndarray, per: int) -> tuple[np.ndarray, bool]:
    n = trits.shape[0]
    full, rest = divmod(n, per)
    out = np.empty(full + (rest > 0), dtype=np.uint8)
    bad = _run(kernel, parallel, trits, out, full, per, 1, n)
    if rest:
        pad = np.zeros(per, dtype=np.int8)
        pad[:rest] = trits[full * per :]
        bad |= bool(kernel(pad, out[full:]))
    return out, not bad


def _unpack(kernel, parallel, packed: np.ndarray, n: int, per: int) -> tuple[np.ndarray, bool]:
    full, rest = divmod(n, per)
    out = np.empty(n, dtype=np.int8)
    bad = _run(kernel, parallel, packed, out, full, 1, per, n)
    if rest:
        tail = np.empty(per, dtype=np.int8)
        bad |= bool(kernel(packed[full:], tail))
        out[full * per :] = tail[:rest]
        bad |= bool(tail[rest:].any())
    return out, not bad


def pack_2bit(trits: np.ndarray) -> tuple[np.ndarray, bool]:
    """Four trits a byte, trit ``i`` at bits ``2*(i % 4)``; also whether every input was a trit."""
    return _pack(pack2, pack2_parallel, trits, 4)


def unpack_2bit(packed: np.ndarray, n: int) -> tuple[np.ndarray, bool]:
    """Inverse of :func:`pack_2bit`; also whether every code and pad was valid."""
    return _unpack(unpack2, unpack2_parallel, packed, n, 4)


def pack_base3(trits: np.ndarray) -> tuple[np.ndarray, bool]:
    """Five trits a byte, ``sum (t_k mod 3) 3**k``; also whether every input was a trit."""
    return _pack(pack3, pack3_parallel, trits, 5)


def unpack_base3(packed: np.ndarray, n: int) -> tuple[np.ndarray, bool]:
    """Inverse of :func:`pack_base3`; also whether every byte and pad was valid."""
    return _unpack(unpack3, unpack3_parallel, packed, n, 5)


KERNELS = {"pack_2bit": pack_2bit, "unpack_2bit": unpack_2bit, "pack_base3": pack_base3, "unpack_base3": unpack_base3}
