"""Ternary quantization kernels on the GPU (``ternary.cu``): one fused grid-stride kernel each."""

from __future__ import annotations

from typing import Any

from . import _build as b

SOURCE = "ternary.cu"
CUDA_NAMES = ("vsaopt_quantize_threshold", "vsaopt_quantize_stochastic")


def quantize_threshold(x: Any, threshold: float) -> Any:
    """+1 where ``x > t``, -1 where ``x < -t``, else 0 (``t`` float32); int8."""
    import cupy

    x = b.as_device(x, cupy.float32)
    n = x.shape[0]
    out = cupy.empty(n, dtype=cupy.int8)
    if n:
        b.launch(SOURCE, "vsaopt_quantize_threshold", -(-n // 4), (x, out, b.u64(n), b.f32(threshold)))
    return out


def quantize_stochastic(x: Any, scale: float, seed: int, stream: int, step: int, tensor: int) -> Any:
    """``sign(x)`` where ``u < |x| / scale`` (float32), else 0; all zeros when ``scale == 0``."""
    import cupy

    x = b.as_device(x, cupy.float32)
    n = x.shape[0]
    s = b.f32(scale)
    if s == 0:
        return cupy.zeros(n, dtype=cupy.int8)
    out = cupy.empty(n, dtype=cupy.int8)
    if n:
        args = (x, out, b.u64(n), s) + b.draw_args(seed, stream, step, tensor)
        b.launch(SOURCE, "vsaopt_quantize_stochastic", -(-n // 4), args)
    return out


KERNELS = {"quantize_threshold": quantize_threshold, "quantize_stochastic": quantize_stochastic}
