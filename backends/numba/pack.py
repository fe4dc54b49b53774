"""Trit packing in numba: 2-bit (4 trits a byte) and base-3 (5 trits a byte).

Contiguous int8 trits and uint8 bytes go through word kernels: eight trits
(or eight packed bytes) are one uint64, handled with branch-free SWAR
arithmetic that LLVM vectorizes (the byte kernels below widened every byte to
a 64-bit lane).  Views are made by the wrappers, never inside a kernel.  What
the word kernels leave over (fewer than one word, a partial last byte) and
non-contiguous or other-dtype input go through the byte kernels, which are the
reference-shaped definition: the wrappers pass the partial last byte through
them with zero padding and check that pad positions decode to code 0.  The
unpacking word kernels give the byte kernels' bytes for any input; the
packing ones compute codes for trits only, so a chunk that holds another
value runs again through the byte kernel (its bytes, its flag).  Words are
read in little-endian order (every host numba runs on).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._config import use_parallel
from ._dispatch import chunk_count, chunk_range

#: Bytes handled by one parallel task of the byte kernels.
CHUNK = 1 << 18
#: uint64 words handled by one parallel task of the word kernels.
WORD_CHUNK = 1 << 14

U = np.uint64
# Byte-replicated masks of the SWAR arithmetic (one byte lane per trit).
B01, B02, B7F = U(0x0101010101010101), U(0x0202020202020202), U(0x7F7F7F7F7F7F7F7F)
B80, BFC = U(0x8080808080808080), U(0xFCFCFCFCFCFCFCFC)
# 16-bit lanes of the base-3 digit arithmetic.
L16, L8, M7F = U(0x0000FFFF0000FFFF), U(0x00FF00FF00FF00FF), U(0x007F007F007F007F)
# Bit fields of the 2-bit layout.
F8, F4, F2 = U(0x000000FF000000FF), U(0x000F000F000F000F), U(0x0303030303030303)
#: Codes at bits 0, 8, 16, 24 of a half word go to bits 24, 26, 28, 30 (and 56..62 for the high half).
SPREAD = U(1 << 24 | 1 << 18 | 1 << 12 | 1 << 6)
LOW8, HIGH8, ODD2 = U(0xFF), U(0xFF00), U(0x5555)
#: ``sum_k c_k 3**k`` lands in byte 4 of ``X * POW3`` for the codes ``c_0..c_4`` held in bytes 0..4 of ``X``.
POW3 = U(81 + 27 * 256 + 9 * 256**2 + 3 * 256**3 + 256**4)
DIV3, THREE, B0D = U(171), U(3), U(0x0D0D0D0D0D0D0D0D)
S1, S6, S8, S9, S12 = U(1), U(6), U(8), U(9), U(12)
S16, S24, S32, S40, S48, S56 = U(16), U(24), U(32), U(40), U(48), U(56)


# --- byte kernels: the definition ------------------------------------------------


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


# --- word kernels: eight trits (or eight packed bytes) a uint64 -------------------


@njit(cache=True, inline="always")
def codes8(x):
    """:func:`code` of each byte of ``x`` that is a trit: bit 1 is bit 1 of -1 (0xFF), bit 0 is set for +1 only."""
    return (x & B02) | (x & ~(x >> S1) & B01)


@njit(cache=True, inline="always")
def not_trits8(x):
    """Nonzero where a byte of ``x`` is not -1, 0 or +1: bits 1..7 differ, or they are all set and bit 0 is not."""
    return ((x ^ (x << S1)) & BFC) | ((x >> S1) & ~x & B01)


@njit(cache=True, inline="always")
def trits8(c):
    """:func:`trit` of each byte of ``c`` holding a code 0..3, as bytes."""
    return (((c & B01) | B80) - ((c >> S1) & B01)) ^ B80


@njit(cache=True)
def pack2_swar(w, out16):
    """Trit words ``w`` (eight int8 trits each) to two packed bytes each (uint16 ``out16``); nonzero if a byte was no trit.

    The four 2-bit codes of each half word meet in its top byte when the half is
    multiplied by ``SPREAD`` (distinct bit positions: no carries).
    """
    bad = U(0)
    for j in range(out16.shape[0]):
        x = w[j]
        bad |= not_trits8(x)
        p = codes8(x) * SPREAD
        out16[j] = ((p >> S24) & LOW8) | ((p >> S48) & HIGH8)
    return bad != 0


@njit(cache=True)
def pack2_words(t, w, out, out16):
    """:func:`pack2_swar`; on a value that is no trit the byte kernel redoes these bytes (its bytes, its flag)."""
    if pack2_swar(w, out16):
        pack2(t, out)
        return True
    return False


@njit(cache=True)
def unpack2_words(p16, out):
    """Two packed bytes each (uint16 ``p16``) to eight int8 trits each (uint64 ``out``); nonzero on a code 3."""
    bad = U(0)
    for j in range(out.shape[0]):
        x = U(p16[j])
        bad |= x & (x >> S1) & ODD2
        a = (x | (x << S24)) & F8  # spread the eight 2-bit codes to one a byte
        a = (a | (a << S12)) & F4
        a = (a | (a << S6)) & F2
        out[j] = trits8(a)
    return bad != 0


@njit(cache=True, inline="always")
def base3(x, shift):
    """:func:`pack3` of the five codes in bytes 0..4 of ``x`` (higher bytes ignored), moved to byte ``shift // 8``."""
    p = x * POW3  # the packed byte is byte 4 of the product
    return ((p >> (S32 - shift)) if shift <= S32 else (p << (shift - S32))) & (LOW8 << shift)


@njit(cache=True)
def pack3_swar(w, out):
    """Five trit words (40 trits) to one word of eight base-3 bytes; nonzero if a byte was no trit."""
    bad = U(0)
    for j in range(out.shape[0]):
        w0, w1, w2, w3, w4 = w[5 * j], w[5 * j + 1], w[5 * j + 2], w[5 * j + 3], w[5 * j + 4]
        bad |= not_trits8(w0) | not_trits8(w1) | not_trits8(w2) | not_trits8(w3) | not_trits8(w4)
        c0, c1, c2, c3, c4 = codes8(w0), codes8(w1), codes8(w2), codes8(w3), codes8(w4)
        out[j] = (base3(c0, U(0)) | base3((c0 >> S40) | (c1 << S24), S8) | base3(c1 >> S16, S16)
                  | base3((c1 >> S56) | (c2 << S8), S24) | base3((c2 >> S32) | (c3 << S32), S32)
                  | base3(c3 >> S8, S40) | base3((c3 >> S48) | (c4 << S16), S48) | base3(c4 >> S24, S56))
    return bad != 0


@njit(cache=True, inline="always")
def div3(q):
    """``q // 3`` in each 16-bit lane holding a value below 256."""
    return ((q * DIV3) >> S9) & M7F


@njit(cache=True, inline="always")
def digits4(x):
    """Trits of the four packed bytes in the low half of ``x``, per 16-bit lane: (t0 | t1 << 8, t2 | t3 << 8, t4)."""
    v = (x | (x << S16)) & L16
    v = (v | (v << S8)) & L8
    q1 = div3(v)
    q2 = div3(q1)
    q3 = div3(q2)
    q4 = div3(q3)
    a = trits8((v - THREE * q1) | ((q1 - THREE * q2) << S8))
    b = trits8((q2 - THREE * q3) | ((q3 - THREE * q4) << S8))
    return a, b, trits8(q4)


@njit(cache=True)
def unpack3_swar(p, out):
    """One word of eight base-3 bytes to five trit words (40 trits); nonzero if a byte was above 242."""
    bad = U(0)
    for j in range(p.shape[0]):
        x = p[j]
        bad |= x & ((x & B7F) + B0D) & B80  # a byte of at least 243: bit 7 set and low seven bits + 13 >= 128
        a, b, c = digits4(x & U(0xFFFFFFFF))
        e, f, g = digits4(x >> S32)
        # byte 5m + k of the output is trit k of packed byte m: a/b hold two trits a lane, c one
        out[5 * j] = ((a & U(0xFFFF)) | ((b & U(0xFFFF)) << S16) | ((c & U(0xFF)) << S32)
                      | ((a & U(0xFFFF0000)) << S24) | ((b & U(0xFF0000)) << S40))
        out[5 * j + 1] = (((b & U(0xFF000000)) >> S24) | ((c & U(0xFF0000)) >> S8) | ((a & U(0xFFFF00000000)) >> S16)
                          | (b & U(0xFFFF00000000)) | ((c & U(0xFF00000000)) << S16) | ((a & U(0xFF000000000000)) << S8))
        out[5 * j + 2] = (((a & U(0xFF00000000000000)) >> S56) | ((b & U(0xFFFF000000000000)) >> S40)
                          | ((c & U(0xFF000000000000)) >> S24) | ((e & U(0xFFFF)) << S32) | ((f & U(0xFFFF)) << S48))
        out[5 * j + 3] = ((g & U(0xFF)) | ((e & U(0xFFFF0000)) >> S8) | ((f & U(0xFFFF0000)) << S8)
                          | ((g & U(0xFF0000)) << S24) | ((e & U(0xFFFF00000000)) << S16))
        out[5 * j + 4] = (((f & U(0xFFFF00000000)) >> S32) | ((g & U(0xFF00000000)) >> S16) | ((e & U(0xFFFF000000000000)) >> S24)
                          | ((f & U(0xFFFF000000000000)) >> S8) | ((g & U(0xFF000000000000)) << S8))
    return bad != 0


@njit(cache=True)
def pack3_words(t, w, out, out64):
    """:func:`pack3_swar`; on an invalid trit the byte kernel redoes these bytes (its bytes, its flag)."""
    if pack3_swar(w, out64):
        pack3(t, out)
        return True
    return False


@njit(cache=True, parallel=True)
def pack2_words_parallel(t, w, out, out16, units):
    """:func:`pack2_words` over chunks of words, in parallel; nonzero if a chunk held a value that is no trit."""
    flags = np.zeros(chunk_count(units, WORD_CHUNK) + 1, dtype=np.uint8)
    for c in prange(chunk_count(units, WORD_CHUNK)):
        lo, hi = chunk_range(c, WORD_CHUNK, 0, units)
        flags[c] = pack2_words(t[8 * lo : 8 * hi], w[lo:hi], out[2 * lo : 2 * hi], out16[lo:hi])
    return flags.max()


@njit(cache=True, parallel=True)
def unpack2_words_parallel(p16, out, units):
    """:func:`unpack2_words` over chunks of words, in parallel; nonzero on a code 3."""
    flags = np.zeros(chunk_count(units, WORD_CHUNK) + 1, dtype=np.uint8)
    for c in prange(chunk_count(units, WORD_CHUNK)):
        lo, hi = chunk_range(c, WORD_CHUNK, 0, units)
        flags[c] = unpack2_words(p16[lo:hi], out[lo:hi])
    return flags.max()


@njit(cache=True, parallel=True)
def pack3_words_parallel(t, w, out, out64, units):
    """:func:`pack3_words` over chunks of words, in parallel; nonzero if a chunk held a value that is no trit."""
    flags = np.zeros(chunk_count(units, WORD_CHUNK) + 1, dtype=np.uint8)
    for c in prange(chunk_count(units, WORD_CHUNK)):
        lo, hi = chunk_range(c, WORD_CHUNK, 0, units)
        flags[c] = pack3_words(t[40 * lo : 40 * hi], w[5 * lo : 5 * hi], out[8 * lo : 8 * hi], out64[lo:hi])
    return flags.max()


@njit(cache=True, parallel=True)
def unpack3_words_parallel(p, out, units):
    """:func:`unpack3_swar` over chunks of words, in parallel; nonzero on a byte above 242."""
    flags = np.zeros(chunk_count(units, WORD_CHUNK) + 1, dtype=np.uint8)
    for c in prange(chunk_count(units, WORD_CHUNK)):
        lo, hi = chunk_range(c, WORD_CHUNK, 0, units)
        flags[c] = unpack3_swar(p[lo:hi], out[5 * lo : 5 * hi])
    return flags.max()


# --- wrappers ------------------------------------------------------------------------


def _words(a: np.ndarray, dtype: type) -> bool:
    """Whether ``a`` can be seen as uint64 words: contiguous and of ``dtype``."""
    return a.dtype == dtype and a.flags.c_contiguous


def _run(kernel, parallel, src, out, units: int, src_per: int, out_per: int, n: int) -> bool:
    """Run ``kernel`` over ``units`` whole bytes (``parallel`` for large inputs); True if it flagged bad input."""
    if units == 0:
        return False
    if use_parallel(n):
        return bool(parallel(src, out, units))
    return bool(kernel(src[: units * src_per], out[: units * out_per]))


def _pack_into(kernel, parallel, trits: np.ndarray, out: np.ndarray, per: int) -> bool:
    """Byte kernels over ``trits`` into ``out`` (the partial last byte zero-padded); True if a value was no trit."""
    n = trits.shape[0]
    full, rest = divmod(n, per)
    bad = _run(kernel, parallel, trits, out, full, per, 1, n)
    if rest:
        pad = np.zeros(per, dtype=np.int8)
        pad[:rest] = trits[full * per :]
        bad |= bool(kernel(pad, out[full:]))
    return bad


def _unpack_into(kernel, parallel, packed: np.ndarray, out: np.ndarray, per: int) -> bool:
    """Byte kernels over ``packed`` into the ``out.shape[0]`` trits of ``out``; True on an invalid code or pad."""
    n = out.shape[0]
    full, rest = divmod(n, per)
    bad = _run(kernel, parallel, packed, out, full, 1, per, n)
    if rest:
        tail = np.empty(per, dtype=np.int8)
        bad |= bool(kernel(packed[full:], tail))
        out[full * per :] = tail[:rest]
        bad |= bool(tail[rest:].any())
    return bad


def pack_2bit(trits: np.ndarray) -> tuple[np.ndarray, bool]:
    """Four trits a byte, trit ``i`` at bits ``2*(i % 4)``; also whether every input was a trit."""
    n = trits.shape[0]
    out = np.empty(-(-n // 4), dtype=np.uint8)
    m = n // 8 if _words(trits, np.int8) else 0  # words of eight trits -> two bytes
    bad = False
    if m:
        args = (trits[: 8 * m], trits[: 8 * m].view(np.uint64), out[: 2 * m], out[: 2 * m].view(np.uint16))
        bad = bool(pack2_words_parallel(*args, m) if use_parallel(n) else pack2_words(*args))
    bad |= _pack_into(pack2, pack2_parallel, trits[8 * m :], out[2 * m :], 4)
    return out, not bad


def unpack_2bit(packed: np.ndarray, n: int, out: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Inverse of :func:`pack_2bit` (into ``out`` when given); also whether every code and pad was valid."""
    out = np.empty(n, dtype=np.int8) if out is None else out
    m = n // 8 if _words(packed, np.uint8) else 0  # two bytes -> a word of eight trits
    bad = False
    if m:
        p16, words = packed[: 2 * m].view(np.uint16), out[: 8 * m].view(np.uint64)
        bad = bool(unpack2_words_parallel(p16, words, m) if use_parallel(n) else unpack2_words(p16, words))
    bad |= _unpack_into(unpack2, unpack2_parallel, packed[2 * m :], out[8 * m :], 4)
    return out, not bad


def pack_base3(trits: np.ndarray) -> tuple[np.ndarray, bool]:
    """Five trits a byte, ``sum (t_k mod 3) 3**k``; also whether every input was a trit."""
    n = trits.shape[0]
    out = np.empty(-(-n // 5), dtype=np.uint8)
    m = n // 40 if _words(trits, np.int8) else 0  # five words of trits -> a word of eight bytes
    bad = False
    if m:
        args = (trits[: 40 * m], trits[: 40 * m].view(np.uint64), out[: 8 * m], out[: 8 * m].view(np.uint64))
        bad = bool(pack3_words_parallel(*args, m) if use_parallel(n) else pack3_words(*args))
    bad |= _pack_into(pack3, pack3_parallel, trits[40 * m :], out[8 * m :], 5)
    return out, not bad


def unpack_base3(packed: np.ndarray, n: int, out: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Inverse of :func:`pack_base3` (into ``out`` when given); also whether every byte and pad was valid."""
    out = np.empty(n, dtype=np.int8) if out is None else out
    m = n // 40 if _words(packed, np.uint8) else 0  # a word of eight bytes -> five words of trits
    bad = False
    if m:
        p64, words = packed[: 8 * m].view(np.uint64), out[: 40 * m].view(np.uint64)
        bad = bool(unpack3_words_parallel(p64, words, m) if use_parallel(n) else unpack3_swar(p64, words))
    bad |= _unpack_into(unpack3, unpack3_parallel, packed[8 * m :], out[40 * m :], 5)
    return out, not bad


KERNELS = {"pack_2bit": pack_2bit, "unpack_2bit": unpack_2bit, "pack_base3": pack_base3, "unpack_base3": unpack_base3}
