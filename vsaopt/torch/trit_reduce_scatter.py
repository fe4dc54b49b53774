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

from ..backend import to_device
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


def chunk_scale_bits(x: Any, residual: Any, chunk: int, be: Any) -> Any:
    """Per chunk of ``chunk`` elements, the largest sign-cleared float32 bit pattern of ``v = f32(x + residual)`` (int32, the backend's array).

    ``residual`` None: ``v = x``.  NaN and Inf sort above every finite value.

    Examples
    --------
    >>> import numpy as np
    >>> from vsaopt.backend import get_backend
    >>> chunk_scale_bits(np.array([1.0, -2.0, 0.5], np.float32), None, 2, get_backend("numpy")).tolist()
    [1073741824, 1056964608]
    """
    return be.comm_scale_bits(x, residual, chunk)


def encode(
    x: Any, residual: Any, bits: Any, chunk: int, world: int, be: Any, seed: int, stream: int, step: int, base: int,
    feedback: bool = False,
) -> tuple[Any, Any]:
    """The 2-bit packing of the trits of ``v = f32(x + residual)`` against the shared scales, zero-padded to ``W`` shards.

    Chunk ``c`` uses the Philox draws ``(seed, stream, step, base | c)``; a
    chunk whose shared scale is not finite gets zero trits (it decodes to NaN).
    One fused pass (``comm_encode``) per chunk.

    Parameters
    ----------
    x : float32 array, 1-D, ``n`` elements
    residual : float32 array of ``n``, or None
        The error-feedback residual added to ``x``; with ``feedback`` it is
        overwritten with the new residual ``f32(v - f32(t) * s_c)`` (+0.0
        where that is not finite).
    bits : int32 array (host or the backend's)
        The shared scale bit patterns (all-reduce MAX of :func:`chunk_scale_bits`).
    chunk : int
        Elements per chunk.
    world : int
        Ranks ``W``.
    be : backend
    seed, stream, step, base : int
        Counter words; ``base`` holds the rank and bucket fields of ``tensor_index``.
    feedback : bool
        Compute the new residual.

    Returns
    -------
    packed : uint8 array of ``W * shard_length(n, W) / 4``; shard ``j`` is bytes ``[j m / 4, (j + 1) m / 4)``.
    residual : the new residual (float32 array of ``n``), or None without ``feedback``.
    """
    nbytes = world * shard_length(x.shape[0], world) // 4
    packed, _, kept = be.comm_encode(x, residual, to_device(be, bits), chunk, nbytes, seed, stream, step, base, feedback)
    return packed, kept


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
    return be.comm_reduce_shard(received, world, sum_shift(world), seed, COMM_SUM_STREAM, step, tensor)


def decode(gathered: Any, n: int, bits: Any, chunk: int, world: int, be: Any, out: Any) -> Any:
    """Write the mean of the ranks' gradients into float32 ``out``: ``f32((f64(c) * f64(s * 2**shift)) / f64(W))``.

    Parameters
    ----------
    gathered : uint8 array
        Every shard's nibbles in shard order (what an all-gather delivers).
    n : int
        Elements of the bucket.
    bits, chunk, world, be
        As in :func:`encode`.
    out : float32 array of ``n``

    Returns
    -------
    ``out``; chunks whose shared scale is not finite are NaN.
    """
    return be.comm_decode_nibbles(gathered, to_device(be, bits), chunk, world, sum_shift(world), out)


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
