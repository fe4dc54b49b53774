"""VSA algebra kernels (reference): trit bind/unbind, bundling sums, dot products, equal counts.

Float dot products and sums of squares follow the spec's float64 summation
order (:mod:`.reduce`), applied to many rows at once: :func:`spec_sum_rows` is
:func:`.reduce.spec_sum` vectorized over the rows of a 2-D array.
"""

from __future__ import annotations

import numpy as np

from .reduce import BLOCK, LANES

#: Trit of each residue mod 3: 0 -> 0, 1 -> +1, 2 -> -1.
TRIT_OF_RESIDUE = np.array([0, 1, -1], dtype=np.int8)
#: Products formed per chunk of rows in :func:`dot` (bounds the float64 scratch memory).
CHUNK_ELEMENTS = 1 << 22


def trit_bind(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``(a - b) mod 3`` mapped back to a trit, elementwise (int8, 1-D; into ``out`` when given)."""
    return np.take(TRIT_OF_RESIDUE, np.mod(a.astype(np.int16) - b, 3), out=out)


def trit_unbind(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``(a + b) mod 3`` mapped back to a trit, elementwise (int8, 1-D; into ``out`` when given)."""
    return np.take(TRIT_OF_RESIDUE, np.mod(a.astype(np.int16) + b, 3), out=out)


def bundle_sum(vectors: np.ndarray) -> np.ndarray:
    """Sum over axis 0 of ``(k, n)``: float32 as ``((v0 + v1) + v2) + ...``; int8 exactly into int32.

    ``k == 0`` gives zeros (float32 +0.0 or int32 0).
    """
    k, n = vectors.shape
    if vectors.dtype == np.int8:
        return vectors.astype(np.int32).sum(axis=0, dtype=np.int32) if k else np.zeros(n, np.int32)
    if k == 0:
        return np.zeros(n, dtype=np.float32)
    acc = vectors[0].copy()
    with np.errstate(over="ignore", invalid="ignore"):  # IEEE results (+-Inf, NaN) are the spec'd values
        for row in vectors[1:]:
            acc = acc + row  # float32 + float32, rounded once per addition
    return acc


def spec_sum_rows(values: np.ndarray) -> np.ndarray:
    """:func:`.reduce.spec_sum` of every row of float64 ``values`` ``(r, d)`` -> float64 ``(r,)``.

    Lane ``l`` of block ``k`` adds, in increasing ``m``, elements ``k*BLOCK + LANES*m + l``
    from +0.0.  The last block is padded with +0.0 only up to a multiple of
    ``LANES`` (adding +0.0 to a lane that is never -0.0 changes nothing).
    """
    r, d = values.shape
    groups = -(-d // LANES)
    nblocks = max(1, -(-d // BLOCK))
    padded = np.zeros((r, groups * LANES), dtype=np.float64)
    padded[:, :d] = values
    g = padded.reshape(r, groups, LANES)
    per_block = BLOCK // LANES
    lanes = np.zeros((r, nblocks, LANES), dtype=np.float64)
    for m in range(min(per_block, groups)):
        step_m = g[:, m::per_block, :]  # group m of every block that has one
        lanes[:, : step_m.shape[1], :] += step_m
    h = LANES // 2
    while h:
        lanes[:, :, :h] += lanes[:, :, h : 2 * h]
        h //= 2
    return fold_pairwise_rows(lanes[:, :, 0])


def fold_pairwise_rows(sums: np.ndarray) -> np.ndarray:
    """:func:`.reduce.fold_pairwise` of every row of ``(r, nblocks)``."""
    s = sums
    while s.shape[1] > 1:
        even = s.shape[1] // 2 * 2
        folded = s[:, 0:even:2] + s[:, 1:even:2]
        s = np.concatenate([folded, s[:, -1:]], axis=1) if s.shape[1] % 2 else folded
    return s[:, 0].copy()


def _chunk_rows(m: int, d: int) -> int:
    """Rows of ``a`` per chunk so that a chunk forms at most about ``CHUNK_ELEMENTS`` products."""
    return max(1, CHUNK_ELEMENTS // max(1, m * d))


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot product of every row of ``a`` ``(n, d)`` with every row of ``b`` ``(m, d)`` -> ``(n, m)``.

    int8: exact int64.  float32: each product formed exactly in float64, the
    ``d`` products of a pair summed in the spec order (float64 result).
    """
    n, d = a.shape
    m = b.shape[0]
    if a.dtype == np.int8:
        return a.astype(np.int64) @ b.astype(np.int64).T
    out = np.empty((n, m), dtype=np.float64)
    b64 = b.astype(np.float64)
    step = _chunk_rows(m, d)
    for lo in range(0, n, step):
        a64 = a[lo : lo + step].astype(np.float64)
        products = a64[:, None, :] * b64[None, :, :]
        out[lo : lo + a64.shape[0]] = spec_sum_rows(products.reshape(a64.shape[0] * m, d)).reshape(a64.shape[0], m)
    return out


def row_sumsq(a: np.ndarray) -> np.ndarray:
    """Sum of squares of each row of ``(n, d)``: int8 -> exact int64; float32 -> float64 spec sum."""
    if a.dtype == np.int8:
        a64 = a.astype(np.int64)
        return (a64 * a64).sum(axis=1)
    a64 = a.astype(np.float64)
    return spec_sum_rows(a64 * a64)


def equal_count(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Number of positions where row ``i`` of ``a`` equals row ``j`` of ``b`` (``==``), int64 ``(n, m)``."""
    n, d = a.shape
    m = b.shape[0]
    out = np.empty((n, m), dtype=np.int64)
    step = _chunk_rows(m, d)
    for lo in range(0, n, step):
        rows = a[lo : lo + step]
        out[lo : lo + rows.shape[0]] = (rows[:, None, :] == b[None, :, :]).sum(axis=2, dtype=np.int64)
    return out


KERNELS = {
    "trit_bind": trit_bind,
    "trit_unbind": trit_unbind,
    "bundle_sum": bundle_sum,
    "dot": dot,
    "row_sumsq": row_sumsq,
    "equal_count": equal_count,
}
