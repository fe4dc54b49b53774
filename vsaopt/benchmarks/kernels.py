"""Foundation benchmarks: kernels against their limits, against the reference, MAP algebra, latency.

A kernel's limit is measured in the same run: the copy bandwidth, a plain
stream of the kernel's bytes into a fresh output (its memory twin: outputs are
freshly allocated, and their first touch costs what a copy into a warm array
does not), and for the Philox kernels the host's 32x32 -> 64-bit multiply
throughput.
"""

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


def _numba() -> tuple[Any, Any]:
    """numba's ``njit`` and ``prange``, with the numba backend's threading layer chosen before any parallel kernel runs."""
    from numba import njit, prange

    from ..backends.numba import _config  # noqa: F401

    return njit, prange


def _numba_copy() -> Callable[[np.ndarray, np.ndarray], None]:
    njit, prange = _numba()

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


#: Philox4x32-10 multiplies per element: 10 rounds of two 32x32 -> 64 products per block of four.
PHILOX_MULTIPLIES_PER_ELEMENT = 5
#: Words per parallel task of the multi-stream memory twins.
TWIN_CHUNK = 1 << 14
#: Elements of the multiply-throughput kernel per task (L1-resident) and passes over them.
MULTIPLY_TILE, MULTIPLY_PASSES = 4096, 64


def _numba_streams() -> dict[str, Callable[..., Any]]:
    """Plain parallel numba streams that move a kernel's bytes and nothing else (its memory twin)."""
    njit, prange = _numba()

    @njit(parallel=True, cache=True)
    def read(src: np.ndarray) -> int:
        total = 0
        for i in prange(src.shape[0]):
            total += src[i]
        return total

    @njit(parallel=True, cache=True)
    def cast(src: np.ndarray, dst: np.ndarray) -> None:  # narrowing or widening, one word into one
        for i in prange(dst.shape[0]):
            dst[i] = src[i]

    @njit(parallel=True, cache=True)
    def fold5(src: np.ndarray, dst: np.ndarray) -> None:  # five words into one: five contiguous streams, in chunks
        q = dst.shape[0]
        for c in prange((q + TWIN_CHUNK - 1) // TWIN_CHUNK):
            lo, hi = c * TWIN_CHUNK, min(q, (c + 1) * TWIN_CHUNK)
            d, s0, s1, s2 = dst[lo:hi], src[lo:hi], src[q + lo : q + hi], src[2 * q + lo : 2 * q + hi]
            s3, s4 = src[3 * q + lo : 3 * q + hi], src[4 * q + lo : 4 * q + hi]
            for i in range(d.shape[0]):
                d[i] = s0[i] ^ s1[i] ^ s2[i] ^ s3[i] ^ s4[i]

    @njit(parallel=True, cache=True)
    def spread5(src: np.ndarray, dst: np.ndarray) -> None:  # one word into five: five contiguous streams, in chunks
        q = src.shape[0]
        for c in prange((q + TWIN_CHUNK - 1) // TWIN_CHUNK):
            lo, hi = c * TWIN_CHUNK, min(q, (c + 1) * TWIN_CHUNK)
            s, d0, d1, d2 = src[lo:hi], dst[lo:hi], dst[q + lo : q + hi], dst[2 * q + lo : 2 * q + hi]
            d3, d4 = dst[3 * q + lo : 3 * q + hi], dst[4 * q + lo : 4 * q + hi]
            for i in range(s.shape[0]):
                d0[i] = d1[i] = d2[i] = d3[i] = d4[i] = s[i]

    @njit(parallel=True, cache=True)
    def pair(a: np.ndarray, b: np.ndarray, dst: np.ndarray) -> None:
        for i in prange(dst.shape[0]):
            dst[i] = a[i] ^ b[i]

    @njit(parallel=True, cache=True)
    def fill(dst: np.ndarray) -> None:
        for i in prange(dst.shape[0]):
            dst[i] = i

    return {"read": read, "cast": cast, "fold5": fold5, "spread5": spread5, "pair": pair, "fill": fill}


def _fresh(nbytes: int, dtype: Any) -> np.ndarray:
    """A freshly allocated array of ``nbytes`` seen as ``dtype`` (the allocation is what a kernel's output pays)."""
    return np.empty(nbytes, dtype=np.uint8).view(dtype)


def first_touch(n: int, bandwidth: float, repeat: int = 3) -> BenchRow:
    """Writing ``n`` uint32 into a freshly allocated array against the same write into a warm one (host)."""
    fill = _numba_streams()["fill"]
    warm = np.empty(n, dtype=np.uint32)
    t_warm = best_time(fill, warm, repeat=repeat)
    t_fresh = best_time(lambda: fill(np.empty(n, dtype=np.uint32)), repeat=repeat)
    return BenchRow("kernels", "write a fresh uint32 array (first touch)", "numba", n, t_fresh, 4, 4 * n / t_fresh / bandwidth,
                    note=f"a warm one: {t_warm * 1e3:.1f} ms; transparent huge pages: {_thp_mode()}")


def _thp_mode() -> str:
    """The kernel's transparent-huge-page mode (the bracketed word of its setting), or "unknown"."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            text = f.read()
    except OSError:
        return "unknown"
    return text[text.find("[") + 1 : text.find("]")] if "[" in text else text.strip()


#: Odd 32-bit multipliers of the multiply-throughput kernel: as many as Philox4x32-10 needs per block of four.
MULTIPLIERS = tuple(np.uint64((0x9E3779B9 * (2 * k + 1)) & 0xFFFFFFFF | 1) for k in range(4 * PHILOX_MULTIPLIES_PER_ELEMENT))


def _numba_multiplies() -> Callable[[np.ndarray, np.ndarray], None]:
    njit, prange = _numba()
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, d0, d1, d2, d3, d4, d5, d6, d7, d8, d9 = MULTIPLIERS
    s32 = np.uint64(32)

    @njit(parallel=True, cache=True)
    def multiplies(x: np.ndarray, out: np.ndarray) -> None:
        # per word 20 independent 32x32 -> 64 products, xor-folded so that none is dead code
        m = x.shape[0]
        for t in prange(out.shape[0] // m):
            o = out[t * m : (t + 1) * m]
            for p in range(MULTIPLY_PASSES):
                for i in range(m):
                    v = np.uint64(x[i] ^ np.uint32(t * MULTIPLY_PASSES + p))
                    a = (v * c0) ^ (v * c1) ^ (v * c2) ^ (v * c3) ^ (v * c4) ^ (v * c5) ^ (v * c6) ^ (v * c7) ^ (v * c8) ^ (v * c9)
                    b = (v * d0) ^ (v * d1) ^ (v * d2) ^ (v * d3) ^ (v * d4) ^ (v * d5) ^ (v * d6) ^ (v * d7) ^ (v * d8) ^ (v * d9)
                    o[i] ^= np.uint32(a ^ b ^ (a >> s32))

    return multiplies


def multiply_throughput(tasks: int = 64, repeat: int = 5) -> tuple[float, BenchRow]:
    """32x32 -> 64-bit integer multiplies per second on the host's cores (a vectorized numba kernel), and its row.

    Each 32-bit word of an L1-resident tile is multiplied by the 20
    :data:`MULTIPLIERS` (independent products, one xor each to keep them).
    Philox4x32-10 needs :data:`PHILOX_MULTIPLIES_PER_ELEMENT` multiplies per
    element, so ``rate / 5`` elements per second is the compute limit of the
    Philox kernels (the row's G elem/s).
    """
    multiplies = _numba_multiplies()
    x = np.random.default_rng(5).integers(0, 2**32, MULTIPLY_TILE, dtype=np.uint32)
    out = np.zeros(tasks * MULTIPLY_TILE, dtype=np.uint32)
    t = best_time(multiplies, x, out, repeat=repeat)
    rate = len(MULTIPLIERS) * tasks * MULTIPLY_TILE * MULTIPLY_PASSES / t
    elements = round(rate * t / PHILOX_MULTIPLIES_PER_ELEMENT)  # Philox elements' worth of multiplies
    row = BenchRow("kernels", "multiply limit: 5 x (32x32 -> 64) a Philox element", "numba", elements, t, 0, 1.0,
                   note=f"{rate / 1e9:.1f} G multiplies/s: the Philox rows' reference")
    return rate, row


def _twins(x: np.ndarray, trits: np.ndarray, other: np.ndarray, p2: np.ndarray, p3: np.ndarray) -> dict[str, Callable[[], Any]]:
    """Per kernel, a plain stream of the same bytes into a fresh output of the same size (host arrays)."""
    st = _numba_streams()
    n = x.shape[0]
    x32, t32 = x.view(np.uint32), trits[: n - n % 4].view(np.uint32)
    w, q = n // 8, n // 40  # whole uint64 words of trits; whole words of eight base-3 bytes
    to_bytes = lambda: st["cast"](x32, _fresh(n, np.uint8))  # noqa: E731
    return {
        "abs_stats (sum, max |x|)": lambda: st["read"](x32),
        "quantize_threshold": to_bytes,
        "quantize_stochastic (Philox)": to_bytes,
        "philox_bits": lambda: st["fill"](_fresh(4 * n, np.uint32)),
        "pack_2bit": lambda: st["cast"](t32, _fresh(n // 4, np.uint8)),
        "unpack_2bit": lambda: st["cast"](p2[: n // 4], _fresh(n - n % 4, np.uint32)),
        "pack_base3": lambda: st["fold5"](trits[: 40 * q].view(np.uint64), _fresh(8 * q, np.uint64)),
        "unpack_base3": lambda: st["spread5"](p3[: 8 * q].view(np.uint64), _fresh(40 * q, np.uint64)),
        "trit_bind": lambda: st["pair"](trits[: 8 * w].view(np.uint64), other[: 8 * w].view(np.uint64), _fresh(8 * w, np.uint64)),
    }


def _best_alternating(f: Callable[[], Any], g: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Fastest of ``repeat`` calls of ``f`` and of ``g``, called by turns (after one warm-up each) so both see the same machine."""
    f()
    g()
    tf = tg = float("inf")
    for _ in range(repeat):
        tf = min(tf, best_time(f, repeat=1, warmup=0))
        tg = min(tg, best_time(g, repeat=1, warmup=0))
    return tf, tg


def _kernel_cases(be: Any, x: np.ndarray, trits: np.ndarray, other: np.ndarray, p2: np.ndarray, p3: np.ndarray
                  ) -> Iterator[tuple[str, float, bool, Callable[[], Any]]]:
    """(name, bytes moved per element, Philox-bound, call) of each kernel."""
    n = x.size
    scale = np.float32(float(abs(x).max()))
    yield "abs_stats (sum, max |x|)", 4, False, lambda: be.abs_stats(x)
    yield "quantize_threshold", 5, False, lambda: be.quantize_threshold(x, 0.5)
    yield "quantize_stochastic (Philox)", 5, True, lambda: be.quantize_stochastic(x, scale, 1, 0, 0, 0)
    yield "philox_bits", 4, True, lambda: be.philox_bits(n, 1, 0, 0, 0)
    yield "pack_2bit", 1.25, False, lambda: be.pack_2bit(trits)
    yield "unpack_2bit", 1.25, False, lambda: be.unpack_2bit(p2, n)
    yield "pack_base3", 1.2, False, lambda: be.pack_base3(trits)
    yield "unpack_base3", 1.2, False, lambda: be.unpack_base3(p3, n)
    yield "trit_bind", 3, False, lambda: be.trit_bind(trits, other)
    # into a reused output (out=): no allocation, no first touch; against the copy bandwidth itself
    out = be.xp.empty(n, dtype=np.int8)
    yield "unpack_2bit (out=)", 1.25, False, lambda: be.unpack_2bit(p2, n, out)
    yield "unpack_base3 (out=)", 1.2, False, lambda: be.unpack_base3(p3, n, out)
    yield "trit_bind (out=)", 3, False, lambda: be.trit_bind(trits, other, out)


def kernel_throughput(n: int, bandwidth: float, backend: str = "numba", repeat: int = 5) -> list[BenchRow]:
    """Each kernel of ``backend`` on ``n`` elements against its limit, measured in the same run; the limits' rows first.

    Memory-bound kernels return freshly allocated outputs, whose first touch
    (page faults, zeroing) a copy into a warm array never pays.  So on the
    host each kernel is measured against its memory twin: a plain parallel
    stream that reads its bytes and writes them into a fresh output of the
    same size; the row's ratio is the twin's time over the kernel's, the
    note gives the plain ``bytes / copy bandwidth`` figure too.  Philox
    kernels on the host are compute-bound: their ratio is elements per second
    over the measured multiply limit (multiplies/s / 5).  On a GPU (memory
    pool, no first touch) every ratio is ``bytes / copy bandwidth``.
    """
    be = get_backend(backend)
    rng = np.random.default_rng(1)
    x = to_device(be, rng.standard_normal(n, dtype=np.float32))
    trits = to_device(be, rng.integers(-1, 2, n, dtype=np.int8))
    other = trits[::-1].copy()
    p2, _ = be.pack_2bit(trits)
    p3, _ = be.pack_base3(trits)
    rows: list[BenchRow] = []
    twins: dict[str, Callable[[], Any]] = {}
    mult_row = None
    if not is_gpu(be):
        rows.append(first_touch(n, bandwidth, repeat))
        _, mult_row = multiply_throughput()
        rows.append(mult_row)
        twins = _twins(x, trits, other, p2, p3)
    philox_rows = []
    for name, nbytes, philox, call in _kernel_cases(be, x, trits, other, p2, p3):
        if name not in twins:
            t = best_time(call, repeat=repeat, sync=device_sync(be))
            rows.append(BenchRow("kernels", name, backend, n, t, nbytes, nbytes * n / t / bandwidth, note="goal 0.8 of copy bandwidth"))
            continue
        t, t_twin = _best_alternating(call, twins[name], repeat)
        copy_only = nbytes * n / t / bandwidth
        memory = f"twin {t_twin * 1e3:.1f} ms ({t_twin / t:.2f}), copy-only {copy_only:.2f}"
        if philox:
            philox_rows.append(BenchRow("kernels", name, backend, n, t, nbytes, note=f"of multiply limit, goal 0.7; {memory}"))
            rows.append(philox_rows[-1])
        else:
            rows.append(BenchRow("kernels", name, backend, n, t, nbytes, t_twin / t, note=f"goal 0.8; {memory}"))
    if mult_row is not None:  # the limit measured again after the kernels: the faster of the two (a busy machine slows either)
        _, again = multiply_throughput()
        if again.seconds < mult_row.seconds:
            mult_row.seconds, mult_row.note = again.seconds, again.note
        for r in philox_rows:
            r.fraction_of_bandwidth = r.gelem_per_s / mult_row.gelem_per_s
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
