"""Phases, step infos and statistics of phase training (enums and frozen dataclasses)."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

__all__ = [
    "TrainingPhase",
    "DeterministicPhase",
    "StepInfo",
    "PredictionTelemetry",
    "TrainerStats",
    "DeterministicTrainerStats",
    "MomentumPredictorStats",
    "DeterministicPredictorStats",
]


class _Phase(enum.Enum):
    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


class TrainingPhase(_Phase):
    """Phase of :class:`~vsaopt.phase.PhaseTrainer`; ``str()`` is the upper-case name.

    Examples
    --------
    >>> str(TrainingPhase.PREDICT), TrainingPhase["FULL"] is TrainingPhase.FULL
    ('PREDICT', True)
    """

    #: Real backward pass; its gradient goes into the predictor's history.
    FULL = 0
    #: Predicted gradient, no backward pass.
    PREDICT = 1
    #: Real backward pass that also measures the prediction error.
    CORRECT = 2


class DeterministicPhase(_Phase):
    """Phase of :class:`~vsaopt.phase.DeterministicPhaseTrainer`; ``str()`` is the upper-case name.

    Examples
    --------
    >>> [str(p) for p in DeterministicPhase]
    ['WARMUP', 'FULL', 'PREDICT', 'CORRECT']
    """

    #: Real backward passes that fill the history before any prediction.
    WARMUP = 0
    FULL = 1
    PREDICT = 2
    CORRECT = 3


@dataclasses.dataclass(frozen=True)
class PredictionTelemetry:
    """How well the gradient history predicted the last real gradient (spec/schedule.md, section 11).

    Measured at every step with a real gradient, before it enters the history;
    no extra backward pass.  Values are float32 numbers as Python floats, None
    where not measured yet.

    Attributes
    ----------
    step : int
        ``total_step`` of the real step measured last (-1 before any).
    samples : int
        Prediction measurements so far (real steps at which a prediction existed).
    prediction_cosine : float or None
        Cosine between the gradient the predictor would have produced for that
        step and the real one.
    norm_ratio : float or None
        ``|predicted| / |real|``.
    consecutive_cosine : float or None
        Cosine of the real gradient with the previous real one.
    rho : float or None
        Exponential average of ``consecutive_cosine``.
    quality : float or None
        Exponential average of ``prediction_cosine`` (what the gate reads).
    noise_scale : float or None
        Gradient noise scale ``B (1 - rho) / rho`` in samples, from the batch size
        given with the gradient; None without one, or when ``rho <= 0`` (noise dominates).
    predict_budget : int
        PREDICT steps allowed after this real step: the gate's ``k`` when gated,
        else the configured PREDICT length.

    Examples
    --------
    >>> PredictionTelemetry().to_dict()["step"]
    -1
    """

    step: int = -1
    samples: int = 0
    prediction_cosine: float | None = None
    norm_ratio: float | None = None
    consecutive_cosine: float | None = None
    rho: float | None = None
    quality: float | None = None
    noise_scale: float | None = None
    predict_budget: int = 0

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class StepInfo:
    """What :meth:`begin_step` decided for this step.

    Attributes
    ----------
    phase : TrainingPhase or DeterministicPhase
    phase_step : int
        Steps already taken in the current phase run (PREDICT and CORRECT share the count).
    total_step : int
        Steps ended so far (0 on the first step).
    cycle : int
        Completed cycles (entries into FULL after the first).
    phase_changed : bool
        This ``begin_step`` changed the phase.
    needs_backward : bool
        The step needs real gradients (FULL, CORRECT, WARMUP).
    telemetry : PredictionTelemetry or None
        The prediction telemetry as of the last measured real-gradient step.
    records : bool
        The step records its real gradients: ``needs_backward``, except on a
        dormant step of a closed gate (:class:`~vsaopt.phase.GateConfig`),
        where the trainer does not read them (``record_full_gradients`` may be
        called and does nothing) and the backward pass's gradients are used as
        they are.
    """

    phase: Any
    phase_step: int
    total_step: int
    cycle: int
    phase_changed: bool
    needs_backward: bool
    telemetry: PredictionTelemetry | None = None
    records: bool = False

    def to_dict(self) -> dict:
        """JSON-ready dict (the phase by name)."""
        d = dataclasses.asdict(self)
        d["phase"] = str(self.phase)
        return d


@dataclasses.dataclass(frozen=True)
class TrainerStats:
    """Counters of a :class:`~vsaopt.phase.PhaseTrainer`; ``str()`` reads like the crate's.

    ``speedup`` is total steps / max(FULL + CORRECT steps, 1) in float32;
    ``phase_avg_losses`` maps each phase with losses to the float32 mean of its
    last 100 losses; ``telemetry`` is the trainer's :class:`PredictionTelemetry`.

    Examples
    --------
    >>> print(TrainerStats(5, 0, 1.0, 5, 0, 0, 10, 40, {}))
    Steps: 5 | Cycles: 0 | Speedup: 1.00x | Full: 5 | Predict: 0 | Correct: 0
    """

    total_steps: int
    cycles: int
    speedup: float
    full_steps: int
    predict_steps: int
    correct_steps: int
    current_full_steps: int
    current_predict_steps: int
    phase_avg_losses: dict
    telemetry: PredictionTelemetry | None = None

    def __str__(self) -> str:
        return (
            f"Steps: {self.total_steps} | Cycles: {self.cycles} | Speedup: {self.speedup:.2f}x | "
            f"Full: {self.full_steps} | Predict: {self.predict_steps} | Correct: {self.correct_steps}"
        )

    def to_dict(self) -> dict:
        """JSON-ready dict (phases by name)."""
        d = dataclasses.asdict(self)
        d["phase_avg_losses"] = {str(k): v for k, v in self.phase_avg_losses.items()}
        return d


@dataclasses.dataclass(frozen=True)
class DeterministicTrainerStats:
    """Counters of a :class:`~vsaopt.phase.DeterministicPhaseTrainer`; ``str()`` reads like the crate's.

    ``telemetry`` is the trainer's :class:`PredictionTelemetry`.

    Examples
    --------
    >>> print(DeterministicTrainerStats(12, 10, 1, 1, 0, 0, 1.0, 0.0, 0.5))
    Steps: 12 | Cycles: 0 | Speedup: 1.00x | Warmup: 10 | Full: 1 | Predict: 1 | Correct: 0
    """

    total_steps: int
    warmup_steps: int
    full_steps: int
    predict_steps: int
    correct_steps: int
    cycles: int
    speedup: float
    mean_prediction_error: float
    current_loss: float
    telemetry: PredictionTelemetry | None = None

    def __str__(self) -> str:
        return (
            f"Steps: {self.total_steps} | Cycles: {self.cycles} | Speedup: {self.speedup:.2f}x | "
            f"Warmup: {self.warmup_steps} | Full: {self.full_steps} | Predict: {self.predict_steps} | "
            f"Correct: {self.correct_steps}"
        )

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class MomentumPredictorStats:
    """Statistics of a :class:`~vsaopt.phase.GradientPredictor` (the crate's ``PredictorStats``; float32 values as Python floats).

    ``state_bytes`` counts the bytes of predictor state held now (history rows,
    last prediction, pending correction); ``state_bytes_per_param`` divides it
    by the number of parameter elements (4.0 is the size of the parameters in float32).

    Examples
    --------
    >>> print(MomentumPredictorStats(3, 0.8, 0.25, 0.25, 2))
    Steps: 3 | Prediction ratio: 80.0% | Mean error: 0.2500 | Recent error: 0.2500
    """

    total_steps: int
    prediction_ratio: float
    mean_error: float
    recent_error: float
    history_size: int
    state_bytes: int = 0
    state_bytes_per_param: float = 0.0

    def __str__(self) -> str:
        return (
            f"Steps: {self.total_steps} | Prediction ratio: {self.prediction_ratio * 100:.1f}% | "
            f"Mean error: {self.mean_error:.4f} | Recent error: {self.recent_error:.4f}"
        )

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class DeterministicPredictorStats:
    """Statistics of a :class:`~vsaopt.phase.DeterministicPredictor` (the crate's ``PredictorStatistics``).

    Attributes
    ----------
    total_steps, full_steps, predicted_steps : int
        Calls of ``record_gradient`` plus ``predict_gradient``; of each.
    mean_abs_error : float
        Exponential average (0.9 / 0.1, float32) of the mean ``|actual - predicted|``
        of each parameter at each correction, parameters in declaration order.
    max_residual : float
        Largest ``|residual|`` element now held (the crate never fills it: always 0).
    early_corrections : int
        Corrections recorded before the prediction horizon elapsed (the crate never counts them).
    state_bytes : int
        Bytes of predictor state held now: history rows, fit, residual.
    state_bytes_per_param : float
        ``state_bytes`` per parameter element (4.0 is the size of the parameters in float32).
    """

    total_steps: int
    full_steps: int
    predicted_steps: int
    mean_abs_error: float
    max_residual: float
    early_corrections: int
    state_bytes: int = 0
    state_bytes_per_param: float = 0.0

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return dataclasses.asdict(self)
