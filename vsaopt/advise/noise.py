"""The gradient noise scale from gradient norms at two batch sizes (McCandlish et al. 2018, appendix A).

With ``|g_B|^2`` the squared norm of a gradient averaged over ``B`` samples
drawn with replacement, ``E |g_B|^2 = |G|^2 + S / B``, ``G`` the true
gradient and ``S = tr(Sigma)`` the trace of the per-sample gradient
covariance.  Measured at ``B_small < B_big``,

.. math::

    |G|^2 \\approx \\frac{B_{big} |g_{B_{big}}|^2 - B_{small} |g_{B_{small}}|^2}{B_{big} - B_{small}},
    \\qquad
    S \\approx \\frac{|g_{B_{small}}|^2 - |g_{B_{big}}|^2}{1 / B_{small} - 1 / B_{big}}

are unbiased; ``B_simple = S / |G|^2`` is their ratio, taken after averaging
numerator and denominator over the measurement groups (the ratio of one
group's estimates is badly biased).  Its uncertainty is a seeded bootstrap over
the groups.  When the averaged ``|G|^2`` is not positive the noise drowns the
signal at every batch the measurement can resolve: ``B_simple`` is infinite.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from .._arrays import check_int, check_real, check_seed
from ..errors import ConfigError, NonFiniteError, ShapeError

__all__ = ["NoiseScale", "estimate_noise_scale", "noise_ratio", "BOOTSTRAP_RESAMPLES", "INTERVAL_LEVEL"]

#: Bootstrap resamples of the measurement groups.
BOOTSTRAP_RESAMPLES = 400
#: Coverage of the reported interval (its ends are the 10th and 90th percentiles).
INTERVAL_LEVEL = 0.8
#: Stream of the bootstrap's generator (apart from the measurement's draws with the same seed).
_BOOTSTRAP_STREAM = 0xB007


@dataclasses.dataclass(frozen=True)
class NoiseScale:
    """``B_simple`` with its bootstrap interval, and the two unbiased estimates it is the ratio of.

    Attributes
    ----------
    value, low, high : float
        ``B_simple`` in samples and the ends of its interval (``math.inf``: the
        true gradient was not resolved above the noise).
    gradient_sq : float
        Estimate of ``|G|^2`` (may be negative: noise).
    trace : float
        Estimate of ``S = tr(Sigma)`` (may be negative: noise).
    small_batch, big_batch : int
        The two batch sizes.
    groups : int
        Measurement groups averaged.
    level : float
        Coverage of ``[low, high]``.

    Examples
    --------
    >>> ns = estimate_noise_scale([5.0, 5.0], [1.5, 1.5], 1, 8, seed=0)
    >>> ns.value, ns.gradient_sq, ns.trace
    (4.0, 1.0, 4.0)
    """

    value: float
    low: float
    high: float
    gradient_sq: float
    trace: float
    small_batch: int
    big_batch: int
    groups: int
    level: float = INTERVAL_LEVEL

    def to_dict(self) -> dict:
        """JSON-ready dict (an infinite scale as ``None``)."""
        d = dataclasses.asdict(self)
        for k in ("value", "low", "high"):
            d[k] = None if math.isinf(d[k]) else d[k]
        return d

    @classmethod
    def from_dict(cls, data: dict) -> NoiseScale:
        """Inverse of :meth:`to_dict`."""
        d = dict(data)
        for k in ("value", "low", "high"):
            d[k] = math.inf if d[k] is None else float(d[k])
        return cls(**d)


def _ratio(trace: np.ndarray, gradient_sq: np.ndarray) -> np.ndarray:
    """``S / |G|^2``, infinite where ``|G|^2 <= 0``, 0 where ``S <= 0`` (no measurable noise)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(gradient_sq > 0, np.maximum(trace, 0.0) / np.where(gradient_sq > 0, gradient_sq, 1.0), np.inf)
    return r


def _checked_norms(values: Sequence[float], name: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1 or a.size < 2:
        raise ShapeError(f"{name}: expected a sequence of at least 2 squared norms (one per group), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise NonFiniteError(f"{name}: expected finite squared norms, got NaN or Inf")
    if np.any(a < 0):
        raise ConfigError(f"{name}: expected squared norms >= 0, got {float(a.min())}")
    return a


def estimate_noise_scale(small_sq: Sequence[float], big_sq: Sequence[float], small_batch: int, big_batch: int, *,
                         seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES) -> NoiseScale:
    """``B_simple`` from per-group squared gradient norms at two batch sizes, with a bootstrap interval over the groups.

    Parameters
    ----------
    small_sq, big_sq : sequence of float
        Per measurement group, the mean ``|g|^2`` of gradients averaged over
        ``small_batch`` and over ``big_batch`` samples drawn with replacement
        (same length, at least 2 groups).
    small_batch, big_batch : int
        ``1 <= small_batch < big_batch``.
    seed : int
        Seed of the bootstrap (``numpy.random.default_rng``; no global state).
    resamples : int
        Bootstrap resamples (at least 10).

    Returns
    -------
    NoiseScale

    Raises
    ------
    ShapeError, NonFiniteError, ConfigError, DTypeError
        Norms of different lengths, fewer than 2 groups, negative or non-finite
        norms, batch sizes out of order.

    Examples
    --------
    Noise 4 times the signal's energy per sample (``|G|^2 = 1``, ``S = 4``):

    >>> ns = estimate_noise_scale([5.0, 4.6, 5.4], [1.5, 1.4, 1.6], 1, 8, seed=0)
    >>> round(ns.value, 3), ns.low <= ns.value <= ns.high
    (4.0, True)
    >>> estimate_noise_scale([5.0, 5.0], [5.0, 5.0], 1, 8).value     # no signal above the noise... or no noise
    0.0
    >>> estimate_noise_scale([5.0, 5.0], [0.1, 0.1], 1, 8).value     # |G|^2 estimated negative: unresolved
    inf
    """
    small_batch = check_int(small_batch, "small_batch", 1, 2**62)
    big_batch = check_int(big_batch, "big_batch", 1, 2**62)
    if big_batch <= small_batch:
        raise ConfigError(f"big_batch: expected more than small_batch = {small_batch}, got {big_batch}")
    seed = check_seed(seed)
    resamples = check_int(resamples, "resamples", 10, 10**6)
    s = _checked_norms(small_sq, "small_sq")
    b = _checked_norms(big_sq, "big_sq")
    if s.shape != b.shape:
        raise ShapeError(f"small_sq, big_sq: expected one value per group in each, got {s.size} and {b.size}")
    g2 = (big_batch * b - small_batch * s) / (big_batch - small_batch)
    tr = (s - b) / (1.0 / small_batch - 1.0 / big_batch)
    value = float(_ratio(np.array(tr.mean()), np.array(g2.mean())))
    rng = np.random.default_rng([seed, _BOOTSTRAP_STREAM])
    picks = rng.integers(0, s.size, size=(resamples, s.size))
    boot = np.sort(_ratio(tr[picks].mean(axis=1), g2[picks].mean(axis=1)))
    tail = (1.0 - INTERVAL_LEVEL) / 2
    low = float(boot[int(math.floor(tail * (resamples - 1)))])
    high = float(boot[int(math.ceil((1.0 - tail) * (resamples - 1)))])
    return NoiseScale(value, min(low, value), max(high, value), float(g2.mean()), float(tr.mean()),
                      small_batch, big_batch, int(s.size))


def noise_ratio(noise_scale: float, batch: int, n_samples: int | None) -> float:
    """Noise energy over signal energy of a gradient over ``batch`` samples drawn without replacement.

    ``B_noise / B`` times the finite-population factor ``(N - B) / (N - 1)``
    (0 at full batch); ``B_noise / B`` when ``n_samples`` is None.

    Examples
    --------
    >>> noise_ratio(100.0, 50, None), noise_ratio(100.0, 50, 50), round(noise_ratio(100.0, 25, 50), 4)
    (2.0, 0.0, 2.0408)
    >>> noise_ratio(math.inf, 50, 50), noise_ratio(math.inf, 10, 50)
    (0.0, inf)
    """
    check_real(batch, "batch", 1, 2.0**62)
    if n_samples is not None and batch >= n_samples:
        return 0.0
    ratio = noise_scale / batch
    if n_samples is not None and n_samples > 1:
        ratio *= (n_samples - batch) / (n_samples - 1)
    return ratio
