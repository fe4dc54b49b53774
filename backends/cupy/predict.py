"""Gradient-prediction kernels on the GPU (``predict.cu``): one fused grid-stride kernel each."""

from __future__ import annotations

from typing import Any

from . import _build as b

SOURCE = "predict.cu"
CUDA_NAMES = (
    "vsaopt_predict_linear",
    "vsaopt_momentum_extrapolate",
    "vsaopt_axpy",
    "vsaopt_residual_update",
    "vsaopt_wls_fit",
)


def _f32(*arrays: Any) -> list:
    import cupy

    return [b.as_device(a, cupy.float32) for a in arrays]


def predict_linear(baseline: Any, velocity: Any, residual: Any, dt: float, w: float, out: Any = None) -> Any:
    """Float32 ``(baseline + velocity*dt) + residual*w``, each operation rounded, in that order; 1-D (into ``out`` when given)."""
    import cupy

    bl, v, r = _f32(baseline, velocity, residual)
    n = bl.shape[0]
    if out is None:
        out = cupy.empty(n, dtype=cupy.float32)
    if n:
        b.launch(SOURCE, "vsaopt_predict_linear", n, (bl, v, r, out, b.u64(n), b.f32(dt), b.f32(w)))
    return out


def momentum_extrapolate(prev: Any, curr: Any, momentum: float) -> Any:
    """Float32 ``curr + momentum*(curr - prev)``: difference, product, sum, each rounded; 1-D."""
    import cupy

    p, c = _f32(prev, curr)
    n = c.shape[0]
    out = cupy.empty(n, dtype=cupy.float32)
    if n:
        b.launch(SOURCE, "vsaopt_momentum_extrapolate", n, (p, c, out, b.u64(n), b.f32(momentum)))
    return out


def axpy(x: Any, a: float, y: Any) -> Any:
    """Float32 ``x + a*y``, the product rounded before the sum; 1-D."""
    import cupy

    xs, ys = _f32(x, y)
    n = xs.shape[0]
    out = cupy.empty(n, dtype=cupy.float32)
    if n:
        b.launch(SOURCE, "vsaopt_axpy", n, (xs, ys, out, b.u64(n), b.f32(a)))
    return out


def residual_update(
    residual: Any, actual: Any, baseline: Any, velocity: Any, dt: float, decay: float, one_minus_decay: float,
    out: Any = None, err: Any = None,
) -> tuple[Any, Any]:
    """Float32 ``(decay*r + one_minus_decay*e, e)`` with ``e = actual - (baseline + velocity*dt)``; 1-D (into ``out``, ``err`` when given)."""
    import cupy

    r, g, bl, v = _f32(residual, actual, baseline, velocity)
    n = r.shape[0]
    if out is None:
        out = cupy.empty(n, dtype=cupy.float32)
    if err is None:
        err = cupy.empty(n, dtype=cupy.float32)
    if n:
        args = (r, g, bl, v, out, err, b.u64(n), b.f32(dt), b.f32(decay), b.f32(one_minus_decay))
        b.launch(SOURCE, "vsaopt_residual_update", n, args)
    return out, err


def wls_fit(
    history: Any, rows: Any, w: Any, wt: Any, sum_w: float, sum_wt: float, sum_wt2: float, inv_det: float,
    out: Any = None,
) -> tuple[Any, Any]:
    """Float32 ``(baseline, velocity)`` of the weighted least-squares line through ``history[rows]`` (into ``out`` when given).

    One thread per element; float64 sums from +0.0 in the order of ``rows``.
    """
    import cupy

    hist = b.as_device(history, cupy.float32)
    rows_d = b.as_device(rows, cupy.int64)
    w_d = b.as_device(w, cupy.float64)
    wt_d = b.as_device(wt, cupy.float64)
    n = hist.shape[1]
    base, vel = (cupy.empty(n, dtype=cupy.float32), cupy.empty(n, dtype=cupy.float32)) if out is None else out
    if n:
        args = (hist, rows_d, w_d, wt_d, b.u64(rows_d.shape[0]), b.u64(n),
                b.f64(sum_w), b.f64(sum_wt), b.f64(sum_wt2), b.f64(inv_det), base, vel)
        b.launch(SOURCE, "vsaopt_wls_fit", n, args)
    return base, vel


KERNELS = {
    "predict_linear": predict_linear,
    "momentum_extrapolate": momentum_extrapolate,
    "axpy": axpy,
    "residual_update": residual_update,
    "wls_fit": wls_fit,
}
