"""Trainer API details: accumulator and compressor attributes, logging, JSON-ready results, enums."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from vsaopt.errors import ConfigError
from vsaopt.phase import (
    DeterministicPhase,
    DeterministicPhaseConfig,
    DeterministicPhaseTrainer,
    PhaseConfig,
    PhaseTrainer,
    TrainingPhase,
)

SHAPES = [("w", (4, 8)), ("b", (4,))]


def test_accumulator_and_compressor_are_built_once_from_the_config(reference):
    from vsaopt.accumulator import TernaryGradientAccumulator
    from vsaopt.compressor import VSAGradientCompressor

    t = PhaseTrainer(SHAPES, PhaseConfig(), backend=reference)
    acc, comp = t.ternary_accumulator, t.vsa_compressor
    assert isinstance(acc, TernaryGradientAccumulator) and acc is t.ternary_accumulator
    assert isinstance(comp, VSAGradientCompressor) and comp is t.vsa_compressor
    t.reset()
    assert t.ternary_accumulator is acc


def test_transitions_are_logged_and_nothing_is_printed(reference, caplog, capsys):
    t = PhaseTrainer(SHAPES, PhaseConfig(full_steps=1, predict_steps=2, correct_every=5), backend=reference)
    with caplog.at_level(logging.DEBUG, logger="vsaopt"):
        for _ in range(4):
            info = t.begin_step()
            if info.needs_backward:
                t.record_full_gradients({n: np.ones(s, np.float32) for n, s in SHAPES})
            else:
                t.get_predicted_gradients()
            t.end_step(1.0)
    assert any("FULL -> PREDICT" in r.getMessage() for r in caplog.records)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_results_are_json_ready(reference):
    t = DeterministicPhaseTrainer(SHAPES, DeterministicPhaseConfig(warmup_steps=1), backend=reference)
    info = t.begin_step()
    t.record_full_gradients({n: np.ones(s, np.float32) for n, s in SHAPES})
    t.end_step(0.5)
    assert json.loads(json.dumps(info.to_dict()))["phase"] == "WARMUP"
    assert json.loads(json.dumps(t.get_stats().to_dict()))["current_loss"] == 0.5
    p = PhaseTrainer(SHAPES, backend=reference)
    p.begin_step()
    p.end_step(2.0)
    assert json.loads(json.dumps(p.get_stats().to_dict()))["phase_avg_losses"] == {"FULL": 2.0}
    assert json.loads(t.loss_history.to_json())[0]["phase"] == "WARMUP"


def test_enums_print_and_compare_by_name():
    assert str(TrainingPhase.CORRECT) == "CORRECT" and repr(TrainingPhase.FULL) == "TrainingPhase.FULL"
    assert str(DeterministicPhase.WARMUP) == "WARMUP" and DeterministicPhase["PREDICT"] is DeterministicPhase.PREDICT
    assert TrainingPhase.FULL != DeterministicPhase.FULL


def test_constructor_arguments_are_checked():
    with pytest.raises(ConfigError):
        PhaseTrainer(SHAPES, DeterministicPhaseConfig(), backend="numpy")
    with pytest.raises(ConfigError):
        DeterministicPhaseTrainer(SHAPES, PhaseConfig(), backend="numpy")
    with pytest.raises(ConfigError):
        PhaseTrainer(SHAPES, backend="no-such-backend")
    t = DeterministicPhaseTrainer(SHAPES, DeterministicPhaseConfig(track_loss_history=False), backend="numpy")
    assert t.loss_history is None and t.param_shapes == SHAPES


def test_phase_trainer_records_into_rows_it_dropped():
    """In steady state a FULL step gathers into a row the predictor no longer uses: two row buffers in all, none allocated."""
    from vsaopt.phase import PhaseConfig, PhaseTrainer

    rng = np.random.default_rng(0)
    trainer = PhaseTrainer([("w", (64, 8)), ("b", (8,))], PhaseConfig.risky_fixed(), backend="numpy")
    addresses, values = [], []
    for step in range(30):
        info = trainer.begin_step()
        if info.needs_backward:
            g = {"w": rng.standard_normal((64, 8)).astype(np.float32), "b": rng.standard_normal(8).astype(np.float32)}
            trainer.record_full_gradients(g)
            newest = trainer._predictor.newest_flat()
            addresses.append(newest.ctypes.data)
            values.append(np.concatenate([g["w"].ravel(), g["b"]]).tobytes() == newest.tobytes())
        else:
            trainer.get_predicted_gradients()
        trainer.end_step(1.0)
    assert all(values) and len(addresses) >= 8
    assert len(set(addresses[2:])) == 2  # alternating between the history row and the one dropped from the last prediction
    assert trainer.predictor_state_bytes == 2 * 4 * (64 * 8 + 8)


def test_a_loss_is_accepted_exactly_when_its_float32_rounding_is_finite():
    """The float fast path and the general path agree at the float32 overflow boundary (2**128 - 2**103 rounds to Inf)."""
    from vsaopt.errors import DTypeError, NonFiniteError
    from vsaopt.phase._scalar import F32_OVERFLOW, check_loss

    below = float(np.nextafter(F32_OVERFLOW, 0.0))
    for v in (below, np.float64(-below), np.float32(3.4028235e38), 7, np.int64(-3), 0.0, -0.0):
        assert check_loss(v) == np.float32(v) and np.isfinite(check_loss(v))
    assert np.signbit(check_loss(-0.0))
    for v in (F32_OVERFLOW, -F32_OVERFLOW, np.float64(1e39), float("nan"), float("inf"), np.float32("nan")):
        with pytest.raises(NonFiniteError, match="loss"):
            check_loss(v)
    for v in (True, "0.5", None, 1j):
        with pytest.raises(DTypeError, match="loss"):
            check_loss(v)
