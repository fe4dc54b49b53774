"""Phase-training configs: crate defaults, validation, immutability, JSON round trip."""

from __future__ import annotations

import dataclasses

import pytest

from vsaopt.config import TernaryConfig, VSAConfig
from vsaopt.errors import ConfigError
from vsaopt.phase import (
    DeterministicPhaseConfig,
    DeterministicPredictionConfig,
    LossHistoryConfig,
    PhaseConfig,
    PredictionConfig,
)


def _crate_fields(cfg):
    """The config's fields less ``history_compression`` (vsaopt's own, default "none")."""
    d = dataclasses.asdict(cfg)
    assert d.pop("history_compression") == "none"
    return d


def test_crate_defaults():
    assert _crate_fields(PredictionConfig()) == dict(
        history_size=5, prediction_steps=4, momentum=0.9, correction_weight=0.5, min_correlation=0.8
    )
    p = PhaseConfig()
    assert (p.full_steps, p.predict_steps, p.correct_every, p.gradient_accumulation) == (10, 40, 10, 1)
    assert (p.max_grad_norm, p.adaptive_phases, p.loss_threshold) == (1.0, True, 0.1)
    assert p.prediction_config == PredictionConfig() and p.ternary_config == TernaryConfig() and p.vsa_config == VSAConfig()
    d = DeterministicPhaseConfig()
    assert (d.warmup_steps, d.full_steps, d.predict_steps, d.correct_every, d.history_window) == (10, 5, 20, 5, 8)
    assert (d.adaptive_phases, d.loss_threshold, d.max_grad_norm, d.track_loss_history) == (True, 0.1, 1.0, True)
    assert (d.history_decay, d.residual_threshold) == (0.95, 0.5)
    assert _crate_fields(DeterministicPredictionConfig()) == dict(
        warmup_steps=10, history_window=8, prediction_horizon=4, history_decay=0.95, residual_threshold=0.5
    )
    assert dataclasses.asdict(LossHistoryConfig()) == dict(
        max_history=1000, rolling_window=20, spike_threshold=3.0, divergence_threshold=1.2,
        convergence_window=50, convergence_threshold=0.01,
    )


@pytest.mark.parametrize(
    "cls, field, value",
    [
        (PhaseConfig, "correct_every", 0),
        (PhaseConfig, "full_steps", -1),
        (PhaseConfig, "predict_steps", 1.5),
        (PhaseConfig, "loss_threshold", float("nan")),
        (PhaseConfig, "loss_threshold", -0.1),
        (PhaseConfig, "max_grad_norm", 0.0),
        (PhaseConfig, "gradient_accumulation", 0),
        (PhaseConfig, "adaptive_phases", 1),
        (PhaseConfig, "prediction_config", {"history_size": 3}),
        (PredictionConfig, "history_size", 0),
        (PredictionConfig, "momentum", float("inf")),
        (PredictionConfig, "min_correlation", 1.5),
        (DeterministicPhaseConfig, "correct_every", 0),
        (DeterministicPhaseConfig, "history_decay", 1.01),
        (DeterministicPhaseConfig, "residual_threshold", -1.0),
        (DeterministicPhaseConfig, "warmup_steps", True),
        (DeterministicPredictionConfig, "history_decay", -0.1),
        (LossHistoryConfig, "max_history", 0),
        (LossHistoryConfig, "convergence_window", 1),
        (LossHistoryConfig, "divergence_threshold", 0.0),
    ],
)
def test_invalid_values_raise_config_error_naming_the_field(cls, field, value):
    with pytest.raises(ConfigError, match=field):
        cls(**{field: value})


@pytest.mark.parametrize(
    "config",
    [
        PhaseConfig(full_steps=3, predict_steps=7, correct_every=2, prediction_config=PredictionConfig(momentum=0.25)),
        DeterministicPhaseConfig(warmup_steps=0, loss_history_config=LossHistoryConfig(max_history=5), history_decay=1.0),
        DeterministicPredictionConfig(prediction_horizon=0),
        LossHistoryConfig(spike_threshold=-2.0),
    ],
)
def test_json_round_trip_is_exact(config):
    back = type(config).from_json(config.to_json())
    assert back == config and back.to_json() == config.to_json()


def test_configs_are_frozen_and_unknown_keys_rejected():
    cfg = PhaseConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.full_steps = 3  # type: ignore[misc]
    with pytest.raises(ConfigError, match="unknown"):
        PhaseConfig.from_dict({"full_step": 3})
    with pytest.raises(ConfigError):
        PhaseConfig.from_json("{not json")


def test_deterministic_trainer_builds_predictor_config_from_its_fields():
    cfg = DeterministicPhaseConfig(warmup_steps=4, history_window=3, predict_steps=9, history_decay=0.5, residual_threshold=2.0)
    assert cfg.predictor_config() == DeterministicPredictionConfig(4, 3, 9, 0.5, 2.0)
