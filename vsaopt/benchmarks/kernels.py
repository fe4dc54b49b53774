"""Foundation benchmarks: kernels against bandwidth, against the reference, MAP algebra, latency."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .. import ternary
from ..backend import get_backend, is_gpu, to_device
from ..vsa import map as vmap
from .timing import BenchRow, best_time, latency_after_idle

#: Elements of a 768 x 3072 weight: the per-call latency size.
LATENCY_ELEMENTS = 768 * 3072


def _numba_copy() -> Callable[[np.ndarray, np.ndarray], None]:
    from numba import njit, prange

    @njit(parallel=True, cache=True)
    def copy(src: np.ndarray, dst: np.ndarray) -> None:
        for i in prange(src.shape[0]):
            dst[i] = src[i]

    return copy


def device_sync(be: Any) -> Callable[[], Any] | None:
    """What makes a timing wait for the device: a CUDA synchronize for GPU backends, else nothing."""
    return be.xp.cuda.Device().synchronize if is_gpu(be) else None


def copy_bandwidth(n: int, backend: str = "numba", repeat: int = 3) -> tuple[float, list[BenchRow]]:
    """Bytes per second of copying ``n`` float32 (read + write) where ``backend`` computes, and the rows.

    On the host the faster of a parallel numba copy and ``numpy.copyto`` (both
    reported; on a busy or virtual machine either may win); on a GPU ``cupy.copyto``.
    """
    src = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    be = get_backend(backend)
    if is_gpu(be):
        dsrc = be.xp.asarray(src)
        ddst = be.xp.empty_like(dsrc)
        t = best_time(be.xp.copyto, ddst, dsrc, repeat=repeat, sync=device_sync(be))
        bw = 8 * n / t
        return bw, [BenchRow("bandwidth", f"copy float32 ({backend}.copyto)", backend, n, t, 8, 1.0,
                             note=f"{bw / 1e9:.1f} GB/s: the reference")]
    dst = np.empty_like(src)
    copy = _numba_copy()
    t_numba = best_time(copy, src, dst, repeat=repeat)
    t_numpy = best_time(np.copyto, dst, src, repeat=repeat)
    bw = 8 * n / min(t_numba, t_numpy)  # the faster copy: no kernel is flattered by a slow reference
    rows = [
        BenchRow("bandwidth", "copy float32 (numba prange)", "numba", n, t_numba, 8, 8 * n / t_numba / bw),
        BenchRow("bandwidth", "copy float32 (numpy.copyto)", "numpy", n, t_numpy, 8, 8 * n / t_numpy / bw),
    ]
    fastest = 0 if t_numba <= t_numpy else 1
    rows[fastest].note = f"{bw / 1e9:.1f} GB/s: the reference (the faster copy)"
    return bw, rows


def _kernel_cases(be: Any, x: np.ndarray, trits: np.ndarray) -> Iterator[tuple[str, float, Callable[[], Any]]]:
    n = x.size
    scale = np.float32(float(abs(x).max()))
    p2, _ = be.pack_2bit(trits)
    p3, _ = be.pack_base3(trits)
    other = trits[::-1].copy()
    yield "abs_stats (sum, max |x|)", 4, lambda: be.abs_stats(x)
    yield "quantize_threshold", 5, lambda: be.quantize_threshold(x, 0.5)
    yield "quantize_stochastic (Philox)", 5, lambda: be.quantize_stochastic(x, scale, 1, 0, 0, 0)
    yield "philox_bits", 4, lambda: be.philox_bits(n, 1, 0, 0, 0)
    yield "pack_2bit", 1.25, lambda: be.pack_2bit(trits)
    yield "unpack_2bit", 1.25, lambda: be.unpack_2bit(p2, n)
    yield "pack_base3", 1.2, lambda: be.pack_base3(trits)
    yield "unpack_base3", 1.2, lambda: be.unpack_base3(p3, n)
    yield "trit_bind", 3, lambda: be.trit_bind(trits, other)


def kernel_throughput(n: int, bandwidth: float, backend: str = "numba", repeat: int = 3) -> list[BenchRow]:
    """Each kernel of ``backend`` on ``n`` elements, as a fraction of ``bandwidth`` (bytes/s)."""
    be = get_backend(backend)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(n, dtype=np.float32)
    trits = rng.integers(-1, 2, n, dtype=np.int8)
    rows = []
    for name, nbytes, call in _kernel_cases(be, to_device(be, x), to_device(be, trits)):
        t = best_time(call, repeat=repeat, sync=device_sync(be))
        rows.append(BenchRow("kernels vs bandwidth", name, backend, n, t, nbytes, nbytes * n / t / bandwidth, note="goal >= 0.8"))
    return rows


def against_reference(n: int, backend: str = "numba", repeat: int = 2) -> list[BenchRow]:
    """Public quantize-and-pack pipelines on ``backend`` versus the numpy reference."""
    host = np.random.default_rng(2).standard_normal(n, dtype=np.float32)
    be = get_backend(backend)
    inputs = {"numpy": host, backend: to_device(be, host)}
    pipelines = {
        "quantize_stochastic + pack 2bit":
            lambda b: ternary.pack(ternary.quantize_stochastic(inputs[b], 7, backend=b)[0], backend=b),
        "quantize_deterministic + pack 2bit":
            lambda b: ternary.pack(ternary.quantize_deterministic(inputs[b], backend=b)[0], backend=b),
    }
    rows = []
    for name, run in pipelines.items():
        t_ref = best_time(run, "numpy", repeat=1, warmup=0)
        t = best_time(run, backend, repeat=repeat, sync=device_sync(be))
        rows.append(BenchRow("backend vs numpy reference", name, backend, n, t, speedup=t_ref / t,
                             note=f"reference {t_ref:.3f} s; goal >= 15x" if "stochastic" in name else f"reference {t_ref:.3f} s"))
    return rows


def map_algebra(dim: int, count: int, backend: str = "numba", repeat: int = 3) -> list[BenchRow]:
    """MAP bind / bundle / cosine on ``count`` vectors of ``dim``, float32 and int8, beside plain numpy float32."""
    rng = np.random.default_rng(3)
    a32 = np.where(rng.random((count, dim)) < 0.5, -1, 1).astype(np.float32)
    b32 = np.where(rng.random((count, dim)) < 0.5, -1, 1).astype(np.float32)
    q32 = b32[0].copy()
    plain = {
        "bind": (lambda: np.multiply(a32, b32)),
        "bundle": (lambda: a32.sum(axis=0)),
        "cosine (1 query vs all)": (lambda: (a32 @ q32) / np.maximum(np.linalg.norm(a32, axis=1) * np.linalg.norm(q32), 1e-8)),
    }
    t_plain = {k: best_time(f, repeat=repeat) for k, f in plain.items()}
    rows = [BenchRow("MAP algebra", k, "numpy (plain)", count * dim, t, note="float32, no spec'd order") for k, t in t_plain.items()]
    be = get_backend(backend)
    for dtype in (np.float32, np.int8):
        a, b, q = (to_device(be, v.astype(dtype)) for v in (a32, b32, q32))
        ours = {
            "bind": lambda: vmap.bind(a, b, backend=backend),
            "bundle": lambda: vmap.bundle(a, backend=backend),
            "cosine (1 query vs all)": lambda: vmap.cosine_similarity(q, a, backend=backend),
        }
        for k, f in ours.items():
            t = best_time(f, repeat=repeat, sync=device_sync(be))
            rows.append(BenchRow("MAP algebra", k, f"{backend} {np.dtype(dtype).name}", count * dim, t,
                                 speedup=t_plain[k] / t, note="speedup vs plain numpy float32"))
    return rows


def latency(n: int = LATENCY_ELEMENTS, backend: str = "numba", gap: float = 0.05) -> list[BenchRow]:
    """Per-call latency of the public operations on ``n`` elements after an idle gap.

    For numba both paths are measured: the serial kernels and the ``prange`` ones.
    """
    be = get_backend(backend)
    rng = np.random.default_rng(4)
    x = to_device(be, rng.standard_normal(n, dtype=np.float32))
    trits = to_device(be, rng.integers(-1, 2, n, dtype=np.int8))
    packed = ternary.pack(trits, backend=be)
    ops = {
        "quantize_deterministic": lambda: ternary.quantize_deterministic(x, backend=be),
        "quantize_stochastic": lambda: ternary.quantize_stochastic(x, 1, backend=be),
        "pack 2bit": lambda: ternary.pack(trits, backend=be),
        "unpack 2bit": lambda: ternary.unpack(packed, n, backend=be),
    }
    note = f"median of 7 calls, {gap * 1e3:.0f} ms idle before each"

    def measure(path: str) -> list[BenchRow]:
        return [BenchRow("latency after idle", f"{name} [{path}]" if path else name, backend, n,
                         latency_after_idle(f, gap=gap, sync=device_sync(be)), note=note) for name, f in ops.items()]

    if backend != "numba":
        return measure("")
    from ..backends.numba import parallel_threshold

    rows = []
    for path, threshold in (("serial", n + 1), ("prange", 1)):
        with parallel_threshold(threshold):
            rows += measure(path)
    return rows
