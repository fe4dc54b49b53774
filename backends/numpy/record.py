"""Gathering a real gradient: its pieces copied into one flat vector, with the telemetry's sums (reference).

:func:`gather_with` writes the kernel in terms of a backend's ``dot`` and
``row_sumsq``, so its sums are theirs by construction (the cupy backend builds
its kernel the same way).  A linear prediction operand is materialized with
``predict_linear`` first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .predict import predict_linear
from .vsa import dot, row_sumsq

Stats = tuple[float, "float | None", "float | None", "float | None"]


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


gather_stats = gather_with(dot, row_sumsq, predict_linear)

KERNELS = {"gather_stats": gather_stats}
