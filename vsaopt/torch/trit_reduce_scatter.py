"""Array-level steps of the reduce-scatter scheme of :func:`~vsaopt.torch.ternary_comm_hook` (``spec/comm.md``).

The all-gather scheme sends ``(W - 1) * n / 4`` bytes per rank, which grows
with the world size ``W``.  This scheme sends about ``0.75 * (W - 1) / W * n``
bytes, which does not:

1. every rank takes the per-chunk maximum of ``|v|`` as a float32 bit
   pattern (:func:`chunk_scale_bits`); an all-reduce MAX of these int32
   words gives every rank the same scale per chunk (exact, order-free);
2. every rank quantizes ``v`` against the shared scales and packs the trits,
   zero-padded to ``W`` equal shards (:func:`encode`); an all-to-all hands
   shard ``j`` of every rank to rank ``j``;
3. rank ``j`` sums its ``W`` shards exactly (int32), divides the sums by
   ``2**shift`` with unbiased stochastic rounding so that they fit a nibble,
   and packs them four bits each (:func:`reduce_shard`); an all-gather
   gives every rank every shard;
4. every rank decodes ``f32((f64(c) * f64(s * 2**shift)) / f64(W))`` per
   element (:func:`decode`).

Steps 1, 3 and 4 are exact or follow one spec'd order, and every random draw
is a Philox draw keyed by the seed, so every rank (and every backend) ends with
the same bytes.  These functions do no communication; the hook runs the
collectives between them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._bits import F32_INF_BITS, f32_from_bits
from ..rng import Stream

__all__ = [
    "COMM_SUM_STREAM",
    "NIBBLE_MAX",
    "shard_length",
    "sum_shift",
    "chunk_scale_bits",
    "encode",
    "reduce_shard",
    "decode",
    "reduce_scatter_bytes",
    "all_gather_bytes",
]

#: Philox ``stream`` word of the stochastic rounding of shard sums (ASCII "TRSM").
COMM_SUM_STREAM = int(Stream.COMM_SUM)
#: Largest magnitude a rounded shard sum may take (4-bit two's complement holds [-8, 7]).
NIBBLE_MAX = 7


def shard_length(n: int, world: int) -> int:
    """Elements per shard of an ``n``-element bucket: ``ceil(n / W)`` rounded up to a multiple of 4.

    A multiple of 4 keeps the packed trits (four a byte) and the nibbles (two a
    byte) of each shard in whole bytes.  The bucket is zero-padded to ``W`` shards.

    Examples
    --------
    >>> shard_length(10, 2), shard_length(10, 4), shard_length(0, 3)
    (8, 4, 0)
    """
    per = -(-n // world)
    return -(-per // 4) * 4


def sum_shift(world: int) -> int:
    """The smallest ``shift >= 0`` with ``W <= 7 * 2**shift``: sums of ``W`` trits divided by ``2**shift`` fit a nibble.

    Examples
    --------
    >>> [sum_shift(w) for w in (1, 7, 8, 14, 15, 256)]
    [0, 0, 1, 1, 2, 6]
    """
    shift = 0
    while world > NIBBLE_MAX << shift:
        shift += 1
    return shift


def chunk_scale_bits(v: Any, bounds: list[tuple[int, int]], be: Any) -> np.ndarray:
    """Per chunk, the largest sign-cleared float32 bit pattern of ``v`` (int32; NaN and Inf sort above every finite value).

    Examples
    --------
    >>> import numpy as np
    >>> from vsaopt.backend import get_backend
    >>> chunk_scale_bits(np.array([1.0, -2.0, 0.5], np.float32), [(0, 2), (2, 3)], get_backend("numpy")).tolist()
    [1073741824, 1056964608]
    """
    xp = be.xp
    words = v.view(xp.uint32)
    mask = xp.uint32(0x7FFFFFFF)  # integer max of sign-cleared patterns: exact on every backend
    return np.array([int((words[lo:hi] & mask).max()) if hi > lo else 0 for lo, hi in bounds], dtype=np.int32)


def _scales(bits: np.ndarray) -> list[np.float32]:
    return [f32_from_bits(int(b)) for b in bits]


def encode(
    v: Any, bits: np.ndarray, bounds: list[tuple[int, int]], world: int, be: Any, seed: int, stream: int, step: int, base: int
) -> tuple[Any, Any]:
    """Trits of ``v`` against the shared scales, and their 2-bit packing zero-padded to ``W`` shards.

    Chunk ``c`` uses the Philox draws ``(seed, stream, step, base | c)``; a
    chunk whose shared scale is not finite gets zero trits (it decodes to NaN).

    Parameters
    ----------
    v : float32 array, 1-D, ``n`` elements
    bits : int32 array
        The shared scale bit patterns (all-reduce MAX of :func:`chunk_scale_bits`).
    bounds : list of (start, stop)
        The chunks.
    world : int
        Ranks ``W``.
    be : backend
    seed, stream, step, base : int
        Counter words; ``base`` holds the rank and bucket fields of ``tensor_index``.

    Returns
    -------
    trits : int8 array of ``n``
    packed : uint8 array of ``W * shard_length(n, W) / 4``; shard ``j`` is bytes ``[j m / 4, (j + 1) m / 4)``.
    """
    xp = be.xp
    n = v.shape[0]
    padded = xp.zeros(world * shard_length(n, world), dtype=xp.int8)
    for c, ((lo, hi), s) in enumerate(zip(bounds, _scales(bits))):
        if int(bits[c]) < F32_INF_BITS:
            padded[lo:hi] = be.quantize_stochastic(v[lo:hi], s, seed, stream, step, base | c)
    packed, _ = be.pack_2bit(padded)
    return padded[:n], packed


def _rescale(counts: Any, world: int, be: Any, seed: int, step: int, tensor: int) -> Any:
    """Unbiased ``c / 2**sum_shift(W)`` of int32 counts: ``(c >> s) + [w < (c mod 2**s) << (32 - s)]``, as int8."""
    xp = be.xp
    shift = sum_shift(world)
    if shift == 0:
        return counts.astype(xp.int8)
    if world <= 127:  # |sum| <= W fits int8: the accumulator's kernel, same arithmetic
        return be.accum_rescale(counts.astype(xp.int8), shift, seed, COMM_SUM_STREAM, step, tensor)
    w = be.philox_bits(counts.shape[0], seed, COMM_SUM_STREAM, step, tensor)
    low = (counts & ((1 << shift) - 1)).astype(xp.uint32) << xp.uint32(32 - shift)
    return ((counts >> shift) + (w < low)).astype(xp.int8)


def reduce_shard(received: Any, world: int, be: Any, seed: int, step: int, tensor: int) -> Any:
    """Sum the ``W`` packed trit shards an owner received, round the sums to nibbles and pack them.

    Parameters
    ----------
    received : uint8 array of ``W * m / 4`` bytes
        Shard ``j`` of ranks ``0 .. W-1`` in rank order (what an all-to-all delivers).
    world : int
    be : backend
    seed, step, tensor : int
        Counter words of the rounding draws (stream :data:`COMM_SUM_STREAM`);
        element ``i`` of the shard is element ``i`` of the draw.

    Returns
    -------
    uint8 array of ``m / 2`` bytes: :meth:`nibble_pack` of ``round(sum / 2**sum_shift(W))``.

    Examples
    --------
    >>> import numpy as np
    >>> from vsaopt.backend import get_backend
    >>> from vsaopt.ternary import pack
    >>> be = get_backend("numpy")
    >>> shards = np.concatenate([pack(np.array(t, np.int8), backend=be) for t in ([1, -1, 0, 1], [1, 1, 0, -1])])
    >>> reduce_shard(shards, 2, be, seed=0, step=0, tensor=0).tolist()  # sums 2, 0, 0, 0
    [2, 0]
    """
    trits, _ = be.unpack_2bit(received, 4 * received.shape[0])
    sums = be.bundle_sum(trits.reshape(world, -1))
    return be.nibble_pack(_rescale(sums, world, be, seed, step, tensor))


def decode(gathered: Any, n: int, bits: np.ndarray, bounds: list[tuple[int, int]], world: int, be: Any, out: Any) -> Any:
    """Write the mean of the ranks' gradients into float32 ``out``: ``f32((f64(c) * f64(s_c * 2**shift)) / f64(W))``.

    Parameters
    ----------
    gathered : uint8 array
        Every shard's nibbles in shard order (what an all-gather delivers).
    n : int
        Elements of the bucket.
    bits, bounds, world, be
        As in :func:`encode`.
    out : float32 array of ``n``

    Returns
    -------
    ``out``; chunks whose shared scale is not finite are NaN.
    """
    xp = be.xp
    data = gathered[: (n + 1) // 2]  # exactly the bytes of n nibbles
    # every byte holds two nibbles, so a chunk that starts on a byte decodes by table look-up:
    # row k of the table is accum_mean of byte k's two counts (the same arithmetic, element by element)
    pairs = be.nibble_unpack(xp.arange(256, dtype=xp.uint8), 512)
    counts = None
    unit = float(2 ** sum_shift(world))
    for (lo, hi), b, s in zip(bounds, bits, _scales(bits)):
        if int(b) >= F32_INF_BITS:
            out[lo:hi] = xp.float32(np.nan)
        elif lo % 2 == 0:
            table = be.accum_mean(pairs, float(s) * unit, float(world)).view(xp.uint64)  # both floats of a byte
            out[lo:hi] = xp.take(table, data[lo // 2 : (hi + 1) // 2]).view(xp.float32)[: hi - lo]
        else:
            counts = be.nibble_unpack(data, n) if counts is None else counts
            out[lo:hi] = be.accum_mean(counts[lo:hi], float(s) * unit, float(world))
    return out


def reduce_scatter_bytes(n: int, chunks: int, world: int) -> int:
    """Bytes one rank sends for an ``n``-element bucket of ``chunks`` chunks under this scheme.

    ``2 (W-1)/W * 4 K`` for the ring all-reduce of the scale words, ``(W-1) m / 4``
    for the all-to-all of packed trits and ``(W-1) m / 2`` for the ring
    all-gather of the nibbles (``m`` = :func:`shard_length`).

    Examples
    --------
    >>> reduce_scatter_bytes(1000, 1, 4)  # m = 252: 6 + 189 + 378
    573
    """
    m = shard_length(n, world)
    return (2 * (world - 1) * 4 * chunks) // world + (world - 1) * (m // 4) + (world - 1) * (m // 2)


def all_gather_bytes(n: int, chunks: int, world: int) -> int:
    """Bytes one rank sends for an ``n``-element bucket under the all-gather scheme: ``(W-1) (4 K + ceil(n / 4))``.

    Examples
    --------
    >>> all_gather_bytes(1000, 1, 4)
    762
    """
    return (world - 1) * (4 * chunks + -(-n // 4))
