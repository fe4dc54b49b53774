"""Gradient-prediction kernels in numba (same arithmetic as ``backends/numpy/predict.py``).

No ``fastmath``: LLVM then never contracts ``a*b + c`` into a fused
multiply-add, and each float32 operation rounds on its own.  Scalars are cast
to float32 (or float64) inside the kernels so no operation is silently widened.
Inputs of at least :data:`PARALLEL_MIN` elements are split into chunks that run
under ``prange``; chunks are independent outputs, so results never depend on
the thread count.  Each serial kernel works on the index range ``[lo, hi)`` of
the full arrays (no views are created inside a parallel function), with
unsigned indices: a signed loop index makes numba emit negative-index
wraparound checks that stop LLVM from vectorizing (measured 8.5 vs 42 GB/s).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._dispatch import chunk_count, chunk_range, run

#: Elements per chunk of the parallel variants.
CHUNK = 1 << 16


@njit(cache=True)
def _linear(b, v, r, dt, w, out, lo, hi):
    dt32 = np.float32(dt)
    w32 = np.float32(w)
    for i in range(np.uint64(lo), np.uint64(hi)):
        q = b[i] + v[i] * dt32
        out[i] = q + r[i] * w32


@njit(cache=True, parallel=True)
def _linear_par(b, v, r, dt, w, out, start, stop):
    for c in prange(chunk_count(stop - start, CHUNK)):
        lo, hi = chunk_range(c, CHUNK, start, stop)
        _linear(b, v, r, dt, w, out, lo, hi)


def predict_linear(baseline, velocity, residual, dt, w, out=None):
    """``(baseline + velocity*dt) + residual*w`` in float32 (see the reference); into ``out`` when given."""
    if out is None:
        out = np.empty_like(baseline)
    run(out.shape[0], _linear, _linear_par, baseline, velocity, residual, np.float32(dt), np.float32(w), out, 0, out.shape[0])
    return out


@njit(cache=True)
def _momentum(p, c, m, out, lo, hi):
    m32 = np.float32(m)
    for i in range(np.uint64(lo), np.uint64(hi)):
        d = c[i] - p[i]
        out[i] = c[i] + m32 * d


@njit(cache=True, parallel=True)
def _momentum_par(p, c, m, out, start, stop):
    for k in prange(chunk_count(stop - start, CHUNK)):
        lo, hi = chunk_range(k, CHUNK, start, stop)
        _momentum(p, c, m, out, lo, hi)


def momentum_extrapolate(prev, curr, momentum):
    """``d = curr - prev``; ``curr + momentum*d`` in float32."""
    out = np.empty_like(curr)
    run(out.shape[0], _momentum, _momentum_par, prev, curr, np.float32(momentum), out, 0, out.shape[0])
    return out


@njit(cache=True)
def _axpy(x, a, y, out, lo, hi):
    a32 = np.float32(a)
    for i in range(np.uint64(lo), np.uint64(hi)):
        out[i] = x[i] + a32 * y[i]


@njit(cache=True, parallel=True)
def _axpy_par(x, a, y, out, start, stop):
    for k in prange(chunk_count(stop - start, CHUNK)):
        lo, hi = chunk_range(k, CHUNK, start, stop)
        _axpy(x, a, y, out, lo, hi)


def axpy(x, a, y):
    """``x + a*y`` in float32, the product rounded first."""
    out = np.empty_like(x)
    run(out.shape[0], _axpy, _axpy_par, x, np.float32(a), y, out, 0, out.shape[0])
    return out


@njit(cache=True)
def _residual(r, g, b, v, dt, d, o, out, err, lo, hi):
    dt32 = np.float32(dt)
    d32 = np.float32(d)
    o32 = np.float32(o)
    for i in range(np.uint64(lo), np.uint64(hi)):
        q = b[i] + v[i] * dt32
        e = g[i] - q
        err[i] = e
        out[i] = d32 * r[i] + o32 * e


@njit(cache=True, parallel=True)
def _residual_par(r, g, b, v, dt, d, o, out, err, start, stop):
    for k in prange(chunk_count(stop - start, CHUNK)):
        lo, hi = chunk_range(k, CHUNK, start, stop)
        _residual(r, g, b, v, dt, d, o, out, err, lo, hi)


def residual_update(residual, actual, baseline, velocity, dt, decay, one_minus_decay, out=None, err=None):
    """New residual ``decay*r + (1-decay)*(actual - (baseline + velocity*dt))`` and the error, float32 (into ``out``, ``err`` when given)."""
    if out is None:
        out = np.empty_like(residual)
    if err is None:
        err = np.empty_like(residual)
    run(out.shape[0], _residual, _residual_par, residual, actual, baseline, velocity, np.float32(dt), np.float32(decay), np.float32(one_minus_decay), out, err, 0, out.shape[0])
    return out, err


#: Elements of one float64 accumulator tile of the least-squares fit (2 x 16 KiB, L1-resident).
WLS_TILE = 2048


@njit(cache=True, inline="always")
def _wls_rows(hist, rows, w, wt, i, count, s0, s1, t0, m):
    """Add history rows ``rows[i : i + count]`` (in order) of elements ``t0 .. t0 + m - 1`` to the tile's sums.

    Four rows are read side by side in one pass (the tile's sums are loaded
    and stored once for them); fewer are added one pass each.
    """
    zero = np.uint64(0)
    if count == 4:
        r0, r1, r2, r3 = hist[rows[i]], hist[rows[i + 1]], hist[rows[i + 2]], hist[rows[i + 3]]
        w0, w1, w2, w3 = w[i], w[i + 1], w[i + 2], w[i + 3]
        u0, u1, u2, u3 = wt[i], wt[i + 1], wt[i + 2], wt[i + 3]
        for j in range(zero, m):
            e = t0 + j
            g0, g1, g2, g3 = np.float64(r0[e]), np.float64(r1[e]), np.float64(r2[e]), np.float64(r3[e])
            s0[j] = (((s0[j] + w0 * g0) + w1 * g1) + w2 * g2) + w3 * g3
            s1[j] = (((s1[j] + u0 * g0) + u1 * g1) + u2 * g2) + u3 * g3
        return
    for q in range(i, i + count):
        row = hist[rows[q]]
        wq, uq = w[q], wt[q]
        for j in range(zero, m):
            g = np.float64(row[t0 + j])
            s0[j] = s0[j] + wq * g
            s1[j] = s1[j] + uq * g


@njit(cache=True, inline="always")
def _wls4(hist, rows, w, wt, a, b, c, inv, base, vel, lo, hi):
    """Exactly four rows: both sums of an element in registers, no tile (the recommended preset's fit)."""
    r0, r1, r2, r3 = hist[rows[0]], hist[rows[1]], hist[rows[2]], hist[rows[3]]
    w0, w1, w2, w3 = w[0], w[1], w[2], w[3]
    u0, u1, u2, u3 = wt[0], wt[1], wt[2], wt[3]
    for e in range(np.uint64(lo), np.uint64(hi)):
        g0, g1, g2, g3 = np.float64(r0[e]), np.float64(r1[e]), np.float64(r2[e]), np.float64(r3[e])
        s0 = (((0.0 + w0 * g0) + w1 * g1) + w2 * g2) + w3 * g3  # from +0.0, as the spec: -0.0 products give +0.0
        s1 = (((0.0 + u0 * g0) + u1 * g1) + u2 * g2) + u3 * g3
        base[e] = np.float32((c * s0 - b * s1) * inv)
        vel[e] = np.float32((a * s1 - b * s0) * inv)


@njit(cache=True)
def _wls(hist, rows, w, wt, a, b, c, inv, base, vel, lo, hi):
    """Tiles of elements; within a tile, history rows in order, four at a time (unsigned indices: the loops vectorize)."""
    k = rows.shape[0]
    if k == 4:
        _wls4(hist, rows, w, wt, a, b, c, inv, base, vel, lo, hi)
        return
    s0 = np.empty(WLS_TILE, dtype=np.float64)
    s1 = np.empty(WLS_TILE, dtype=np.float64)
    zero = np.uint64(0)
    for t0 in range(np.uint64(lo), np.uint64(hi), np.uint64(WLS_TILE)):
        m = min(np.uint64(WLS_TILE), np.uint64(hi) - t0)
        for j in range(zero, m):
            s0[j] = 0.0
            s1[j] = 0.0
        i = 0
        while i < k:
            count = min(4, k - i)
            _wls_rows(hist, rows, w, wt, i, count, s0, s1, t0, m)
            i += count
        for j in range(zero, m):
            base[t0 + j] = np.float32((c * s0[j] - b * s1[j]) * inv)
            vel[t0 + j] = np.float32((a * s1[j] - b * s0[j]) * inv)


@njit(cache=True, parallel=True)
def _wls_par(hist, rows, w, wt, a, b, c, inv, base, vel, start, stop):
    for k in prange(chunk_count(stop - start, CHUNK)):
        lo, hi = chunk_range(k, CHUNK, start, stop)
        _wls(hist, rows, w, wt, a, b, c, inv, base, vel, lo, hi)


def wls_fit(history, rows, w, wt, sum_w, sum_wt, sum_wt2, inv_det, out=None):
    """Weighted least-squares baseline and velocity, float64 accumulation in row order (see the reference; into ``out`` when given)."""
    n = history.shape[1]
    base, vel = (np.empty(n, dtype=np.float32), np.empty(n, dtype=np.float32)) if out is None else out
    run(
        n,
        _wls,
        _wls_par,
        history,
        np.ascontiguousarray(rows, dtype=np.int64),
        np.ascontiguousarray(w, dtype=np.float64),
        np.ascontiguousarray(wt, dtype=np.float64),
        float(sum_w),
        float(sum_wt),
        float(sum_wt2),
        float(inv_det),
        base,
        vel,
        0,
        n,
    )
    return base, vel


KERNELS = {
    "predict_linear": predict_linear,
    "momentum_extrapolate": momentum_extrapolate,
    "axpy": axpy,
    "residual_update": residual_update,
    "wls_fit": wls_fit,
}
