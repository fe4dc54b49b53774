"""Kernels of the ternary DDP comm hook on the GPU (``comm.cu``).

Same arithmetic as the numpy reference (``spec/comm.md``).  The encoder is
one launch (two when the scales are the chunks' own: a warp-per-tile maximum
first); each decoder and the shard sums are one launch.  The error-feedback
residual, when given as a cupy float32 array, is updated in place.
"""

from __future__ import annotations

from typing import Any

from . import _build as b

SOURCE = "comm.cu"
CUDA_NAMES = (
    "vsaopt_comm_scale_bits",
    "vsaopt_comm_encode",
    "vsaopt_comm_decode_trits",
    "vsaopt_comm_reduce_shard",
    "vsaopt_comm_decode_nibbles",
)
#: Elements of a chunk one warp scans for the chunk's maximum (``VSAOPT_COMM_TILE`` in ``comm.cu``).
MAX_TILE = 4096


def _floats(a: Any) -> Any:
    import cupy

    return b.as_device(a, cupy.float32)


def comm_scale_bits(x: Any, residual: Any, chunk: int) -> Any:
    """Per chunk, the largest ``bits(v_i) & 0x7FFFFFFF`` of ``v = f32(x + residual)`` (``v = x`` without a residual); int32 ``(K,)``."""
    import cupy

    x = _floats(x)
    n = x.shape[0]
    k = -(-n // chunk)
    res = cupy.zeros(k, dtype=cupy.uint64)
    if n:
        has_r = residual is not None
        r = _floats(residual) if has_r else x
        tiles = -(-min(chunk, n) // MAX_TILE)
        args = (x, r, b.i32(has_r), b.u64(n), b.u64(chunk), b.u64(tiles), b.u64(k * tiles), res)
        b.launch_warps(SOURCE, "vsaopt_comm_scale_bits", k * tiles, args)
    return res.astype(cupy.int32)


def comm_encode(
    x: Any, residual: Any, bits: Any, chunk: int, nbytes: int, seed: int, stream: int, step: int, base: int, feedback: bool,
) -> tuple[Any, Any, Any]:
    """Trits of ``v = f32(x + residual)`` against per-chunk scales, packed 2-bit, and the error-feedback residual.

    ``bits`` None: each chunk's scale is its own maximum (:func:`comm_scale_bits`).
    With ``feedback`` the new residual is written into ``residual`` (a new
    array when there is none).  Returns ``(packed, bits, residual)``.
    """
    import cupy

    x = _floats(x)
    n = x.shape[0]
    bits = comm_scale_bits(x, residual, chunk) if bits is None else b.as_device(bits, cupy.int32)
    add = residual is not None
    if add:
        r = _floats(residual)
    else:
        r = cupy.empty(n, dtype=cupy.float32) if feedback else x
    packed = cupy.empty(nbytes, dtype=cupy.uint8)
    if nbytes:
        args = (x, r, b.i32(add), b.i32(feedback), bits, b.u64(n), b.u64(chunk), packed, b.u64(nbytes))
        b.launch(SOURCE, "vsaopt_comm_encode", nbytes, args + b.draw_args(seed, stream, step, base))
    return packed, bits, (r if feedback else None)


def comm_decode_trits(payloads: Any, offset: int, scales: Any, chunk: int, out: Any) -> bool:
    """The all-gather mean into float32 ``out``: ``acc = f32(t_0) * s_0[c]``, ``acc = f32(acc + f32(t_r) * s_r[c])``, ``f32(acc / W)``.

    ``out`` must be a C-contiguous cupy float32 array (it is written in
    place).  Returns whether every code was valid and every pad code 0 (one
    device-to-host copy of the flag).
    """
    import cupy

    p = b.as_device(payloads, cupy.uint8)
    world, stride = p.shape
    s = b.as_device(scales, cupy.float32)
    n = out.shape[0]
    if n == 0:
        return True
    bad = cupy.zeros(1, dtype=cupy.int32)
    args = (p, b.u64(stride), b.u64(offset), s, b.u64(s.shape[1]), b.i32(world), b.u64(n), b.u64(chunk), out, bad)
    b.launch(SOURCE, "vsaopt_comm_decode_trits", 4 * (-(-n // 4)), args)
    return not bool(bad.get()[0])


def comm_reduce_shard(received: Any, world: int, shift: int, seed: int, stream: int, step: int, tensor: int) -> Any:
    """Exact sums of ``W`` packed trit shards, rounded by ``2**shift`` (Philox draw ``(seed, stream, step, tensor)``), nibble-packed."""
    import cupy

    rec = b.as_device(received, cupy.uint8)
    q = rec.shape[0] // world
    out = cupy.empty(2 * q, dtype=cupy.uint8)
    if q:
        args = (rec, b.u64(q), b.i32(world), b.i32(shift), out) + b.draw_args(seed, stream, step, tensor)
        b.launch(SOURCE, "vsaopt_comm_reduce_shard", q, args)
    return out


def comm_decode_nibbles(gathered: Any, bits: Any, chunk: int, world: int, shift: int, out: Any) -> Any:
    """The reduce-scatter mean into float32 ``out``: ``f32((f64(C'[i]) * (f64(s_c) * 2**shift)) / f64(W))``; non-finite chunks NaN."""
    import cupy

    g = b.as_device(gathered, cupy.uint8)
    n = out.shape[0]
    if n:
        args = (g, b.as_device(bits, cupy.int32), b.u64(n), b.u64(chunk), b.i32(world), b.f64(2.0**shift), out)
        b.launch(SOURCE, "vsaopt_comm_decode_nibbles", n, args)
    return out


KERNELS = {
    "comm_scale_bits": comm_scale_bits,
    "comm_encode": comm_encode,
    "comm_decode_trits": comm_decode_trits,
    "comm_reduce_shard": comm_reduce_shard,
    "comm_decode_nibbles": comm_decode_nibbles,
}
