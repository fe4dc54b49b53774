"""Gathering a real gradient on the GPU: the pieces copied into one flat vector, then the spec'd sums.

Composed of device copies, ``predict_linear`` and the ``dot`` and
``row_sumsq`` kernels, so its results are theirs by construction; not fused
into one pass.
"""

from __future__ import annotations

from vsaopt.backends.numpy.record import gather_with

from .predict import predict_linear
from .vsa import dot, row_sumsq

gather_stats = gather_with(dot, row_sumsq, predict_linear)

KERNELS = {"gather_stats": gather_stats}
