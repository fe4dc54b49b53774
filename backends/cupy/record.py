"""Recording a real gradient on the GPU: gathering it with the spec'd sums, and a correction's residual update with its statistics.

Composed of device copies and the ``predict_linear``, ``residual_update``,
``dot``, ``row_sumsq`` and ``abs_stats`` kernels, so their results are those
kernels' by construction; not fused into one pass.
"""

from __future__ import annotations

from vsaopt.backends.numpy.record import gather_with, residual_stats_with

from .predict import predict_linear, residual_update
from .reduce import abs_stats
from .vsa import dot, row_sumsq

gather_stats = gather_with(dot, row_sumsq, predict_linear)
residual_stats = residual_stats_with(dot, row_sumsq, predict_linear, residual_update, abs_stats)

KERNELS = {"gather_stats": gather_stats, "residual_stats": residual_stats}
