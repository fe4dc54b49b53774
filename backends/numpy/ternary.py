"""Ternary quantization kernels (reference): the threshold and stochastic quantizers."""

from __future__ import annotations

import numpy as np

from .philox import uniform_f32


def quantize_threshold(x: np.ndarray, threshold: float) -> np.ndarray:
    """+1 where ``x > t``, -1 where ``x < -t``, else 0 (``t`` float32)."""
    t = np.float32(threshold)
    return (x > t).astype(np.int8) - (x < -t).astype(np.int8)


def quantize_stochastic(x: np.ndarray, scale: float, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
    """``sign(x)`` where ``u < |x| / scale`` in float32, else 0; all zeros when ``scale == 0``."""
    s = np.float32(scale)
    if s == 0:
        return np.zeros(x.shape, dtype=np.int8)
    u = uniform_f32(x.size, seed, stream, step, tensor)
    keep = u < np.abs(x) / s
    return np.where(keep, np.sign(x), np.float32(0)).astype(np.int8)


KERNELS = {"quantize_threshold": quantize_threshold, "quantize_stochastic": quantize_stochastic}
