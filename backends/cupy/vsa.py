"""VSA algebra kernels on the GPU (``vsa.cu``): bind/unbind, bundling sums, dot products, equal counts.

Float dot products and sums of squares are :func:`.reduce.fold_rows` of
per-(pair, block) warp sums, so every float64 result follows ``spec_sum``
exactly; integer results are exact.
"""

from __future__ import annotations

from typing import Any

from . import _build as b
from .reduce import BLOCK, fold_rows

SOURCE = "vsa.cu"
CUDA_NAMES = (
    "vsaopt_trit_bind",
    "vsaopt_bundle_f32",
    "vsaopt_bundle_i8",
    "vsaopt_dot_f32_blocks",
    "vsaopt_sumsq_f32_blocks",
    "vsaopt_dot_i8",
    "vsaopt_sumsq_i8",
    "vsaopt_equal_f32",
    "vsaopt_equal_i8",
)


def _bind(a: Any, c: Any, sign: int, out: Any = None) -> Any:
    import cupy

    a = b.as_device(a, cupy.int8)
    c = b.as_device(c, cupy.int8)
    n = a.shape[0]
    out = cupy.empty(n, dtype=cupy.int8) if out is None else out
    if n:
        b.launch(SOURCE, "vsaopt_trit_bind", -(-n // 4), (a, c, out, b.u64(n), b.i32(sign)))
    return out


def trit_bind(a: Any, c: Any, out: Any = None) -> Any:
    """``(a - b) mod 3`` mapped back to a trit, elementwise (int8, 1-D; into ``out`` when given)."""
    return _bind(a, c, -1, out)


def trit_unbind(a: Any, c: Any, out: Any = None) -> Any:
    """``(a + b) mod 3`` mapped back to a trit, elementwise (int8, 1-D; into ``out`` when given)."""
    return _bind(a, c, 1, out)


def _is_int8(a: Any) -> bool:
    import cupy

    return a.dtype == cupy.int8


def bundle_sum(vectors: Any) -> Any:
    """Sum over axis 0 of ``(k, n)``: float32 as ``((v0 + v1) + v2) + ...``; int8 exactly into int32."""
    import cupy

    v = b.as_device(vectors)
    k, n = v.shape
    if _is_int8(v):
        dtype, name = cupy.int32, "vsaopt_bundle_i8"
    else:
        v = b.as_device(v, cupy.float32)
        dtype, name = cupy.float32, "vsaopt_bundle_f32"
    out = (cupy.empty if k else cupy.zeros)(n, dtype=dtype)  # k == 0: +0.0 / 0
    if k and n:
        b.launch(SOURCE, name, n, (v, out, b.u64(k), b.u64(n)))
    return out


def _blocks(d: int) -> int:
    return max(1, -(-d // BLOCK))


def dot(a: Any, c: Any) -> Any:
    """Dot product of every row pair, ``(n, d) x (m, d) -> (n, m)``: int8 -> int64; float32 -> float64 spec sum."""
    import cupy

    a = b.as_device(a)
    c = b.as_device(c)
    n, d = a.shape
    m = c.shape[0]
    nb = _blocks(d)
    if _is_int8(a):
        out = cupy.zeros((n, m), dtype=cupy.int64)
        if n and m and d:
            b.launch_warps(SOURCE, "vsaopt_dot_i8", n * m * nb, (a, b.as_device(c, cupy.int8), b.u64(n), b.u64(m), b.u64(d), b.u64(nb), out))
        return out
    a = b.as_device(a, cupy.float32)
    c = b.as_device(c, cupy.float32)
    out = cupy.zeros((n, m), dtype=cupy.float64)
    if n == 0 or m == 0 or d == 0:
        return out
    sums = out.reshape(n * m, 1) if nb == 1 else cupy.empty((n * m, nb), dtype=cupy.float64)
    b.launch_warps(SOURCE, "vsaopt_dot_f32_blocks", n * m * nb, (a, c, b.u64(n), b.u64(m), b.u64(d), b.u64(nb), sums))
    if nb > 1:
        fold_rows(sums, out.reshape(-1))
    return out


def row_sumsq(a: Any) -> Any:
    """Sum of squares of each row of ``(n, d)``: int8 -> exact int64; float32 -> float64 spec sum."""
    import cupy

    a = b.as_device(a)
    n, d = a.shape
    nb = _blocks(d)
    if _is_int8(a):
        out = cupy.zeros(n, dtype=cupy.int64)
        if n and d:
            b.launch_warps(SOURCE, "vsaopt_sumsq_i8", n * nb, (a, b.u64(n), b.u64(d), b.u64(nb), out))
        return out
    a = b.as_device(a, cupy.float32)
    out = cupy.zeros(n, dtype=cupy.float64)
    if n == 0 or d == 0:
        return out
    sums = out.reshape(n, 1) if nb == 1 else cupy.empty((n, nb), dtype=cupy.float64)
    b.launch_warps(SOURCE, "vsaopt_sumsq_f32_blocks", n * nb, (a, b.u64(n), b.u64(d), b.u64(nb), sums))
    if nb > 1:
        fold_rows(sums, out)
    return out


def equal_count(a: Any, c: Any) -> Any:
    """Number of positions where row ``i`` of ``a`` equals row ``j`` of ``b`` (``==``), int64 ``(n, m)``."""
    import cupy

    a = b.as_device(a)
    c = b.as_device(c)
    n, d = a.shape
    m = c.shape[0]
    out = cupy.zeros((n, m), dtype=cupy.int64)
    if n and m and d:
        if _is_int8(a):
            name, c = "vsaopt_equal_i8", b.as_device(c, cupy.int8)
        else:
            name, a, c = "vsaopt_equal_f32", b.as_device(a, cupy.float32), b.as_device(c, cupy.float32)
        b.launch_warps(SOURCE, name, n * m * _blocks(d), (a, c, b.u64(n), b.u64(m), b.u64(d), b.u64(_blocks(d)), out))
    return out


KERNELS = {
    "trit_bind": trit_bind,
    "trit_unbind": trit_unbind,
    "bundle_sum": bundle_sum,
    "dot": dot,
    "row_sumsq": row_sumsq,
    "equal_count": equal_count,
}
