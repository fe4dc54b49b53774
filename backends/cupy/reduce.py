"""The spec's float64 summation on the GPU and the |x| statistics (``reduce.cu``).

A spec sum runs as two kernels: one warp per 8192-element block (lanes add
in row order, then the warp's ``shfl_down`` tree is the lane fold), and the
pairwise fold of the block sums.  :func:`fold_rows` is used by the other
modules for their per-row block sums.
"""

from __future__ import annotations

from typing import Any

from . import _build as b

SOURCE = "reduce.cu"
CUDA_NAMES = ("vsaopt_abs_blocks", "vsaopt_fold_rows_serial", "vsaopt_fold_rows_cta")
#: Elements per summation block (spec section 3).
BLOCK = 8192
#: Above this many block sums per row, a row is folded by a thread block instead of one thread.
SERIAL_FOLD_MAX = 32
#: Threads of the thread-block fold.
FOLD_THREADS = 512


def nblocks(n: int) -> int:
    """Summation blocks of ``n`` elements."""
    return -(-n // BLOCK)


def fold_rows(sums: Any, out: Any) -> Any:
    """Fold each row of float64 ``sums`` ``(rows, K)`` pairwise into ``out`` (``rows`` float64s); consumes ``sums``."""
    import cupy

    rows, k = sums.shape
    if rows == 0:
        return out
    if k <= SERIAL_FOLD_MAX:
        b.launch(SOURCE, "vsaopt_fold_rows_serial", rows, (sums, b.u64(rows), b.u64(k), out))
    else:
        scratch = cupy.empty(rows * ((k + 1) // 2), dtype=cupy.float64)
        blocks = max(1, min(rows, b.multiprocessors() * 4))
        b.function(SOURCE, "vsaopt_fold_rows_cta")((blocks,), (FOLD_THREADS,), (sums, scratch, b.u64(rows), b.u64(k), out))
    return out


def abs_stats(x: Any) -> tuple[float, int]:
    """Spec'd float64 sum of ``|x|`` and the max sign-cleared bit pattern of float32 ``x`` (host scalars).

    Two launches (block sums with the max, then the block fold) and one
    device-to-host copy of both results.
    """
    import cupy
    import numpy as np

    x = b.as_device(x, cupy.float32).reshape(-1)
    n = x.shape[0]
    if n == 0:
        return 0.0, 0
    k = nblocks(n)
    sums = cupy.empty((1, k), dtype=cupy.float64)
    res = cupy.zeros(2, dtype=cupy.uint64)  # [f64 bits of the sum, max bits]
    b.launch_warps(SOURCE, "vsaopt_abs_blocks", k, (x, b.u64(n), sums, res))
    fold_rows(sums, res[:1].view(cupy.float64))
    host = res.get()
    return float(host[:1].view(np.float64)[0]), int(host[1])


KERNELS = {"abs_stats": abs_stats}
