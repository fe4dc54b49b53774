"""Accumulator and compressor benchmarks: bytes held, throughput against bandwidth, per-gradient time."""

from __future__ import annotations

import numpy as np

from ..accumulator import TernaryGradientAccumulator
from ..compressor import VSAGradientCompressor
from ..config import TernaryConfig, VSAConfig
from ..backend import get_backend, to_device
from .kernels import device_sync
from .timing import BenchRow, best_time

#: The gradient the compressor figures are taken on: one 768 x 3072 weight.
COMPRESS_SHAPE = (768, 3072)


def accumulator_rows(n: int, bandwidth: float, backend: str = "numba", repeat: int = 3) -> list[BenchRow]:
    """``accumulate`` of ``n`` float32 elements against ``bandwidth``, and the bytes held vs float32, per count width."""
    be = get_backend(backend)
    g = to_device(be, np.random.default_rng(6).standard_normal(n, dtype=np.float32))
    rows = []
    for bits in (8, 4):
        acc = TernaryGradientAccumulator([("w", (n,))], TernaryConfig(), backend=be, count_bits=bits)
        acc.accumulate({"w": g})  # compile and settle the scale outside the timing
        t = best_time(acc.accumulate, {"w": g}, repeat=repeat, warmup=0, sync=device_sync(be))
        nbytes_per = 4 + 2 * bits / 8  # read the gradient, read and write the counts
        held = acc.float32_nbytes / acc.nbytes
        rows.append(BenchRow("accumulator", f"accumulate, {bits}-bit counts: {held:.4f}x fewer bytes than float32",
                             backend, n, t, nbytes_per, nbytes_per * n / t / bandwidth,
                             note=f"holds {acc.nbytes:,} B vs {acc.float32_nbytes:,} B; goal >= 4x fewer, >= 0.8 of bw"))
        acc.reset()
    return rows


def compressor_rows(backend: str = "numba", repeat: int = 5) -> list[BenchRow]:
    """Compress and decompress one 768 x 3072 float32 gradient, bundled and per-tensor, vs the numpy reference."""
    host = np.random.default_rng(7).standard_normal(COMPRESS_SHAPE, dtype=np.float32)
    n = int(np.prod(COMPRESS_SHAPE))
    rows = []
    for mode in ("bundled", "per_tensor"):
        times = {}
        for name in ("numpy", backend):
            be = get_backend(name)
            g, sync = {"w": to_device(be, host)}, device_sync(be)
            comp = VSAGradientCompressor([("w", COMPRESS_SHAPE)], VSAConfig(), backend=be, mode=mode)
            msg = comp.compress(g)
            times[name] = (best_time(comp.compress, g, repeat=repeat, sync=sync),
                           best_time(comp.decompress, msg, repeat=repeat, sync=sync))
        for i, what in enumerate(("compress", "decompress")):
            t, t_ref = times[backend][i], times["numpy"][i]
            rows.append(BenchRow("compressor", f"{what} 768x3072 ({mode})", backend, n, t, speedup=t_ref / t,
                                 note=f"numpy reference {t_ref * 1e3:.1f} ms; goal < 50 ms"))
    return rows
