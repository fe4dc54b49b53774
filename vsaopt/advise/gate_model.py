"""The share of backward passes a gated preset skips, on gradients that follow the noise-and-drift model.

Model: the gradient at step ``t`` over ``B`` samples is ``G_t + n_t``; the
true gradient ``G_t`` keeps its length and turns by ``phi`` radians per
step in one plane (``cos(G_t, G_{t+L}) = cos(L phi)``, the measured drift),
and the noise ``n_t`` is independent between steps, isotropic, with
``E|n_t|^2 / |G_t|^2 = nu`` (:func:`~vsaopt.advise.noise.noise_ratio`).  Two
real gradients ``L`` steps apart then have the expected cosine
``cos(L phi) / (1 + nu)``.

Rather than re-deriving the schedule, :func:`simulated_skip_share` feeds
such gradients (seeded, in :data:`MODEL_DIMENSIONS` dimensions) to the real
trainer of the preset for a whole run, so the gate's rule
``k = clip(floor(q / (s (1 - q))) - 1, 0, predict_steps)``, its running
average, ``min_samples``, warm-up and CORRECT steps act exactly as in
training, and the least-squares predictor's amplification of the noise is
measured, not assumed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._arrays import check_int
from ..errors import ConfigError, NonFiniteError
from ..phase import DeterministicPhaseConfig, DeterministicPhaseTrainer, PhaseConfig, PhaseTrainer

__all__ = ["PRESETS", "MODEL_DIMENSIONS", "expected_cosine", "simulated_skip_share", "preset_trainer"]

#: The gated presets advised on: name -> (trainer class, config factory).
PRESETS: dict[str, tuple[Any, Any]] = {
    "phase": (PhaseTrainer, PhaseConfig.recommended),
    "deterministic": (DeterministicPhaseTrainer, DeterministicPhaseConfig.recommended),
}
#: Dimensions of the model's gradients (the noise's cosine jitter is about ``1 / sqrt`` of it).
MODEL_DIMENSIONS = 256
#: Stream of the model's noise generator.
_MODEL_STREAM = 0x6A7E


def expected_cosine(nu: float, drift_angle: float, lag: int = 1) -> float:
    """``cos(lag * phi) / (1 + nu)``: the expected cosine of two real gradients ``lag`` steps apart.

    Examples
    --------
    >>> expected_cosine(1.0, 0.0), round(expected_cosine(0.0, math.pi / 6, 2), 6), expected_cosine(math.inf, 0.0)
    (0.5, 0.5, 0.0)
    """
    return 0.0 if math.isinf(nu) else math.cos(lag * drift_angle) / (1.0 + nu)


def preset_trainer(preset: str, dims: int = MODEL_DIMENSIONS) -> Any:
    """A trainer of ``preset`` (a key of :data:`PRESETS`) over one parameter of ``dims`` elements (numpy backend)."""
    cls, config = PRESETS[preset]
    return cls([("g", (dims,))], config(), backend="numpy")


def simulated_skip_share(preset: str, nu: float | Sequence[float] | np.ndarray, drift_angle: float | Sequence[float] | np.ndarray, steps: int,
                         seed: int,
                         dims: int = MODEL_DIMENSIONS, stream: int = 0, count_from: int = 0) -> float:
    """Share of ``steps`` steps the gated ``preset`` runs without a backward pass on the model's gradients.

    Parameters
    ----------
    preset : str
        A key of :data:`PRESETS`.
    nu : float >= 0, or one per step
        Noise energy over signal energy of one gradient (``math.inf``: noise only).
    drift_angle : float >= 0, or one per step
        ``phi``: radians the true gradient turns per step.
    steps : int
        Length of the run.
    seed : int
        Seed of the noise (``numpy.random.default_rng``).
    dims : int
        Dimensions of the model's gradients.
    stream : int
        Separates the noise of simulations with one seed.
    count_from : int in [0, steps)
        Only steps from this one on are counted (the earlier ones bring the
        gate to its steady state).

    Examples
    --------
    >>> simulated_skip_share("phase", 0.0, 0.0, 100, seed=0)        # perfectly predictable: 4 of every 5 steps
    0.77
    >>> simulated_skip_share("phase", 4.0, 0.0, 100, seed=0)        # consecutive cosine 0.2: the gate stays shut
    0.0
    >>> simulated_skip_share("phase", 0.0, 0.0, 110, seed=0, count_from=10)   # past the gate's start: 4 of 5
    0.8
    """
    if preset not in PRESETS:
        raise ConfigError(f"preset: expected one of {', '.join(PRESETS)}, got {preset!r}")
    steps = check_int(steps, "steps", 1, 10**7)
    dims = check_int(dims, "dims", 2, 2**20)
    count_from = check_int(count_from, "count_from", 0, steps - 1)
    nus = np.broadcast_to(np.asarray(nu, dtype=np.float64), (steps,))
    angles = np.broadcast_to(np.asarray(drift_angle, dtype=np.float64), (steps,))
    if np.isnan(nus).any() or (nus < 0).any():
        raise ConfigError("nu: expected noise ratios >= 0 (math.inf: noise only), got NaN or a negative value")
    if not np.isfinite(angles).all():
        raise NonFiniteError("drift_angle: expected finite angles")
    trainer = preset_trainer(preset, dims)
    rng = np.random.default_rng([seed, _MODEL_STREAM, stream])
    with np.errstate(invalid="ignore", divide="ignore"):
        signal = np.where(np.isinf(nus), 0.0, 1.0 / np.sqrt(1.0 + nus))
    noise = np.sqrt(1.0 - signal * signal) / math.sqrt(dims)
    angle = np.cumsum(angles) - angles[0]
    skipped = 0
    for t in range(steps):
        info = trainer.begin_step()
        if info.needs_backward:
            g = rng.standard_normal(dims) * noise[t]
            g[0] += signal[t] * math.cos(angle[t])
            g[1] += signal[t] * math.sin(angle[t])
            trainer.record_full_gradients({"g": g.astype(np.float32)})
        else:
            trainer.get_predicted_gradients()
            skipped += t >= count_from
        trainer.end_step(None)
    return skipped / (steps - count_from)
