"""Recording a real gradient (reference): its gathering with the telemetry's sums, and a correction's residual update with its statistics.

:func:`gather_with` and :func:`residual_stats_with` write the kernels in terms
of a backend's ``dot``, ``row_sumsq``, ``predict_linear``, ``residual_update``
and ``abs_stats``, so their results are those kernels' by construction (the
cupy backend builds its kernels the same way).  A linear prediction operand
is materialized with ``predict_linear`` first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vsaopt.errors import DTypeError, ShapeError

from .predict import predict_linear, residual_update
from .reduce import abs_stats
from .vsa import dot, row_sumsq

Stats = tuple[float, "float | None", "float | None", "float | None"]


def check_gather_operands(pieces: Sequence[Any], out: Any, prev: Any | None, pred: Any) -> None:
    """The checks of ``gather_stats`` (SPEC.md §4), shared by every backend: float32 operands of ``len(out)`` elements.

    Raises
    ------
    ShapeError
        The pieces do not add up to ``out``, or ``prev`` / ``pred`` / a linear
        operand has another length than ``out``.
    DTypeError
        ``out``, ``prev``, ``pred`` or a linear operand is not float32.
    """
    n = int(out.shape[0])
    total = sum(int(p.shape[0]) for p in pieces)
    if total != n:
        raise ShapeError(f"gather_stats: the pieces hold {total} elements, out has {n}")
    named = [("out", out), ("prev", prev)]
    if isinstance(pred, tuple):
        named += list(zip(("baseline", "velocity", "residual"), pred[:3]))
    else:
        named.append(("pred", pred))
    for name, a in named:
        if a is None:
            continue
        if a.dtype != np.float32:
            raise DTypeError(f"gather_stats: {name} must be float32, got {a.dtype}")
        if a.ndim != 1 or int(a.shape[0]) != n:
            raise ShapeError(f"gather_stats: {name} must have shape ({n},), got {tuple(a.shape)}")


def gather_with(dot: Callable[[Any, Any], Any], row_sumsq: Callable[[Any], Any],
                predict_linear: Callable[..., Any]) -> Callable[..., Stats]:
    """The ``gather_stats`` kernel composed of copies and the given ``dot``, ``row_sumsq`` and ``predict_linear`` kernels."""

    def gather_stats(pieces: Sequence[Any], out: Any, prev: Any | None, pred: Any) -> Stats:
        """Concatenate float32 ``pieces`` into ``out``; ``S(x*x)``, ``S(x*prev)``, ``S(x*pred)``, ``S(pred*pred)`` of it.

        ``x`` is the concatenation; each sum is the spec's (``row_sumsq`` and
        ``dot`` of ``x``); a sum whose operand is None is None.  ``pred`` is
        None, a float32 array, or ``(baseline, velocity, residual, dt, w)``
        standing for ``predict_linear`` of them.
        """
        check_gather_operands(pieces, out, prev, pred)
        if isinstance(pred, tuple):
            pred = predict_linear(*pred)
        off = 0
        for p in pieces:
            out[off : off + p.shape[0]] = p
            off += p.shape[0]
        x = out.reshape(1, -1)
        sumsq = float(row_sumsq(x)[0])
        dot_prev = None if prev is None else float(dot(x, prev.reshape(1, -1))[0, 0])
        dot_pred = sumsq_pred = None
        if pred is not None:
            dot_pred = float(dot(x, pred.reshape(1, -1))[0, 0])
            sumsq_pred = float(row_sumsq(pred.reshape(1, -1))[0])
        return sumsq, dot_prev, dot_pred, sumsq_pred

    return gather_stats


ResidualStats = tuple[float, float, np.ndarray, np.ndarray]


def segment_bounds(bounds: Any, n: int) -> np.ndarray:
    """``bounds`` as host int64 ``[s + 1]``, checked to run from 0 to ``n`` without decreasing.

    Raises
    ------
    ShapeError
        Otherwise (a decreasing bound would make a segment of negative length).
    """
    cuts = np.ascontiguousarray(bounds, dtype=np.int64)
    if cuts.ndim != 1 or cuts.shape[0] < 1 or cuts[0] != 0 or cuts[-1] != n or bool((cuts[1:] < cuts[:-1]).any()):
        raise ShapeError(f"bounds: expected segment bounds increasing from 0 to {n}, got {cuts.tolist()[:8]}")
    return cuts


def residual_stats_with(dot: Callable[[Any, Any], Any], row_sumsq: Callable[[Any], Any], predict_linear: Callable[..., Any],
                        residual_update: Callable[..., Any], abs_stats: Callable[[Any], Any]) -> Callable[..., ResidualStats]:
    """The ``residual_stats`` kernel composed of the given ``dot``, ``row_sumsq``, ``predict_linear``, ``residual_update`` and ``abs_stats``."""

    def residual_stats(residual: Any, actual: Any, baseline: Any, velocity: Any, dt: float, w: float, decay: float,
                       one_minus_decay: float, bounds: Any) -> ResidualStats:
        """A correction's residual update in place, with the prediction's sums and each segment's error and residual statistics.

        With ``pred = predict_linear(baseline, velocity, residual, dt, w)`` and
        ``(r', e) = residual_update(residual, actual, baseline, velocity, dt,
        decay, one_minus_decay)`` (both of the residual before the update):
        ``residual`` becomes ``r'``; returned are ``S(actual*pred)``,
        ``S(pred*pred)`` and, for each segment ``[bounds[i], bounds[i+1])``,
        the ``abs_stats`` sum of ``e`` (float64 array) and the ``abs_stats``
        bit maximum of ``r'`` (uint32 array).
        """
        cuts = segment_bounds(bounds, actual.shape[0]).tolist()
        pred = predict_linear(baseline, velocity, residual, dt, w)
        new, err = residual_update(residual, actual, baseline, velocity, dt, decay, one_minus_decay)
        x, p = actual.reshape(1, -1), pred.reshape(1, -1)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowed prediction: IEEE Inf and NaN sums, as specified
            dot_pred, sumsq_pred = float(dot(x, p)[0, 0]), float(row_sumsq(p)[0])
        segments = list(zip(cuts, cuts[1:]))
        err_abs = np.array([abs_stats(err[lo:hi])[0] for lo, hi in segments], dtype=np.float64)
        res_bits = np.array([abs_stats(new[lo:hi])[1] for lo, hi in segments], dtype=np.uint32)
        residual[...] = new
        return dot_pred, sumsq_pred, err_abs, res_bits

    return residual_stats


gather_stats = gather_with(dot, row_sumsq, predict_linear)
residual_stats = residual_stats_with(dot, row_sumsq, predict_linear, residual_update, abs_stats)

KERNELS = {"gather_stats": gather_stats, "residual_stats": residual_stats}
