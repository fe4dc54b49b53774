"""Ternary accumulation and matrix-free projection kernels on the GPU (``accum.cu``).

Same arithmetic as the numpy reference (``spec/accumulator.md``,
``spec/compressor.md``).  The in-place kernels (``accum_add_*``,
``accum_rescale``) update the cupy array they are given and return it.
"""

from __future__ import annotations

from typing import Any

from vsaopt.errors import DTypeError

from . import _build as b
from .reduce import fold_rows, nblocks

SOURCE = "accum.cu"
CUDA_NAMES = (
    "vsaopt_random_signs_f32",
    "vsaopt_random_signs_i8",
    "vsaopt_fwht_shared",
    "vsaopt_fwht_stage",
    "vsaopt_srht_gather",
    "vsaopt_srht_scatter",
    "vsaopt_abs_above_blocks",
    "vsaopt_accum_add_stochastic",
    "vsaopt_accum_add_threshold",
    "vsaopt_accum_rescale",
    "vsaopt_count_abs_max",
    "vsaopt_accum_mean",
    "vsaopt_nibble_pack",
    "vsaopt_nibble_unpack",
)
#: Largest Walsh-Hadamard sub-block transformed in shared memory (float32: 32 KiB).
FWHT_SHARED = 8192
#: Elements a thread block loads per pass of the shared-memory transform (at least).
FWHT_TILE = 2048
#: Threads per block of the shared-memory transform.
FWHT_THREADS = 256


def random_signs(x: Any, seed: int, stream: int, step: int, tensor: int) -> Any:
    """``x_i`` negated where bit ``i % 32`` of draw word ``i // 32`` is set (float32: sign bit; int8: ``-t``)."""
    import cupy

    x = b.as_device(x)
    name = "vsaopt_random_signs_i8" if x.dtype == cupy.int8 else "vsaopt_random_signs_f32"
    if name.endswith("f32"):
        x = b.as_device(x, cupy.float32)
    n = x.shape[0]
    out = cupy.empty_like(x)
    if n:
        b.launch_warps(SOURCE, name, -(-n // 4096), (x, out, b.u64(n)) + b.draw_args(seed, stream, step, tensor))
    return out


def fwht(x: Any, block: int, scale: float) -> Any:
    """Unnormalised Walsh-Hadamard transform of each ``block``-long block of float32 ``x``, times f32 ``scale``.

    Stages below ``min(block, FWHT_SHARED)`` run in shared memory in one
    launch; each larger stage is one launch over global memory; the last stage
    applies ``scale``.
    """
    import cupy

    y = b.as_device(x, cupy.float32).copy()
    total = y.shape[0]
    if total == 0:
        return y
    s = b.f32(scale)
    sub = min(block, FWHT_SHARED)
    tile = min(max(sub, FWHT_TILE // sub * sub), total)
    ntiles = -(-total // tile)
    grid = max(1, min(ntiles, b.multiprocessors() * 8))
    b.function(SOURCE, "vsaopt_fwht_shared")(
        (grid,), (FWHT_THREADS,), (y, b.u64(total), b.u32(tile), b.u32(sub), s, b.i32(sub == block)), shared_mem=4 * tile
    )
    h = sub
    while h < block:
        b.launch(SOURCE, "vsaopt_fwht_stage", total // 2, (y, b.u64(total), b.u64(h), s, b.i32(2 * h == block)))
        h *= 2
    return y


def _strata_args(nprime: int, m: int, a_lo: float, a_hi: float) -> tuple:
    return (b.u64(m), b.u64(nprime), b.u64(nprime // m), b.f32(a_lo), b.f32(a_hi))


def srht_gather(z: Any, d: int, m: int, a_lo: float, a_hi: float, seed: int, stream: int, step: int, tensor: int) -> Any:
    """``y[j] = z[r_j] * a_j`` for ``j < m`` (stratified positions), zeros to ``d``; float32 ``(d,)``."""
    import cupy

    z = b.as_device(z, cupy.float32)
    y = cupy.zeros(d, dtype=cupy.float32)
    if m:
        args = (z, y) + _strata_args(z.shape[0], m, a_lo, a_hi) + b.draw_args(seed, stream, step, tensor)
        b.launch(SOURCE, "vsaopt_srht_gather", -(-m // 4), args)
    return y


def srht_scatter(y: Any, nprime: int, m: int, a_lo: float, a_hi: float, seed: int, stream: int, step: int, tensor: int) -> Any:
    """``v[r_j] = y[j] * a_j`` for ``j < m``, ``+0.0`` elsewhere; float32 ``(nprime,)``."""
    import cupy

    y = b.as_device(y, cupy.float32)
    v = cupy.zeros(nprime, dtype=cupy.float32)
    if m:
        args = (y, v) + _strata_args(nprime, m, a_lo, a_hi) + b.draw_args(seed, stream, step, tensor)
        b.launch(SOURCE, "vsaopt_srht_scatter", -(-m // 4), args)
    return v


def abs_sum_above(x: Any, threshold: float) -> tuple[float, int]:
    """Spec'd f64 sum of ``|x_i|`` over ``|x_i| > t`` (f32 ``t``) and their count (host scalars)."""
    import cupy
    import numpy as np

    x = b.as_device(x, cupy.float32).reshape(-1)
    n = x.shape[0]
    if n == 0:
        return 0.0, 0
    k = nblocks(n)
    sums = cupy.empty((1, k), dtype=cupy.float64)
    res = cupy.zeros(2, dtype=cupy.uint64)  # [f64 bits of the sum, count]
    b.launch_warps(SOURCE, "vsaopt_abs_above_blocks", k, (x, b.u64(n), b.f32(threshold), sums, res))
    fold_rows(sums, res[:1].view(cupy.float64))
    host = res.get()
    return float(host[:1].view(np.float64)[0]), int(host[1])


def _in_place(counts: Any) -> Any:
    import cupy

    if not isinstance(counts, cupy.ndarray) or counts.dtype != cupy.int8 or not counts.flags.c_contiguous:
        raise TypeError("counts: expected a C-contiguous cupy int8 array (updated in place)")
    return counts


def accum_add_stochastic(counts: Any, g: Any, inv_scale: float, seed: int, stream: int, step: int, tensor: int) -> Any:
    """In place: ``counts += sign(g) * [w < f32(|g| * inv_scale) * 2**32]`` (f64 compare); returns ``counts``."""
    import cupy

    c = _in_place(counts)
    g = b.as_device(g, cupy.float32)
    n = g.shape[0]
    if n:
        args = (c, g, b.u64(n), b.f32(inv_scale)) + b.draw_args(seed, stream, step, tensor)
        b.launch(SOURCE, "vsaopt_accum_add_stochastic", -(-n // 4), args)
    return counts


def accum_add_threshold(counts: Any, g: Any, threshold: float) -> Any:
    """In place: ``counts += [g > t] - [g < -t]`` (f32 ``t``); returns ``counts``."""
    import cupy

    c = _in_place(counts)
    g = b.as_device(g, cupy.float32)
    n = g.shape[0]
    if n:
        b.launch(SOURCE, "vsaopt_accum_add_threshold", -(-n // 4), (c, g, b.u64(n), b.f32(threshold)))
    return counts


def accum_rescale(counts: Any, shift: int, seed: int, stream: int, step: int, tensor: int) -> Any:
    """In place, ``1 <= shift <= 32``: ``c = (c >> s) + [w < (c mod 2**s) << (32 - s)]``; returns ``counts``."""
    c = _in_place(counts)
    n = c.shape[0]
    if n:
        args = (c, b.u64(n), b.i32(shift)) + b.draw_args(seed, stream, step, tensor)
        b.launch(SOURCE, "vsaopt_accum_rescale", -(-n // 4), args)
    return counts


def count_abs_max(counts: Any) -> int:
    """``max |c_i|`` of int8 counts as an exact integer (``|-128| = 128``); 0 when there are none (host int)."""
    import cupy

    c = b.as_device(counts)
    if c.dtype != cupy.int8:
        raise DTypeError(f"counts: expected int8 counts, got dtype {c.dtype}")
    n = c.shape[0]
    if n == 0:
        return 0
    res = cupy.zeros(1, dtype=cupy.uint64)
    b.launch(SOURCE, "vsaopt_count_abs_max", n, (c, b.u64(n), res))
    return int(res.get()[0])


def accum_mean(counts: Any, unit: float, divisor: float) -> Any:
    """``f32((f64(c) * unit) / divisor)`` of each int8 count; float32."""
    import cupy

    c = b.as_device(counts, cupy.int8)
    n = c.shape[0]
    out = cupy.empty(n, dtype=cupy.float32)
    if n:
        b.launch(SOURCE, "vsaopt_accum_mean", n, (c, out, b.u64(n), b.f64(unit), b.f64(divisor)))
    return out


def nibble_pack(counts: Any) -> Any:
    """int8 counts in ``[-8, 7]`` as 4-bit two's complement, two a byte (element ``2j`` low); uint8."""
    import cupy

    c = b.as_device(counts, cupy.int8)
    n = c.shape[0]
    nbytes = (n + 1) // 2
    out = cupy.empty(nbytes, dtype=cupy.uint8)
    if nbytes:
        b.launch(SOURCE, "vsaopt_nibble_pack", nbytes, (c, out, b.u64(n), b.u64(nbytes)))
    return out


def nibble_unpack(packed: Any, n: int) -> Any:
    """Inverse of :func:`nibble_pack`: ``n`` int8 counts, nibbles sign-extended."""
    import cupy

    p = b.as_device(packed, cupy.uint8)
    out = cupy.empty(n, dtype=cupy.int8)
    nbytes = p.shape[0]
    if n and nbytes:
        b.launch(SOURCE, "vsaopt_nibble_unpack", nbytes, (p, out, b.u64(n), b.u64(nbytes)))
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
