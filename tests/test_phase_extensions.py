"""vsaopt's extensions of the crate's phase-training API: ``end_step(None)`` and the recommended presets."""

import numpy as np
import pytest

from vsaopt.phase import (
    DeterministicPhase,
    DeterministicPhaseConfig,
    DeterministicPhaseTrainer,
    PhaseConfig,
    PhaseTrainer,
    TrainingPhase,
)


def _drive(trainer, losses):
    """Run one step per entry of ``losses`` (None: no loss measured); return the phases."""
    phases = []
    for k, loss in enumerate(losses):
        info = trainer.begin_step()
        phases.append(info.phase)
        if info.needs_backward:
            trainer.record_full_gradients({"w": np.full(3, 1.0 + 0.1 * k, np.float32)})
        else:
            trainer.get_predicted_gradients()
        trainer.end_step(loss)
    return phases


def test_phase_trainer_end_step_none_counts_the_step_but_no_loss():
    t = PhaseTrainer([("w", (3,))], PhaseConfig(full_steps=2, predict_steps=4, correct_every=10), backend="numpy")
    losses = [1.0, 2.0, None, None, 5.0, None]
    phases = _drive(t, losses)
    stats = t.get_stats()
    assert stats.total_steps == 6 and t.total_step == 6
    assert stats.predict_steps == phases.count(TrainingPhase.PREDICT) == 4
    # only the measured PREDICT loss (5.0) enters the PREDICT average
    assert stats.phase_avg_losses[TrainingPhase.PREDICT] == 5.0
    assert stats.phase_avg_losses[TrainingPhase.FULL] == 1.5
    assert [float(v) for v in t.state_dict()["arrays"]["recent_losses"]] == [1.0, 2.0, 5.0]


def test_phase_trainer_schedule_does_not_depend_on_unmeasured_losses_without_adaptation():
    cfg = PhaseConfig(full_steps=3, predict_steps=5, correct_every=2, adaptive_phases=False)
    a = _drive(PhaseTrainer([("w", (3,))], cfg, backend="numpy"), [1.0] * 40)
    b = _drive(PhaseTrainer([("w", (3,))], cfg, backend="numpy"), [None] * 40)
    assert a == b


def test_adaptive_rule_sees_only_measured_losses():
    # Rising losses measured on FULL steps; the unmeasured PREDICT steps must not dilute the window.
    cfg = PhaseConfig(full_steps=10, predict_steps=40, correct_every=100, adaptive_phases=True)
    t = PhaseTrainer([("w", (3,))], cfg, backend="numpy")
    k = 0
    while t.cycle_count == 0:
        info = t.begin_step()
        if info.needs_backward:
            t.record_full_gradients({"w": np.ones(3, np.float32)})
            t.end_step(1.0 + k)  # steeply rising
        else:
            t.get_predicted_gradients()
            t.end_step(None)
        k += 1
    # 10 FULL losses only (< 20 measured): no adaptive change
    assert (t.current_full_steps, t.current_predict_steps) == (10, 40)


def test_deterministic_end_step_none_keeps_last_loss_and_history():
    cfg = DeterministicPhaseConfig(warmup_steps=2, full_steps=1, predict_steps=3, correct_every=10)
    t = DeterministicPhaseTrainer([("w", (3,))], cfg, backend="numpy")
    phases = _drive(t, [1.0, 2.0, 3.0, None, None])
    assert DeterministicPhase.PREDICT in phases[3:]
    assert t.get_stats().current_loss == 3.0
    assert len(t.loss_history) == 3
    assert t.total_step == 5


def test_end_step_none_still_checks_the_protocol():
    from vsaopt.errors import DTypeError, PhaseError

    t = PhaseTrainer([("w", (3,))], backend="numpy")
    with pytest.raises(PhaseError):
        t.end_step(None)
    t.begin_step()
    with pytest.raises(DTypeError):
        t.end_step("1.0")
    assert t.total_step == 0


def test_recommended_presets_are_valid_and_differ_from_the_crate_defaults():
    pc, dc = PhaseConfig.recommended(), DeterministicPhaseConfig.recommended()
    assert PhaseConfig.from_json(pc.to_json()) == pc and pc != PhaseConfig()
    assert DeterministicPhaseConfig.from_json(dc.to_json()) == dc and dc != DeterministicPhaseConfig()
    # the dataclass defaults stay the crate's
    assert (PhaseConfig().full_steps, PhaseConfig().predict_steps, PhaseConfig().correct_every) == (10, 40, 10)
    assert (DeterministicPhaseConfig().warmup_steps, DeterministicPhaseConfig().predict_steps) == (10, 20)
