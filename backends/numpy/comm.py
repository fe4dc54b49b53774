"""Kernels of the ternary DDP comm hook (reference, ``spec/comm.md``): encode, shard sums, decode.

Chunk ``c`` of an ``n``-element bucket is ``[c * chunk, min((c + 1) * chunk, n))``;
its trits use the Philox draw ``(seed, stream, step, base | c)``, element ``i -
start of chunk``.  A chunk is non-finite when its scale bits are at least
``0x7F800000``.  Each function below writes the spec's arithmetic for the
whole bucket with the reference kernels it is made of.
"""

from __future__ import annotations

import numpy as np

from .accum import accum_mean, nibble_pack, nibble_unpack
from .pack import pack_2bit
from .philox import philox_bits
from .ternary import quantize_stochastic

#: Sign-cleared float32 bits of +Inf: scale bits at or above it mark a non-finite chunk.
INF_BITS = 0x7F800000
_ABS_MASK = np.uint32(0x7FFFFFFF)
#: Trit of each 2-bit code (code 3, never produced, reads as -1).
_TRIT = np.array([0, 1, -1, -1], dtype=np.int8)


def _bounds(n: int, chunk: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)]


def _scale(bits: int) -> np.float32:
    return np.array([bits], dtype=np.uint32).view(np.float32)[0]


def comm_scale_bits(x: np.ndarray, residual: np.ndarray | None, chunk: int) -> np.ndarray:
    """Per chunk, the largest ``bits(v_i) & 0x7FFFFFFF`` of ``v = f32(x + residual)`` (``v = x`` without a residual); int32 ``(K,)``."""
    v = x if residual is None else x + residual
    words = v.view(np.uint32) & _ABS_MASK
    return np.array([int(words[lo:hi].max()) for lo, hi in _bounds(v.shape[0], chunk)], dtype=np.int32)


def comm_encode(
    x: np.ndarray, residual: np.ndarray | None, bits: np.ndarray | None, chunk: int, nbytes: int,
    seed: int, stream: int, step: int, base: int, feedback: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Trits of ``v = f32(x + residual)`` against per-chunk scales, packed 2-bit, and the error-feedback residual.

    ``bits`` None: each chunk's scale is its own :func:`comm_scale_bits`.  A
    finite chunk's trits are ``quantize_stochastic(v, s_c)`` under the draw
    ``(seed, stream, step, base | c)``; a non-finite chunk's are 0.  The trits,
    zero-padded to ``4 * nbytes``, are packed four a byte.  With ``feedback``
    the new residual is ``f32(v - f32(t) * s_c)`` with non-finite entries +0.0,
    written into ``residual`` when one is given.

    Returns
    -------
    packed : uint8 ``(nbytes,)``
    bits : int32 ``(K,)``, the scales used
    residual : float32 ``(n,)`` or None (without ``feedback``)
    """
    v = x if residual is None else x + residual
    n = v.shape[0]
    if bits is None:
        bits = comm_scale_bits(v, None, chunk)
    trits = np.zeros(4 * nbytes, dtype=np.int8)
    scaled = np.empty(n, dtype=np.float32)
    for c, (lo, hi) in enumerate(_bounds(n, chunk)):
        if int(bits[c]) < INF_BITS:
            s = _scale(int(bits[c]))
            trits[lo:hi] = quantize_stochastic(v[lo:hi], float(s), seed, stream, step, base | c)
        else:
            s = np.float32(np.nan)  # 0 * NaN: the chunk's residual is non-finite, hence +0.0
        scaled[lo:hi] = trits[lo:hi].astype(np.float32) * s
    packed, _ = pack_2bit(trits)
    if not feedback:
        return packed, bits, None
    with np.errstate(invalid="ignore"):
        new = v - scaled
    new[~np.isfinite(new)] = 0.0
    if residual is None:
        return packed, bits, new
    residual[...] = new
    return packed, bits, residual


def comm_decode_trits(payloads: np.ndarray, offset: int, scales: np.ndarray, chunk: int, out: np.ndarray) -> bool:
    """The all-gather mean into float32 ``out`` (``n``): ``acc = f32(t_0) * s_0[c]``, ``acc = f32(acc + f32(t_r) * s_r[c])``, ``f32(acc / W)``.

    ``payloads`` is uint8 ``(W, L)``; rank ``r``'s trits are ``payloads[r,
    offset : offset + ceil(n / 4)]``, its scales ``scales[r]`` (float32 ``(K,)``).
    No division when ``W == 1``.  Returns whether every code was valid (not 3)
    and every pad code after the ``n`` trits was 0.
    """
    world = payloads.shape[0]
    n = out.shape[0]
    nb = -(-n // 4)
    codes = (payloads[:, offset : offset + nb, None] >> np.array([0, 2, 4, 6], dtype=np.uint8)) & np.uint8(3)
    codes = codes.reshape(world, 4 * nb)
    ok = bool(np.all(codes[:, :n] != 3) and np.all(codes[:, n:] == 0))
    trits = _TRIT[codes[:, :n]].astype(np.float32)
    chunk_of = np.arange(n) // chunk
    with np.errstate(invalid="ignore"):
        acc = trits[0] * scales[0, chunk_of]
        for r in range(1, world):
            acc = acc + trits[r] * scales[r, chunk_of]
        if world > 1:
            acc = acc / np.float32(world)
    out[...] = acc
    return ok


def comm_reduce_shard(received: np.ndarray, world: int, shift: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
    """Exact sums of ``W`` packed trit shards, rounded by ``2**shift`` and nibble-packed.

    ``received`` is uint8 ``(W * q,)``: shard ``r`` is bytes ``[r q, (r + 1) q)``
    (``m = 4 q`` trits).  ``C[i] = sum_r t_r[i]``; ``shift > 0``: ``C' = (C >> shift) +
    [w_i < (C mod 2**shift) << (32 - shift)]`` with ``w_i`` the Philox word of
    element ``i`` under ``(seed, stream, step, tensor)``; returns ``nibble_pack(C')``
    (uint8 ``(2 q,)``).  Code 3 reads as -1.
    """
    codes = (received[:, None] >> np.array([0, 2, 4, 6], dtype=np.uint8)) & np.uint8(3)
    trits = _TRIT[codes.reshape(-1)].reshape(world, -1)
    sums = trits.astype(np.int64).sum(axis=0)
    if shift:
        w = philox_bits(sums.shape[0], seed, stream, step, tensor).astype(np.int64)
        sums = (sums >> shift) + (w < ((sums & ((1 << shift) - 1)) << (32 - shift)))
    return nibble_pack(sums.astype(np.int8))


def comm_decode_nibbles(gathered: np.ndarray, bits: np.ndarray, chunk: int, world: int, shift: int, out: np.ndarray) -> np.ndarray:
    """The reduce-scatter mean into float32 ``out`` (``n``): ``f32((f64(C'[i]) * (f64(s_c) * 2**shift)) / f64(W))``.

    ``C'`` are the first ``n`` nibbles of ``gathered`` (sign-extended); chunks
    whose scale bits are non-finite are NaN.  Returns ``out``.
    """
    n = out.shape[0]
    counts = nibble_unpack(gathered[: (n + 1) // 2], n)
    for c, (lo, hi) in enumerate(_bounds(n, chunk)):
        if int(bits[c]) >= INF_BITS:
            out[lo:hi] = np.float32(np.nan)
        else:
            out[lo:hi] = accum_mean(counts[lo:hi], float(_scale(int(bits[c]))) * 2.0**shift, float(world))
    return out


KERNELS = {
    "comm_scale_bits": comm_scale_bits,
    "comm_encode": comm_encode,
    "comm_decode_trits": comm_decode_trits,
    "comm_reduce_shard": comm_reduce_shard,
    "comm_decode_nibbles": comm_decode_nibbles,
}
