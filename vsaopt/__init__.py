"""vsaopt: phase-based training acceleration with bit-exact ternary and hyperdimensional kernels.

Every public operation gives byte-identical results on every backend (numpy
reference, numba CPU, cupy GPU); see ``spec/SPEC.md``.

Examples
--------
>>> from vsaopt import PhaseTrainer, PhaseConfig, TrainingPhase
>>> trainer = PhaseTrainer([("w", (4, 3))], PhaseConfig(full_steps=2, predict_steps=4), backend="numpy")
>>> str(trainer.begin_step().phase)
'FULL'
"""

from __future__ import annotations

from . import accumulator, compressor, errors, projection, reductions, rng, ternary, vsa
from .benchmarks import fidelity
from .accumulator import OptimizerStats, TernaryGradientAccumulator, TernaryOptimizerWrapper
from .backend import Backend, available_backends, backend_status, get_backend
from .compressor import CompressionStats, VSAGradientCompressor
from .config import TernaryConfig, VSAConfig
from .errors import OptimError
from .projection import SRHTProjection
from .wire import CompressedGradients
from .advise import Advice, advise
from .phase import (
    DeterministicPhase,
    DeterministicPhaseConfig,
    DeterministicPhaseTrainer,
    DeterministicPredictionConfig,
    DeterministicPredictor,
    DeterministicTrainerStats,
    Divergence,
    GradientPredictor,
    LossAnomaly,
    LossHistory,
    LossHistoryConfig,
    LossMeasurement,
    LossStatistics,
    PhaseConfig,
    PhaseTrainer,
    PredictionConfig,
    DeterministicPredictorStats,
    MomentumPredictorStats,
    Spike,
    StepInfo,
    TrainerStats,
    TrainingPhase,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Backend",
    "OptimError",
    "TernaryConfig",
    "VSAConfig",
    "available_backends",
    "backend_status",
    "errors",
    "get_backend",
    "reductions",
    "rng",
    "ternary",
    "vsa",
    "accumulator",
    "compressor",
    "fidelity",
    "projection",
    "TernaryGradientAccumulator",
    "TernaryOptimizerWrapper",
    "OptimizerStats",
    "VSAGradientCompressor",
    "CompressedGradients",
    "CompressionStats",
    "SRHTProjection",
    "PhaseTrainer",
    "DeterministicPhaseTrainer",
    "GradientPredictor",
    "DeterministicPredictor",
    "LossHistory",
    "PhaseConfig",
    "PredictionConfig",
    "DeterministicPhaseConfig",
    "DeterministicPredictionConfig",
    "LossHistoryConfig",
    "TrainingPhase",
    "DeterministicPhase",
    "StepInfo",
    "TrainerStats",
    "DeterministicTrainerStats",
    "MomentumPredictorStats",
    "DeterministicPredictorStats",
    "LossMeasurement",
    "LossStatistics",
    "LossAnomaly",
    "Spike",
    "Divergence",
    "advise",
    "Advice",
]
