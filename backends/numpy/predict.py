"""Gradient-prediction kernels of the reference backend (spec/schedule.md, "Predictor arithmetic").

Every float32 kernel rounds after each single operation, in the order written
in its docstring; nothing is contracted into a fused multiply-add (numpy's
float32 ufuncs round each operation on its own).  The least-squares
accumulation is float64, one history row after another, starting from +0.0.
"""

from __future__ import annotations

import numpy as np

#: Overflow to +/-Inf is the IEEE result the spec asks for; numpy must not warn about it.
_quiet = np.errstate(over="ignore", invalid="ignore", under="ignore")


@_quiet
def predict_linear(baseline: np.ndarray, velocity: np.ndarray, residual: np.ndarray, dt: float, w: float,
                   out: np.ndarray | None = None) -> np.ndarray:
    """Fused linear prediction, float32: ``out = (baseline + velocity*dt) + residual*w``.

    Order: ``p = velocity*dt``; ``q = baseline + p``; ``s = residual*w``; ``out = q + s``,
    each rounded to float32; ``dt`` and ``w`` are float32 scalars.  Written into
    ``out`` (float32, not overlapping the inputs) when given, else a new array.
    """
    dt32, w32 = np.float32(dt), np.float32(w)
    out = np.multiply(velocity, dt32, out=out)
    np.add(baseline, out, out=out)
    s = np.multiply(residual, w32)
    np.add(out, s, out=out)
    return out


@_quiet
def momentum_extrapolate(prev: np.ndarray, curr: np.ndarray, momentum: float) -> np.ndarray:
    """Momentum extrapolation, float32: ``d = curr - prev``; ``out = curr + momentum*d``."""
    m32 = np.float32(momentum)
    d = np.subtract(curr, prev)
    np.multiply(d, m32, out=d)
    np.add(curr, d, out=d)
    return d


@_quiet
def axpy(x: np.ndarray, a: float, y: np.ndarray) -> np.ndarray:
    """``out = x + a*y`` in float32: ``p = a*y`` rounded, then ``x + p`` rounded."""
    p = np.multiply(y, np.float32(a))
    np.add(x, p, out=p)
    return p


@_quiet
def residual_update(
    residual: np.ndarray,
    actual: np.ndarray,
    baseline: np.ndarray,
    velocity: np.ndarray,
    dt: float,
    decay: float,
    one_minus_decay: float,
    out: np.ndarray | None = None,
    err: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Residual of a correction step, float32; returns ``(new_residual, error)``.

    Order: ``p = velocity*dt``; ``q = baseline + p``; ``error = actual - q``;
    ``a = decay*residual``; ``b = one_minus_decay*error``; ``new_residual = a + b``.
    Written into ``out`` (which may be ``residual`` itself) and ``err`` (not
    overlapping any input) when given, else into new arrays.
    """
    dt32, d32, o32 = np.float32(dt), np.float32(decay), np.float32(one_minus_decay)
    q = np.multiply(velocity, dt32)
    np.add(baseline, q, out=q)
    error = np.subtract(actual, q, out=err)
    b = np.multiply(error, o32)
    a = np.multiply(residual, d32, out=out)
    np.add(a, b, out=a)
    return a, error


@_quiet
def wls_fit(
    history: np.ndarray,
    rows: np.ndarray,
    w: np.ndarray,
    wt: np.ndarray,
    sum_w: float,
    sum_wt: float,
    sum_wt2: float,
    inv_det: float,
    out: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares line through the history rows; returns float32 ``(baseline, velocity)``.

    ``history`` is float32 ``(cap, n)``; ``rows`` int64 ``(k,)`` lists the rows to use,
    oldest first; ``w`` and ``wt`` are their float64 weights ``w_i`` and ``w_i*t_i``.
    Per element, in float64 from +0.0 and row order: ``S0 += w_i*g_i``, ``S1 += wt_i*g_i``
    (product rounded, then sum rounded); then
    ``baseline = f32((sum_wt2*S0 - sum_wt*S1) * inv_det)`` and
    ``velocity = f32((sum_w*S1 - sum_wt*S0) * inv_det)``, each product rounded to
    float64 before the subtraction.  Written into ``out = (baseline, velocity)``
    (float32 ``(n,)`` arrays not overlapping ``history``) when given.
    """
    n = history.shape[1]
    s0 = np.zeros(n, dtype=np.float64)
    s1 = np.zeros(n, dtype=np.float64)
    for i in range(rows.shape[0]):
        g = history[int(rows[i])].astype(np.float64)
        s0 += np.float64(w[i]) * g
        s1 += np.float64(wt[i]) * g
    a, b, c, inv = np.float64(sum_w), np.float64(sum_wt), np.float64(sum_wt2), np.float64(inv_det)
    baseline = ((c * s0 - b * s1) * inv).astype(np.float32)
    velocity = ((a * s1 - b * s0) * inv).astype(np.float32)
    if out is None:
        return baseline, velocity
    out[0][...] = baseline
    out[1][...] = velocity
    return out


KERNELS = {
    "predict_linear": predict_linear,
    "momentum_extrapolate": momentum_extrapolate,
    "axpy": axpy,
    "residual_update": residual_update,
    "wls_fit": wls_fit,
}
