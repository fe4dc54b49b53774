"""Phase training: trainers that skip most backward passes by predicting gradients, as in vsa-optim-rs 0.1.1.

- :class:`PhaseTrainer` (momentum prediction; FULL -> PREDICT <-> CORRECT -> FULL)
- :class:`DeterministicPhaseTrainer` (weighted least-squares prediction; WARMUP first)
- the predictors :class:`GradientPredictor` and :class:`DeterministicPredictor`
- prediction telemetry (:class:`PredictionTelemetry`, measured at every real
  step) and the predictability gate (:class:`GateConfig`)
- :class:`LossHistory`, configs, phases, step infos and statistics

The schedules, the predictor arithmetic and every deliberate difference from
the crate are written in ``spec/schedule.md``.
"""

from .configs import (
    DeterministicPhaseConfig,
    GateConfig,
    DeterministicPredictionConfig,
    LossHistoryConfig,
    PhaseConfig,
    PredictionConfig,
)
from .deterministic_predictor import DeterministicPredictor
from .deterministic_trainer import DeterministicPhaseTrainer
from .loss_history import Divergence, LossAnomaly, LossHistory, LossMeasurement, LossStatistics, Spike
from .momentum_predictor import GradientPredictor
from .phase_trainer import PhaseTrainer
from .types import (
    DeterministicPhase,
    DeterministicTrainerStats,
    DeterministicPredictorStats,
    MomentumPredictorStats,
    PredictionTelemetry,
    StepInfo,
    TrainerStats,
    TrainingPhase,
)

__all__ = [
    "PhaseTrainer",
    "DeterministicPhaseTrainer",
    "GradientPredictor",
    "DeterministicPredictor",
    "LossHistory",
    "PhaseConfig",
    "PredictionConfig",
    "GateConfig",
    "DeterministicPhaseConfig",
    "DeterministicPredictionConfig",
    "LossHistoryConfig",
    "TrainingPhase",
    "DeterministicPhase",
    "StepInfo",
    "PredictionTelemetry",
    "TrainerStats",
    "DeterministicTrainerStats",
    "MomentumPredictorStats",
    "DeterministicPredictorStats",
    "LossMeasurement",
    "LossStatistics",
    "LossAnomaly",
    "Spike",
    "Divergence",
]
