"""Prediction telemetry and the predictability gate (spec/schedule.md, section 11).

At every real-gradient step a trainer takes, in the pass that gathers the
real gradient (kernel ``gather_stats``), its spec'd float64 sums with the
prediction its predictor would have made for that step and with the previous
real gradient, and hands them to its :class:`PredictionMonitor` as
:class:`RealGradientSums`.  The monitor turns them into cosines, keeps float32
exponential averages, and, when the gate is enabled, turns the measured
quality into the length of the next PREDICT run (:func:`gate_budget`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..checkpoint import Fields
from ._scalar import F32
from .configs import GateConfig
from .dormancy import DormantSampler
from .types import PredictionTelemetry

__all__ = ["PredictionMonitor", "RealGradientSums", "spec_cosine", "flat_cosine", "squared_norm", "gate_budget"]

#: Order of the float32 values in a saved monitor (NaN: not measured).
_VALUES = ("prediction_cosine", "norm_ratio", "consecutive_cosine", "rho", "quality")


def spec_cosine(dot: float, sumsq_a: float, sumsq_b: float) -> np.float32:
    """``f32(clamp(dot / (sqrt(A) * sqrt(B)), -1, 1))`` in float64; 0 when ``A`` or ``B`` is 0 or any input is not finite.

    Examples
    --------
    >>> float(spec_cosine(2.0, 4.0, 1.0)), float(spec_cosine(1.0, 0.0, 1.0))
    (1.0, 0.0)
    """
    if not (math.isfinite(dot) and math.isfinite(sumsq_a) and math.isfinite(sumsq_b)) or sumsq_a <= 0 or sumsq_b <= 0:
        return F32(0.0)
    c = dot / (math.sqrt(sumsq_a) * math.sqrt(sumsq_b))
    return F32(min(1.0, max(-1.0, c)))


def _dot(be: Any, a: Any, b: Any) -> float:
    return float(be.dot(a.reshape(1, -1), b.reshape(1, -1))[0, 0])


def squared_norm(be: Any, a: Any) -> float:
    """``S(a*a)`` of a flat float32 array (kernel ``row_sumsq``): infinite or NaN exactly when ``a`` holds Inf or NaN."""
    return float(be.row_sumsq(a.reshape(1, -1))[0])


def flat_cosine(be: Any, a: Any, b: Any) -> np.float32:
    """:func:`spec_cosine` of two flat float32 arrays of backend ``be`` (kernels ``dot`` and ``row_sumsq``).

    Examples
    --------
    >>> import numpy as np
    >>> from vsaopt.backend import get_backend
    >>> float(flat_cosine(get_backend("numpy"), np.array([1, 0], np.float32), np.array([1, 1], np.float32)))
    0.7071067690849304
    """
    return spec_cosine(_dot(be, a, b), squared_norm(be, a), squared_norm(be, b))


def gate_budget(quality: np.float32 | None, last: np.float32 | None, samples: int, config: GateConfig, cap: int) -> int:
    """PREDICT steps the gate allows: ``clip(floor(q / (s (1 - q))) - 1, 0, cap)`` with ``q = min(quality, last)``.

    0 with fewer than ``config.min_samples`` measurements or ``q <= 0``; ``cap`` when ``q >= 1``.

    Examples
    --------
    >>> cfg = GateConfig(enabled=True, min_samples=1)
    >>> [gate_budget(F32(q), F32(q), 5, cfg, 8) for q in (0.5, 0.7, 0.8, 0.9, 0.99)]
    [0, 1, 3, 7, 8]
    """
    if quality is None or last is None or samples < config.min_samples:
        return 0
    q = float(min(quality, last))
    if q <= 0.0:
        return 0
    if q >= 1.0:
        return cap
    x = q / (float(F32(config.safety)) * (1.0 - q))
    return int(max(0, min(cap, math.floor(min(x, 2.0**62)) - 1)))


@dataclass(frozen=True)
class RealGradientSums:
    """The spec'd float64 sums one measurement reads (kernel ``gather_stats``; None: no such operand).

    ``dot_predicted`` and ``predicted_sumsq`` are ``dot_previous`` and
    ``previous_sumsq`` when the prediction is the previous gradient itself.
    """

    real_sumsq: float
    dot_previous: float | None = None
    previous_sumsq: float = 0.0
    dot_predicted: float | None = None
    predicted_sumsq: float = 0.0


class PredictionMonitor:
    """Measures each real gradient against the prediction and the previous real gradient; keeps the averages.

    Parameters
    ----------
    config : GateConfig
        Its ``ema_decay`` weights both averages; the rest is the gate's.
    backend : Backend
        Runs the spec'd sums.
    primes : int >= 1
        Records the trainer's prediction reads: the unmeasured records of a dormant sample.
    """

    def __init__(self, config: GateConfig, backend: Any, primes: int = 1) -> None:
        self.config = config
        self._be = backend
        self.dormancy = DormantSampler(config, primes)
        d = F32(config.ema_decay)
        self._decay, self._weight = d, F32(1.0 - float(d))
        self.reset()

    def reset(self) -> None:
        """Forget every measurement."""
        self._step = -1
        self._samples = 0
        self._values: dict[str, np.float32 | None] = dict.fromkeys(_VALUES)
        self._prev_sumsq: float | None = None  # |previous real gradient|^2, reused by the next measurement
        self._batch: int | None = None
        self._budget = 0
        self._record = PredictionTelemetry()
        self.dormancy.reset()

    @property
    def samples(self) -> int:
        """Prediction measurements so far."""
        return self._samples

    @property
    def telemetry(self) -> PredictionTelemetry:
        """The measurements as of the last real step."""
        return self._record

    def _make_record(self) -> PredictionTelemetry:
        v = {k: None if x is None else float(x) for k, x in self._values.items()}
        return PredictionTelemetry(self._step, self._samples, v["prediction_cosine"], v["norm_ratio"], v["consecutive_cosine"],
                                   v["rho"], v["quality"], self._noise_scale(), self._budget)

    def _noise_scale(self) -> float | None:
        rho = self._values["rho"]
        if self._batch is None or rho is None or rho <= 0:
            return None
        r = float(rho)
        return self._batch * (1.0 - r) / r

    def _average(self, name: str, x: np.float32, fresh: bool) -> None:
        """``x`` first (or ``fresh``), then ``clamp(f32(f32(D * old) + f32(O * x)), -1, 1)``."""
        old = self._values[name]
        self._values[name] = x if old is None or fresh else F32(min(1.0, max(-1.0, F32(F32(self._decay * old) + F32(self._weight * x)))))

    def previous_sumsq(self, previous: Any) -> float:
        """``S(previous*previous)``: kept from the last measurement (its ``G``), computed only when none is kept."""
        return squared_norm(self._be, previous) if self._prev_sumsq is None else self._prev_sumsq

    def prime(self, real_sumsq: float) -> None:
        """A dormant sample's unmeasured record: only its ``|g|^2`` is kept, as the next measurement's ``A``."""
        self._prev_sumsq = real_sumsq
        self.dormancy.primed()

    def _wakes(self, budget: int) -> bool:
        """Whether a measurement ends dormancy: it opened the gate, or its prediction cosine alone would."""
        last = self._values["prediction_cosine"]
        return budget > 0 or gate_budget(last, last, self._samples, self.config, 1) > 0

    def measure(self, sums: RealGradientSums, *, step: int, batch_size: int | None, cap: int) -> int:
        """Measure one real gradient from its spec'd sums; returns the PREDICT budget (the gate's when enabled, else ``cap``)."""
        g2 = sums.real_sumsq
        v = self._values
        fresh = self.dormancy.gap > 0  # a dormant sample: the unmeasured steps before it leave the old rho stale
        if sums.dot_previous is not None:
            consecutive = spec_cosine(sums.dot_previous, g2, sums.previous_sumsq)
            v["consecutive_cosine"] = consecutive
            self._average("rho", consecutive, fresh)
        if sums.dot_predicted is not None:
            p2 = sums.predicted_sumsq
            cos = spec_cosine(sums.dot_predicted, p2, g2)
            v["prediction_cosine"] = cos
            ratio = math.sqrt(p2) / math.sqrt(g2) if g2 > 0 and math.isfinite(p2) else math.nan
            v["norm_ratio"] = F32(ratio) if math.isfinite(ratio) and ratio <= 3.0e38 else None
            self._average("quality", cos, False)  # the gate's average keeps its memory: it resumes as it recovers
            self._samples += 1
        self._prev_sumsq = g2
        self._step = step
        self._batch = batch_size
        if self.config.enabled:
            cap = gate_budget(v["quality"], v["prediction_cosine"], self._samples, self.config, cap)
            if sums.dot_predicted is not None:
                self.dormancy.after_measurement(self._wakes(cap))
        self._budget = cap
        self._record = self._make_record()
        return cap

    # --- state -----------------------------------------------------------------

    def export_state(self) -> tuple[dict, dict]:
        """``(header, arrays)``: counters, batch size, budget; the float32 values (NaN: none) and ``|previous|^2``."""
        header = {"step": self._step, "samples": self._samples, "batch_size": self._batch or 0, "budget": self._budget,
                  "dormancy": self.dormancy.export_state()}
        values = np.array([np.nan if self._values[k] is None else self._values[k] for k in _VALUES], dtype=np.float32)
        prev = np.array(np.nan if self._prev_sumsq is None else self._prev_sumsq, dtype=np.float64)
        return header, {"values": values, "prev_sumsq": prev}

    def import_state(self, f: Fields, total_step: int, cap: int) -> Callable[[], None]:
        """Validate a state of :meth:`export_state` of a trainer at ``total_step``; the returned function installs it."""
        step = f.integer("step", -1, total_step)
        samples = f.integer("samples", 0, max(total_step + 1, 0))
        batch = f.integer("batch_size", 0, 2**62)
        budget = f.integer("budget", 0, cap)
        values = f.array("values", np.float32, (len(_VALUES),), finite=False)
        prev = float(f.array("prev_sumsq", np.float64, (), finite=False))
        cosines = [values[i] for i in (0, 2, 3, 4)]
        f.require(all(np.isnan(c) or -1.0 <= c <= 1.0 for c in cosines), "cosines outside [-1, 1]")
        f.require(np.isnan(values[1]) or 0.0 <= values[1] < np.inf, "norm ratio negative or infinite")
        f.require(math.isnan(prev) or 0.0 <= prev < math.inf, "|previous|^2 negative or infinite")
        f.require((step == -1) == (math.isnan(prev)), "|previous|^2 exists exactly when a step was measured")
        install_dormancy = self.dormancy.import_state(f.sub("dormancy")) if "dormancy" in f.header else self.dormancy.reset

        def install() -> None:
            self._step, self._samples, self._budget = step, samples, budget
            self._batch = batch or None
            self._values = {k: None if np.isnan(x) else F32(x) for k, x in zip(_VALUES, values)}
            self._prev_sumsq = None if math.isnan(prev) else prev
            self._record = self._make_record()
            install_dormancy()

        return install
