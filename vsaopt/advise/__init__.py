"""Will skipping backward passes pay on *this* model, and at what batch size? (:func:`advise`)

A short, bounded measurement on the user's model and data: the gated
``recommended()`` presets' own trainers on its training steps, the gradient
noise scale (McCandlish et al. 2018, with an interval), the drift of the
gradient between training steps, and the consecutive-gradient cosine the
gate reads; from them, per batch size, the share of backward passes the
presets would skip, with a band, and a one-line verdict.

- :mod:`vsaopt.advise.noise`: the unbiased two-batch estimator of ``B_simple``;
- :mod:`vsaopt.advise.shadow`: the presets' trainers beside the measurement's steps;
- :mod:`vsaopt.advise.extrapolate`: the measured batch's share, the rest of
  the run extrapolated from the gate's mechanics;
- :mod:`vsaopt.advise.gate_model`: the presets' trainers run on gradients of
  the noise-and-drift model (the other batch sizes);
- :mod:`vsaopt.advise.model_error`: the model rows' bands widened by its checked error;
- :mod:`vsaopt.advise.measure`: :func:`advise` (framework-free); the PyTorch
  front end is :func:`vsaopt.torch.advise`;
- :mod:`vsaopt.advise.result`: :class:`Advice` (a table as ``str``, JSON, plot data).

Nothing here prints or plots; ``vsaopt advise`` does.
"""

from .measure import MAX_MEASURED_STEPS, advise, batch_ladder
from .noise import NoiseScale, estimate_noise_scale, noise_ratio
from .result import PAYS_SHARE, Advice, BatchAdvice, ShareBand

__all__ = ["advise", "Advice", "BatchAdvice", "ShareBand", "NoiseScale", "estimate_noise_scale", "noise_ratio",
           "batch_ladder", "PAYS_SHARE", "MAX_MEASURED_STEPS"]
