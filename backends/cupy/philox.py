"""Philox4x32 on the GPU: the block function and the spec's per-element words (``philox.cu``)."""

from __future__ import annotations

from typing import Any

from . import _build as b

SOURCE = "philox.cu"
#: The ``extern "C"`` kernels of :data:`SOURCE` this module launches.
CUDA_NAMES = ("vsaopt_philox4x32", "vsaopt_philox_bits", "vsaopt_uniform_f32")


def philox4x32(counter: Any, key: Any, rounds: int) -> Any:
    """Philox4x32-``rounds`` of uint32 ``(n, 4)`` counters under uint32 ``(n, 2)`` keys; one thread per row."""
    import cupy

    c = b.as_device(counter, cupy.uint32)
    k = b.as_device(key, cupy.uint32)
    n = c.shape[0]
    out = cupy.empty((n, 4), dtype=cupy.uint32)
    if n:
        b.launch(SOURCE, "vsaopt_philox4x32", n, (c, k, out, b.u64(n), b.i32(rounds)))
    return out


def _draw(name: str, dtype: Any, n: int, seed: int, stream: int, step: int, tensor: int) -> Any:
    import cupy

    out = cupy.empty(n, dtype=dtype)
    if n:
        b.launch(SOURCE, name, -(-n // 4), (out, b.u64(n)) + b.draw_args(seed, stream, step, tensor))
    return out


def philox_bits(n: int, seed: int, stream: int, step: int, tensor: int) -> Any:
    """Word ``i % 4`` of block ``(i // 4, tensor, step, stream)`` for each ``i < n``: uint32 ``(n,)``."""
    import cupy

    return _draw("vsaopt_philox_bits", cupy.uint32, n, seed, stream, step, tensor)


def uniform_f32(n: int, seed: int, stream: int, step: int, tensor: int) -> Any:
    """``(philox_bits >> 8) * 2**-24`` as float32 ``(n,)``."""
    import cupy

    return _draw("vsaopt_uniform_f32", cupy.float32, n, seed, stream, step, tensor)


KERNELS = {"philox4x32": philox4x32, "philox_bits": philox_bits, "uniform_f32": uniform_f32}
