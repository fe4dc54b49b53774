"""Phase schedules: the crate's examples, an independent model of the transition tables, golden sequences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vsaopt.errors import PhaseError
from vsaopt.golden import load, run_case, schedule
from vsaopt.phase import (
    DeterministicPhase,
    DeterministicPhaseConfig,
    DeterministicPhaseTrainer,
    PhaseConfig,
    PhaseTrainer,
    TrainingPhase,
)
from vsaopt.testing import assert_bit_equal, to_host

F32 = np.float32
SHAPES = [("layer1.weight", (4, 6)), ("layer1.bias", (4,))]


def grads(be, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return {n: be.xp.asarray((scale * rng.standard_normal(s)).astype(F32)) for n, s in SHAPES}


def run(trainer, be, losses, grad_fn=None):
    infos = []
    for step, loss in enumerate(losses):
        info = trainer.begin_step()
        infos.append(info)
        if info.needs_backward:
            trainer.record_full_gradients(grad_fn(step) if grad_fn else grads(be, seed=step))
        else:
            trainer.get_predicted_gradients()
        trainer.end_step(loss)
    return infos


# --- the crate's own examples ------------------------------------------------------------


def test_crate_phase_transitions(backend):
    t = PhaseTrainer(SHAPES, PhaseConfig(full_steps=2, predict_steps=4, correct_every=2), backend=backend)
    assert t.current_phase is TrainingPhase.FULL
    for loss in (1.0, 0.9):
        info = t.begin_step()
        assert info.phase is TrainingPhase.FULL
        t.record_full_gradients(grads(backend))
        t.end_step(loss)
    info = t.begin_step()
    assert info.phase_changed and info.phase is TrainingPhase.PREDICT and not info.needs_backward


def test_crate_speedup_calculation(backend):
    t = PhaseTrainer(SHAPES, PhaseConfig(full_steps=1, predict_steps=3, correct_every=10), backend=backend)
    t.begin_step()
    t.record_full_gradients(grads(backend))
    t.end_step(1.0)
    for _ in range(3):
        t.begin_step()
        out = t.get_predicted_gradients()
        assert all(backend.owns(a) for a in out.values())
        t.end_step(0.9)
    assert t.speedup_ratio == 4.0
    assert str(t.get_stats()) == "Steps: 4 | Cycles: 0 | Speedup: 4.00x | Full: 1 | Predict: 3 | Correct: 0"


def test_crate_stats_and_reset(reference):
    t = PhaseTrainer(SHAPES, PhaseConfig(), backend=reference)
    run(t, reference, [1.0 - i * 0.1 for i in range(5)])
    stats = t.get_stats()
    assert str(stats) == "Steps: 5 | Cycles: 0 | Speedup: 1.00x | Full: 5 | Predict: 0 | Correct: 0"
    assert stats.phase_avg_losses == {TrainingPhase.FULL: float(F32(sum(F32(1.0 - i * 0.1) for i in reversed(range(5))) / F32(5)))}
    t.reset()
    assert (t.total_step, t.current_phase, t.cycle_count, t.get_stats().full_steps) == (0, TrainingPhase.FULL, 0, 0)


def test_crate_deterministic_warmup_to_full(reference):
    cfg = DeterministicPhaseConfig(warmup_steps=5, full_steps=3)
    t = DeterministicPhaseTrainer([("layer.weight", (16, 32)), ("layer.bias", (16,))], cfg, backend=reference)
    info = t.begin_step()
    assert info.phase is DeterministicPhase.WARMUP and info.needs_backward
    with pytest.raises(PhaseError, match="warmup"):
        t.get_predicted_gradients()
    for i in range(5):
        g = {"layer.weight": np.full((16, 32), 1 + 0.1 * i, F32), "layer.bias": np.full(16, 1 + 0.1 * i, F32)}
        t.record_full_gradients(g)
        t.end_step(1.0 - 0.1 * i)
        info = t.begin_step()
    assert t.warmup_complete and t.current_phase is DeterministicPhase.FULL and info.cycle == 0
    assert str(t.current_phase) == "FULL"


def test_linear_gradients_are_predicted_exactly(backend):
    """g(step) = a + b*step per element: every PREDICT step's prediction equals g(step) to float32 rounding."""
    rng = np.random.default_rng(5)
    a = {n: rng.standard_normal(s) for n, s in SHAPES}
    b = {n: 0.05 * rng.standard_normal(s) for n, s in SHAPES}

    def g(step):
        return {n: a[n] + b[n] * step for n in a}

    t = DeterministicPhaseTrainer(SHAPES, DeterministicPhaseConfig(warmup_steps=4, full_steps=2, predict_steps=10, correct_every=4), backend=backend)
    checked = 0
    for step in range(120):
        info = t.begin_step()
        if info.needs_backward:
            t.record_full_gradients({n: backend.xp.asarray(v.astype(F32)) for n, v in g(step).items()})
        else:
            pred = t.get_predicted_gradients()
            for n, want in g(step).items():
                got = to_host(pred[n]).astype(np.float64)
                np.testing.assert_allclose(got, want, rtol=0, atol=4 * np.spacing(np.abs(want).astype(F32)).max() + 1e-6)
            checked += 1
        t.end_step(1.0)
    assert checked > 60
    assert t.get_stats().mean_prediction_error < 1e-5


def test_default_deterministic_trainer_runs_43_backward_passes_in_100_steps(reference):
    t = DeterministicPhaseTrainer(SHAPES, DeterministicPhaseConfig(), backend=reference)
    infos = run(t, reference, [1.0] * 100, grad_fn=lambda s: {n: np.full(sh, 1 + 0.01 * s, F32) for n, sh in SHAPES})
    assert sum(i.needs_backward for i in infos) == 43
    assert t.get_stats().speedup == float(F32(100 / 43))


def test_warmup_longer_than_history_window_ends(reference):
    cfg = DeterministicPhaseConfig(warmup_steps=15, history_window=4)
    t = DeterministicPhaseTrainer(SHAPES, cfg, backend=reference)
    infos = run(t, reference, [1.0] * 17)
    assert [i.phase for i in infos[:15]] == [DeterministicPhase.WARMUP] * 15
    assert infos[15].phase is DeterministicPhase.FULL and infos[15].phase_changed


def test_residual_threshold_applies_to_matrix_parameters(reference):
    """A large residual in a 2-D parameter asks for a correction (the crate misses it)."""
    shapes = [("w", (3, 4)), ("b", (3,))]
    cfg = DeterministicPhaseConfig(warmup_steps=2, full_steps=1, predict_steps=50, correct_every=3)
    t = DeterministicPhaseTrainer(shapes, cfg, backend=reference)
    seen = []
    for step in range(14):
        info = t.begin_step()
        seen.append((info.phase, info.phase_step))
        if info.needs_backward:
            w = np.zeros((3, 4), F32)
            if info.phase is DeterministicPhase.CORRECT:
                w[1, 2] = 100.0  # the correction deviates from the line only inside the matrix
            t.record_full_gradients({"w": w, "b": np.zeros(3, F32)})
        else:
            t.get_predicted_gradients()
        t.end_step(1.0)
    assert t.predictor.get_stats().max_residual > cfg.residual_threshold
    assert t.predictor.needs_correction()
    # a CORRECT step that correct_every did not schedule: the residual triggered it
    assert any(p is DeterministicPhase.CORRECT and ps % 3 != 0 for p, ps in seen)


# --- an independent model of the transition tables -----------------------------------------


def model_phase_trainer(cfg: PhaseConfig, losses):
    """The issue's rules written out again, to check the trainer against."""
    phase, ps, cycle, F, P, recent, out = "F", 0, 0, cfg.full_steps, cfg.predict_steps, [], []
    for loss in losses:
        if phase == "F":
            nxt = "P" if ps >= F else "F"
        elif phase == "P":
            nxt = "C" if ps > 0 and ps % cfg.correct_every == 0 else ("F" if ps >= P else "P")
        else:
            nxt = "P" if P - ps > 0 else "F"
        if nxt != phase:
            if nxt == "F":
                ps, cycle = 0, cycle + 1
                if cfg.adaptive_phases and len(recent) >= 20:
                    early = F32(np.array(recent[:10], F32).cumsum()[-1] / F32(10))
                    late = F32(np.array(recent[-10:], F32).cumsum()[-1] / F32(10))
                    if late > F32(early * F32(F32(1) + F32(cfg.loss_threshold))):
                        F, P = min(F + 5, 50), max(P - 10, 10)
                    elif late < F32(early * F32(0.95)):
                        F, P = max(F - 2, 5), min(P + 5, 100)
            elif nxt == "P" and phase == "F":
                ps = 0
            phase = nxt
        out.append((phase, ps, cycle))
        recent = (recent + [F32(loss)])[-100:]
        ps += 1
    return out, (F, P)


@given(
    full=st.integers(0, 12),
    predict=st.integers(0, 30),
    every=st.integers(1, 12),
    adaptive=st.booleans(),
    losses=st.lists(st.floats(0.125, 10.0, width=32), min_size=1, max_size=260),
)
def test_phase_trainer_matches_the_model(full, predict, every, adaptive, losses):
    cfg = PhaseConfig(full_steps=full, predict_steps=predict, correct_every=every, adaptive_phases=adaptive)
    t = PhaseTrainer([("g", (3,))], cfg, backend="numpy")
    expected, lengths = model_phase_trainer(cfg, losses)
    got = []
    for loss in losses:
        info = t.begin_step()
        got.append(({"FULL": "F", "PREDICT": "P", "CORRECT": "C"}[str(info.phase)], info.phase_step, info.cycle))
        t.end_step(loss)
    assert got == expected
    assert (t.current_full_steps, t.current_predict_steps) == lengths
    assert t.config == cfg  # the config object keeps the initial lengths


@pytest.mark.parametrize(
    "series, lengths",
    [("rising", (15, 30)), ("falling", (8, 45)), ("flat", (10, 40))],
)
def test_first_adaptive_change(reference, series, lengths):
    losses = schedule._series(series, 52)
    t = PhaseTrainer([("g", (2,))], PhaseConfig(), backend=reference)
    infos = run(t, reference, losses, grad_fn=lambda s: {"g": np.full(2, 0.1 * s, F32)})
    assert infos[-1].phase is TrainingPhase.FULL and infos[-1].cycle == 1
    assert (t.current_full_steps, t.current_predict_steps) == lengths


@pytest.mark.parametrize("series, lengths", [("rising", (7, 15)), ("falling", (4, 23)), ("flat", (5, 20))])
def test_first_adaptive_change_deterministic(reference, series, lengths):
    losses = schedule._series(series, 37)
    t = DeterministicPhaseTrainer([("g", (2,))], DeterministicPhaseConfig(), backend=reference)
    infos = run(t, reference, losses, grad_fn=lambda s: {"g": np.full(2, 0.1 * s, F32)})
    assert infos[-1].phase is DeterministicPhase.FULL and infos[-1].cycle == 1
    assert (t.current_full_steps, t.current_predict_steps) == lengths


# --- golden sequences ---------------------------------------------------------------------------


def test_golden_schedule_vectors(backend):
    doc = load("schedule")
    assert doc["numberOfTests"] == len(doc["tests"]) >= 20
    for case in doc["tests"]:
        got = run_case(schedule, backend, case)
        assert got == case["expected"], f"tcId {case['tcId']} ({case['comment']})"


def test_golden_vectors_match_the_generator(reference):
    """The stored inputs are those the family module generates (the file is not stale)."""
    from vsaopt.arraycodec import encode

    stored = load("schedule")["tests"]
    fresh = schedule.cases()
    assert len(stored) == len(fresh)
    for s, f in zip(stored, fresh):
        assert (s["op"], s["comment"], s["inputs"]) == (f["op"], f["comment"], encode(f["inputs"]))


def test_golden_crate_examples_in_vectors():
    from vsaopt.arraycodec import decode

    cases = {c["comment"]: decode(c["expected"]) for c in load("schedule")["tests"]}
    ex = cases["crate test_phase_transitions: full=2 predict=4 correct_every=2"]
    assert list(ex["phases"][:3]) == [0, 0, 1] and ex["phase_changed"][2] == 1
    sp = cases["crate test_speedup_calculation: full=1 predict=3 correct_every=10, speedup 4.0"]
    assert_bit_equal(np.float32(sp["speedup"].reshape(-1)[0]), np.float32(4.0))
