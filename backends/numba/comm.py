"""Kernels of the ternary DDP comm hook in numba (``spec/comm.md``): one pass per chunk.

Same arithmetic as the numpy reference.  The encoder handles a chunk while it
is cache-resident: ``v = x + residual``, the scale (a max over the
sign-cleared bits), then tiles of :data:`TILE` elements: the Philox words, the
stochastic trits with their residual, the 2-bit codes.  The decoders turn
codes and nibbles into floats with the spec's products (a trit read from a
constant table times the scale) or through per-chunk tables whose entries are
the spec's quotients, so every element gets the same bits as the reference.
Buckets of at least ``PARALLEL_MIN`` elements run ``prange`` over chunks
(independent outputs).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._config import use_parallel
from ._dispatch import chunk_count, chunk_range
from .philox import key_words, philox10

ABS_MASK = np.uint32(0x7FFFFFFF)
INF_BITS = np.uint32(0x7F800000)
INV24 = np.float32(5.9604644775390625e-08)  # 2**-24
U8 = np.uint32(8)
CODE_ZERO, CODE_POS, CODE_NEG = np.uint8(0), np.uint8(1), np.uint8(2)
#: Elements per tile of the encoder (its Philox words and codes stay in L1).
TILE = 2048
#: Bytes of received shards summed by one parallel task.
SHARD_CHUNK = 1 << 16
_NO_FLOATS = np.zeros(0, dtype=np.float32)


def _trit_table() -> np.ndarray:
    """``[b]``: the trits of the four 2-bit codes of byte ``b`` as four int8 (one uint32; code 3 reads as -1, as in the reference)."""
    codes = (np.arange(256)[:, None] >> (2 * np.arange(4))) & 3
    trits = np.array([0, 1, -1, -1], dtype=np.int8)[codes]
    return np.ascontiguousarray(trits).view(np.uint32).reshape(256)


TRITS4 = _trit_table()


# --- scales and encoder -------------------------------------------------------------


@njit(cache=True)
def max_bits(words):
    """Largest ``w & 0x7FFFFFFF`` of uint32 ``words`` (0 when empty)."""
    m = np.uint32(0)
    for i in range(words.shape[0]):
        m = max(m, words[i] & ABS_MASK)
    return m


@njit(cache=True)
def add_to(x, r, out):
    """``out[i] = f32(x[i] + r[i])``."""
    for i in range(x.shape[0]):
        out[i] = x[i] + r[i]


@njit(cache=True)
def tile_words(words, b0, tensor, step, stream, k0, k1):
    """Philox words of blocks ``b0, b0 + 1, ...``: word ``q`` of block ``b0 + j`` at ``words[4 j + q]``."""
    for j in range(words.shape[0] // 4):
        w0, w1, w2, w3 = philox10(np.uint64(b0 + j), tensor, step, stream, k0, k1)
        words[4 * j] = w0
        words[4 * j + 1] = w1
        words[4 * j + 2] = w2
        words[4 * j + 3] = w3


@njit(cache=True)
def tile_codes(v, words, s, codes):
    """2-bit codes of the trits ``sign(v) [u < f32(|v| / s)]``, ``u = f32(w >> 8) * 2**-24``, for ``s > 0``.

    A kept element is nonzero (``u >= 0``), so its trit is -1 (code 2) or +1 (code 1).
    """
    for i in range(v.shape[0]):
        a = v[i]
        keep = np.float32(words[i] >> U8) * INV24 < abs(a) / s
        codes[i] = (CODE_NEG if a < 0 else CODE_POS) if keep else CODE_ZERO


@njit(cache=True)
def tile_codes_fb(v, words, s, codes, res):
    """:func:`tile_codes` and the residual ``res[i] = f32(v[i] - f32(t_i) * s)``: ``v -+ s`` where kept, ``v - 0`` elsewhere."""
    ns = np.float32(-1) * s
    zero = np.float32(0) * s
    for i in range(v.shape[0]):
        a = v[i]
        keep = np.float32(words[i] >> U8) * INV24 < abs(a) / s
        neg = a < 0
        codes[i] = (CODE_NEG if neg else CODE_POS) if keep else CODE_ZERO
        res[i] = (a - (ns if neg else s)) if keep else (a - zero)


@njit(cache=True)
def pack_codes(codes, out):
    """Four codes a byte, code ``i`` at bits ``2 (i % 4)``."""
    for j in range(out.shape[0]):
        out[j] = codes[4 * j] | (codes[4 * j + 1] << 2) | (codes[4 * j + 2] << 4) | (codes[4 * j + 3] << 6)


@njit(cache=True)
def codes_any(xs, rs, add, keep, lo, first, packed, s, k0, k1, tensor, step, stream):
    """Trits of chunk elements ``first, first + 1, ...`` (``v = xs (+ rs)``; the chunk starts at bucket element ``lo``), OR-ed into zeroed ``packed``."""
    m = xs.shape[0]
    for j in range(first // 4, (m + 3) // 4):
        w = philox10(np.uint64(j), tensor, step, stream, k0, k1)
        for q in range(4):
            e = 4 * j + q
            if e >= first and e < m:
                a = xs[e] + rs[e] if add else xs[e]
                t = np.int8(np.float32(w[q] >> np.uint64(8)) * INV24 < abs(a) / s) * (np.int8(a > 0) - np.int8(a < 0))
                i = lo + e
                packed[i >> 2] |= np.uint8((t & 3) - ((t >> 7) & 1)) << np.uint8(2 * (i & 3))
                if keep:
                    rs[e] = a - np.float32(t) * s


@njit(cache=True)
def sum_bits(xs, rs, vbuf, vbits):
    """Largest sign-cleared bits of ``f32(xs + rs)``, a tile at a time through ``vbuf`` (``vbits`` its uint32 view)."""
    m = np.uint32(0)
    for o in range(0, xs.shape[0], TILE):
        size = min(TILE, xs.shape[0] - o)
        add_to(xs[o : o + size], rs[o : o + size], vbuf)
        m = max(m, max_bits(vbits[:size]))
    return m


@njit(cache=True)
def scale_bits_chunk(x, xw, r, has_r, c, chunk, vbuf, vbits):
    """The largest sign-cleared bits of ``v = x (+ r)`` over chunk ``c``."""
    lo, hi = chunk_range(c, chunk, 0, x.shape[0])
    return np.int32(sum_bits(x[lo:hi], r[lo:hi], vbuf, vbits) if has_r else max_bits(xw[lo:hi]))


@njit(cache=True)
def scale_bits_serial(x, xw, r, has_r, chunk, out, vbuf, vbits):
    """Per-chunk maxima of the sign-cleared bits of ``v = x (+ r)`` into int32 ``out``."""
    for c in range(out.shape[0]):
        out[c] = scale_bits_chunk(x, xw, r, has_r, c, chunk, vbuf, vbits)


@njit(cache=True, parallel=True)
def scale_bits_parallel(x, xw, r, has_r, chunk, out, vbufs, vbits):
    """:func:`scale_bits_chunk` over chunks in parallel; row ``c`` of ``vbufs`` (``vbits`` its uint32 view) serves chunk ``c``."""
    for c in prange(out.shape[0]):
        out[c] = scale_bits_chunk(x, xw, r, has_r, c, chunk, vbufs[c], vbits[c])


@njit(cache=True)
def encode_chunk(x, xw, r, add, keep, bits, local, c, chunk, packed, sb, sf, k0, k1, base, step, stream, words, codes, vbuf, vbits):
    """Chunk ``c``: the scale of ``v = x (+ r)`` (when ``local``), its codes into zeroed ``packed``, its residual (into ``r``).

    ``sb`` / ``sf`` are one uint32 array and its float32 view: ``sf[c]`` is the
    scale whose bits ``sb[c]`` hold.  ``words``, ``codes`` and ``vbuf`` (with
    its uint32 view ``vbits``) are scratch tiles; ``v`` is built a tile at a
    time, so the residual is never read through the array it is written to.
    """
    n = x.shape[0]
    lo, hi = chunk_range(c, chunk, 0, n)
    xs = x[lo:hi]
    rs = r[lo:hi] if (add or keep) else xs
    if local:
        bits[c] = np.int32(sum_bits(xs, rs, vbuf, vbits) if add else max_bits(xw[lo:hi]))
    sb[c] = np.uint32(bits[c])
    if sb[c] >= INF_BITS:
        if keep:
            rs[:] = 0.0  # v - 0 * NaN is NaN: +0.0
        return
    s = sf[c]
    if s == 0:
        if keep:  # every trit 0: no draw
            for i in range(xs.shape[0]):
                a = xs[i] + rs[i] if add else xs[i]
                rs[i] = a - np.float32(0) * s
        return
    tensor = np.uint64(base | c)
    done = 0
    if (lo & 3) == 0:
        whole = xs.shape[0] // 4 * 4
        p = packed[lo >> 2 :]
        while done < whole:
            size = min(TILE, whole - done)
            tw, tc = words[:size], codes[:size]
            tile_words(tw, done // 4, tensor, step, stream, k0, k1)
            if add:
                add_to(xs[done : done + size], rs[done : done + size], vbuf)
                v = vbuf[:size]
            else:
                v = xs[done : done + size]
            if keep:
                tile_codes_fb(v, tw, s, tc, rs[done : done + size])
            else:
                tile_codes(v, tw, s, tc)
            pack_codes(tc, p[done // 4 : (done + size) // 4])
            done += size
    codes_any(xs, rs, add, keep, lo, done, packed, s, k0, k1, tensor, step, stream)


@njit(cache=True)
def encode_serial(x, xw, r, add, keep, bits, local, chunk, packed, sb, sf, k0, k1, base, step, stream, vbuf, vbits):
    """:func:`encode_chunk` for every chunk, in order (``vbuf``: a float32 tile, ``vbits`` its uint32 view)."""
    words = np.empty(TILE, dtype=np.uint32)
    codes = np.empty(TILE, dtype=np.uint8)
    for c in range(bits.shape[0]):
        encode_chunk(x, xw, r, add, keep, bits, local, c, chunk, packed, sb, sf, k0, k1, base, step, stream, words, codes,
                     vbuf, vbits)


@njit(cache=True, parallel=True)
def encode_parallel(x, xw, r, add, keep, bits, local, chunk, packed, sb, sf, k0, k1, base, step, stream, vbufs, vbits):
    """:func:`encode_chunk` over chunks in parallel (``chunk % 4 == 0``: no byte holds codes of two chunks); row ``c`` of ``vbufs`` serves chunk ``c``."""
    for c in prange(bits.shape[0]):
        words = np.empty(TILE, dtype=np.uint32)
        codes = np.empty(TILE, dtype=np.uint8)
        encode_chunk(x, xw, r, add, keep, bits, local, c, chunk, packed, sb, sf, k0, k1, base, step, stream, words, codes,
                     vbufs[c], vbits[c])


def comm_scale_bits(x: np.ndarray, residual: np.ndarray | None, chunk: int) -> np.ndarray:
    """Per chunk, the largest ``bits(v_i) & 0x7FFFFFFF`` of ``v = f32(x + residual)`` (``v = x`` without a residual); int32 ``(K,)``."""
    n = x.shape[0]
    out = np.zeros(-(-n // chunk), dtype=np.int32)
    has_r = residual is not None
    r = residual if has_r else _NO_FLOATS
    if use_parallel(n):
        vbufs = np.empty((out.shape[0], TILE), dtype=np.float32)
        scale_bits_parallel(x, x.view(np.uint32), r, has_r, chunk, out, vbufs, vbufs.view(np.uint32))
    else:
        vbuf = np.empty(TILE, dtype=np.float32)
        scale_bits_serial(x, x.view(np.uint32), r, has_r, chunk, out, vbuf, vbuf.view(np.uint32))
    return out


def comm_encode(
    x: np.ndarray, residual: np.ndarray | None, bits: np.ndarray | None, chunk: int, nbytes: int,
    seed: int, stream: int, step: int, base: int, feedback: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Trits of ``v = f32(x + residual)`` against per-chunk scales, packed 2-bit, and the error-feedback residual.

    ``bits`` None: each chunk's scale is its own maximum, found in the same
    pass.  With ``feedback`` the new residual is written into ``residual``
    (a new array when there is none).  Returns ``(packed, bits, residual)``.
    """
    n = x.shape[0]
    k = -(-n // chunk)
    local = bits is None
    bits = np.zeros(k, dtype=np.int32) if local else np.ascontiguousarray(bits, dtype=np.int32)
    packed = np.zeros(nbytes, dtype=np.uint8)
    add = residual is not None
    r = residual if add else (np.empty(n, dtype=np.float32) if feedback else _NO_FLOATS)
    sb = np.empty(k, dtype=np.uint32)
    k0, k1 = key_words(seed)
    words = (k0, k1, np.uint64(base), np.uint64(step), np.uint64(stream))
    if use_parallel(n) and chunk % 4 == 0:
        vbufs = np.empty((k, TILE), dtype=np.float32)
        encode_parallel(x, x.view(np.uint32), r, add, feedback, bits, local, chunk, packed, sb, sb.view(np.float32), *words,
                        vbufs, vbufs.view(np.uint32))
    else:
        vbuf = np.empty(TILE, dtype=np.float32)
        encode_serial(x, x.view(np.uint32), r, add, feedback, bits, local, chunk, packed, sb, sb.view(np.float32), *words,
                      vbuf, vbuf.view(np.uint32))
    return packed, bits, (r if feedback else None)


# --- all-gather decode --------------------------------------------------------------


@njit(cache=True)
def bad_codes(row):
    """Nonzero when a byte of ``row`` holds a code 3."""
    bad = np.uint8(0)
    for j in range(row.shape[0]):
        b = row[j]
        bad |= b & (b >> np.uint8(1)) & np.uint8(0x55)
    return bad


@njit(cache=True)
def expand(row, t32, table):
    """The four trits of each code byte as int8 (``t32``: a uint32 view of the trits, ``table``: :data:`TRITS4`)."""
    for j in range(row.shape[0]):
        t32[j] = table[row[j]]


@njit(cache=True)
def first_rank(t, o, s):
    """``o[i] = f32(t[i]) * s``."""
    for i in range(o.shape[0]):
        o[i] = np.float32(t[i]) * s


@njit(cache=True)
def add_rank(t, o, s):
    """``o[i] = f32(o[i] + f32(t[i]) * s)``."""
    for i in range(o.shape[0]):
        o[i] = o[i] + np.float32(t[i]) * s


@njit(cache=True)
def pair_ranks(ta, tb, o, s0, s1, w):
    """Two ranks: ``o[i] = f32(f32(f32(ta[i]) * s0 + f32(tb[i]) * s1) / w)``."""
    for i in range(o.shape[0]):
        o[i] = (np.float32(ta[i]) * s0 + np.float32(tb[i]) * s1) / w


@njit(cache=True)
def divide(o, w):
    """``o[i] = f32(o[i] / w)``."""
    for i in range(o.shape[0]):
        o[i] = o[i] / w


@njit(cache=True)
def decode_trits_chunk(payloads, offset, scales, c, chunk, out, ta, ta32, tb, tb32, table):
    """Chunk ``c`` of the all-gather mean into ``out``, a tile of codes at a time; returns nonzero if a code 3 was read."""
    world = payloads.shape[0]
    n = out.shape[0]
    lo, hi = chunk_range(c, chunk, 0, n)
    bad = np.uint8(0)
    whole = (hi - lo) // 4 if (lo & 3) == 0 else 0  # code bytes of this chunk alone
    p = offset + (lo >> 2)
    w = np.float32(world)
    for r in range(world):
        bad |= bad_codes(payloads[r, p : p + whole])
    for j0 in range(0, whole, TILE // 4):
        j1 = min(whole, j0 + TILE // 4)
        m = j1 - j0
        o = out[lo + 4 * j0 : lo + 4 * j1]
        expand(payloads[0, p + j0 : p + j1], ta32[:m], table)
        if world == 2:
            expand(payloads[1, p + j0 : p + j1], tb32[:m], table)
            pair_ranks(ta[: 4 * m], tb[: 4 * m], o, scales[0, c], scales[1, c], w)
            continue
        first_rank(ta[: 4 * m], o, scales[0, c])
        for r in range(1, world):
            expand(payloads[r, p + j0 : p + j1], ta32[:m], table)
            add_rank(ta[: 4 * m], o, scales[r, c])
        if world > 1:
            divide(o, w)
    for i in range(lo + 4 * whole, hi):
        acc = np.float32(0)
        for r in range(world):
            b = payloads[r, offset + (i >> 2)]
            cd = (b >> np.uint8(2 * (i & 3))) & np.uint8(3)
            bad |= cd & (cd >> np.uint8(1))
            v = np.float32(np.int32(cd == 1) - np.int32(cd >> 1)) * scales[r, c]  # code 3 reads as -1
            acc = v if r == 0 else acc + v
        out[i] = acc / w if world > 1 else acc
    return bad


@njit(cache=True)
def decode_trits_serial(payloads, offset, scales, chunk, out, flags, table):
    """:func:`decode_trits_chunk` for every chunk, in order."""
    ta = np.empty(TILE, dtype=np.int8)
    tb = np.empty(TILE, dtype=np.int8)
    ta32, tb32 = ta.view(np.uint32), tb.view(np.uint32)
    for c in range(flags.shape[0]):
        flags[c] = decode_trits_chunk(payloads, offset, scales, c, chunk, out, ta, ta32, tb, tb32, table)


@njit(cache=True, parallel=True)
def decode_trits_parallel(payloads, offset, scales, chunk, out, flags, table, tas, ta32s, tbs, tb32s):
    """:func:`decode_trits_chunk` over chunks in parallel (each writes its own elements); row ``c`` of the tiles serves chunk ``c``."""
    for c in prange(flags.shape[0]):
        flags[c] = decode_trits_chunk(payloads, offset, scales, c, chunk, out, tas[c], ta32s[c], tbs[c], tb32s[c], table)


def comm_decode_trits(payloads: np.ndarray, offset: int, scales: np.ndarray, chunk: int, out: np.ndarray) -> bool:
    """The all-gather mean into float32 ``out``: ``acc = f32(t_0) * s_0[c]``, ``acc = f32(acc + f32(t_r) * s_r[c])``, ``f32(acc / W)``.

    Returns whether every code was valid and every pad code after the ``n`` trits 0.
    """
    n = out.shape[0]
    k = -(-n // chunk)
    flags = np.zeros(k, dtype=np.uint8)
    scales = np.ascontiguousarray(scales, dtype=np.float32)
    if use_parallel(n * payloads.shape[0]):
        tiles = np.empty((2, k, TILE), dtype=np.int8)
        views = tiles.view(np.uint32)
        decode_trits_parallel(payloads, offset, scales, chunk, out, flags, TRITS4, tiles[0], views[0], tiles[1], views[1])
    else:
        decode_trits_serial(payloads, offset, scales, chunk, out, flags, TRITS4)
    ok = not flags.any()
    if n % 4:  # pad codes of the last byte of each rank
        last = payloads[:, offset + n // 4].astype(np.int32)
        ok = ok and not np.any(last >> (2 * (n % 4)))
    return ok


# --- reduce-scatter: shard sums and decode ------------------------------------------


@njit(cache=True)
def add_trits(t, sums):
    """``sums[i] += t[i]`` (int8 trits into int16 sums)."""
    for i in range(sums.shape[0]):
        sums[i] += np.int16(t[i])


@njit(cache=True)
def round_sums(sums, shift, b0, k0, k1, tensor, step, stream):
    """``C = (C >> shift) + [w < (C mod 2**shift) << (32 - shift)]``, ``w`` word ``i % 4`` of draw block ``b0 + i // 4``."""
    mask = (np.int64(1) << shift) - 1
    for j in range(sums.shape[0] // 4):
        w = philox10(np.uint64(b0 + j), tensor, step, stream, k0, k1)
        for q in range(4):
            c = np.int64(sums[4 * j + q])
            sums[4 * j + q] = np.int16((c >> shift) + np.int64(np.int64(w[q]) < ((c & mask) << (32 - shift))))


@njit(cache=True)
def pack_nibbles(sums, out):
    """``out[j] = (C[2 j] & 15) | (C[2 j + 1] & 15) << 4``."""
    for j in range(out.shape[0]):
        out[j] = np.uint8(sums[2 * j] & 15) | np.uint8((sums[2 * j + 1] & 15) << 4)


@njit(cache=True)
def shard_sums(received, q, world, shift, lo, hi, out, table, t, t32, sums, k0, k1, tensor, step, stream):
    """Code bytes ``[lo, hi)`` of the ``world`` shards, a tile at a time: trits expanded, summed exactly, rounded, nibble-packed."""
    for j0 in range(lo, hi, TILE // 4):
        j1 = min(hi, j0 + TILE // 4)
        m = j1 - j0
        st = sums[: 4 * m]
        st[:] = 0
        for r in range(world):
            expand(received[r * q + j0 : r * q + j1], t32[:m], table)
            add_trits(t[: 4 * m], st)
        if shift:
            round_sums(st, shift, j0, k0, k1, tensor, step, stream)
        pack_nibbles(st, out[2 * j0 : 2 * j1])


@njit(cache=True)
def shard_sums_serial(received, q, world, shift, out, table, k0, k1, tensor, step, stream):
    """:func:`shard_sums` over every byte of the shards."""
    t = np.empty(TILE, dtype=np.int8)
    sums = np.empty(TILE, dtype=np.int16)
    shard_sums(received, q, world, shift, 0, q, out, table, t, t.view(np.uint32), sums, k0, k1, tensor, step, stream)


@njit(cache=True, parallel=True)
def shard_sums_parallel(received, q, world, shift, out, table, ts, t32s, sums, k0, k1, tensor, step, stream):
    """:func:`shard_sums` over ranges of bytes in parallel; row ``c`` of the tiles serves range ``c``."""
    for c in prange(chunk_count(q, SHARD_CHUNK)):
        lo, hi = chunk_range(c, SHARD_CHUNK, 0, q)
        shard_sums(received, q, world, shift, lo, hi, out, table, ts[c], t32s[c], sums[c], k0, k1, tensor, step, stream)


def comm_reduce_shard(received: np.ndarray, world: int, shift: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
    """Exact sums of ``W`` packed trit shards, rounded by ``2**shift`` (Philox draw ``(seed, stream, step, tensor)``), nibble-packed."""
    q = received.shape[0] // world
    out = np.empty(2 * q, dtype=np.uint8)
    k0, k1 = key_words(seed)
    words = (k0, k1, np.uint64(tensor), np.uint64(step), np.uint64(stream))
    if use_parallel(4 * received.shape[0]):
        tasks = chunk_count(q, SHARD_CHUNK)
        t = np.empty((tasks, TILE), dtype=np.int8)
        shard_sums_parallel(received, q, world, shift, out, TRITS4, t, t.view(np.uint32), np.empty((tasks, TILE), dtype=np.int16), *words)
    else:
        shard_sums_serial(received, q, world, shift, out, TRITS4, *words)
    return out


@njit(cache=True)
def nibble_pairs(g, o64, pairs):
    """``o64[j] = pairs[g[j]]``: both float32 values of a nibble byte in one 8-byte store."""
    for j in range(g.shape[0]):
        o64[j] = pairs[g[j]]


@njit(cache=True)
def decode_nibbles_chunk(gathered, bits, c, chunk, world, unit_scale, out, out64, tab, pairs, pairs32):
    """Chunk ``c`` of the reduce-scatter mean into ``out``.

    ``tab[nibble]`` holds the 16 quotients of the chunk and ``pairs`` (with its
    float32 view ``pairs32``) the two of each byte; ``out64`` is a uint64 view
    of ``out`` (empty when ``out`` is not 8-byte aligned).
    """
    n = out.shape[0]
    lo, hi = chunk_range(c, chunk, 0, n)
    if np.uint32(bits[c]) >= INF_BITS:
        for i in range(lo, hi):
            out[i] = np.float32(np.nan)
        return
    for k in range(16):
        tab[k] = np.float32((np.float64(k - 16 if k >= 8 else k) * unit_scale[c]) / np.float64(world))
    first = lo
    if lo & 1:
        out[lo] = tab[gathered[lo >> 1] >> 4]
        first = lo + 1
    half = (hi - first) // 2
    if out64.shape[0] and half:
        for b in range(256):
            pairs32[2 * b] = tab[b & 15]
            pairs32[2 * b + 1] = tab[b >> 4]
        nibble_pairs(gathered[first >> 1 : (first >> 1) + half], out64[first >> 1 : (first >> 1) + half], pairs)
    else:
        for j in range(first >> 1, (first >> 1) + half):
            out[2 * j] = tab[gathered[j] & 15]
            out[2 * j + 1] = tab[gathered[j] >> 4]
    if (hi - first) & 1:
        out[hi - 1] = tab[gathered[(hi - 1) >> 1] & 15]


@njit(cache=True)
def decode_nibbles_serial(gathered, bits, chunk, world, unit_scale, out, out64):
    """:func:`decode_nibbles_chunk` for every chunk, in order."""
    tab = np.empty(16, dtype=np.float32)
    pairs = np.empty(256, dtype=np.uint64)
    pairs32 = pairs.view(np.float32)
    for c in range(bits.shape[0]):
        decode_nibbles_chunk(gathered, bits, c, chunk, world, unit_scale, out, out64, tab, pairs, pairs32)


@njit(cache=True, parallel=True)
def decode_nibbles_parallel(gathered, bits, chunk, world, unit_scale, out, out64, tabs, pairs, pairs32):
    """:func:`decode_nibbles_chunk` over chunks in parallel; row ``c`` of the tables serves chunk ``c``."""
    for c in prange(bits.shape[0]):
        decode_nibbles_chunk(gathered, bits, c, chunk, world, unit_scale, out, out64, tabs[c], pairs[c], pairs32[c])


def comm_decode_nibbles(gathered: np.ndarray, bits: np.ndarray, chunk: int, world: int, shift: int, out: np.ndarray) -> np.ndarray:
    """The reduce-scatter mean into float32 ``out``: ``f32((f64(C'[i]) * (f64(s_c) * 2**shift)) / f64(W))``; non-finite chunks NaN."""
    bits = np.ascontiguousarray(bits, dtype=np.int32)
    with np.errstate(over="ignore", invalid="ignore"):  # entries of non-finite chunks are not used
        unit = bits.view(np.float32).astype(np.float64) * 2.0**shift  # f64(s_c) * 2**shift, exact
    n = out.shape[0]
    aligned = out.ctypes.data % 8 == 0 and out.flags.c_contiguous
    out64 = out[: n - n % 2].view(np.uint64) if aligned else np.zeros(0, dtype=np.uint64)
    if use_parallel(n):
        k = bits.shape[0]
        pairs = np.empty((k, 256), dtype=np.uint64)
        decode_nibbles_parallel(gathered, bits, chunk, world, unit, out, out64, np.empty((k, 16), dtype=np.float32), pairs,
                                pairs.view(np.float32))
    else:
        decode_nibbles_serial(gathered, bits, chunk, world, unit, out, out64)
    return out


KERNELS = {
    "comm_scale_bits": comm_scale_bits,
    "comm_encode": comm_encode,
    "comm_decode_trits": comm_decode_trits,
    "comm_reduce_shard": comm_reduce_shard,
    "comm_decode_nibbles": comm_decode_nibbles,
}
