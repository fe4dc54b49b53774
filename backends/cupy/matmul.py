"""The ordered matrix product on the GPU (``matmul.cu``): one thread per output element."""

from __future__ import annotations

from typing import Any

from . import _build as b

SOURCE = "matmul.cu"
CUDA_NAMES = ("vsaopt_matmul_ordered",)


def matmul_ordered(a: Any, bm: Any) -> Any:
    """Float32 ``(n, k) x (k, m) -> (n, m)``, each element a sequential sum over ``k`` from +0.0, every operation rounded."""
    import cupy

    x, y = b.as_device(a, cupy.float32), b.as_device(bm, cupy.float32)
    n, k, m = x.shape[0], x.shape[1], y.shape[1]
    c = cupy.empty((n, m), dtype=cupy.float32)
    if n * m:
        b.launch(SOURCE, "vsaopt_matmul_ordered", n * m, (x, y, c, b.u64(n), b.u64(k), b.u64(m)))
    return c


KERNELS = {"matmul_ordered": matmul_ordered}
