"""Prediction telemetry and the predictability gate (spec/schedule.md, section 11)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vsaopt.backend import available_backends, get_backend
from vsaopt.errors import ConfigError, DTypeError
from vsaopt.phase import (
    DeterministicPhaseConfig,
    DeterministicPhaseTrainer,
    GateConfig,
    PhaseConfig,
    PhaseTrainer,
    PredictionTelemetry,
)
from vsaopt.phase.telemetry import flat_cosine, gate_budget, spec_cosine

F32 = np.float32
CPU = [get_backend(n) for n in available_backends() if n in ("numpy", "numba")]
TRAINERS = {"phase": (PhaseTrainer, PhaseConfig.recommended()), "deterministic": (DeterministicPhaseTrainer, DeterministicPhaseConfig.recommended())}

edge_floats = st.one_of(
    st.floats(-1e3, 1e3, width=32),
    st.sampled_from([0.0, -0.0, 1e-45, -1e-45, 1.1754944e-38, 3.0e38, -3.0e38]),
)


def _drive(trainer, grads, batch_size=None):
    """The canonical loop over gradient rows; the phase letters."""
    phases = []
    for g in grads:
        info = trainer.begin_step()
        phases.append(str(info.phase)[0])
        if info.needs_backward:
            trainer.record_full_gradients({"w": g}, batch_size=batch_size)
        else:
            trainer.get_predicted_gradients()
        trainer.end_step(None)
    return "".join(phases)


@settings(deadline=None)
@given(pair=st.integers(1, 300).flatmap(lambda n: st.tuples(*[hnp.arrays(np.float32, n, elements=edge_floats)] * 2)))
def test_cosine_is_byte_identical_on_every_backend_and_bounded(pair):
    a, b = pair
    ref = flat_cosine(CPU[0], a, b)
    assert ref.dtype == np.float32 and -1.0 <= float(ref) <= 1.0
    for be in CPU[1:]:
        assert flat_cosine(be, a, b).tobytes() == ref.tobytes(), be.name
    assert flat_cosine(CPU[0], b, a).tobytes() == ref.tobytes()  # symmetric


@given(x=hnp.arrays(np.float32, st.integers(1, 64), elements=st.floats(-100, 100, width=32)))
def test_cosine_of_a_vector_with_itself_and_its_negation(x):
    if not np.any(x):
        assert float(flat_cosine(CPU[0], x, x)) == 0.0  # a zero vector has no direction
        return
    assert float(flat_cosine(CPU[0], x, x)) == 1.0
    assert float(flat_cosine(CPU[0], x, -x)) == -1.0
    assert flat_cosine(CPU[0], x, 4 * x).tobytes() == F32(1.0).tobytes()  # scale by a power of two: exact


def test_cosine_of_non_finite_sums_is_zero():
    assert float(spec_cosine(math.inf, 1.0, 1.0)) == 0.0
    assert float(spec_cosine(1.0, math.nan, 1.0)) == 0.0
    assert float(spec_cosine(1.0, 1.0, 0.0)) == 0.0


unit = st.floats(-1.0, 1.0, width=32)


@given(q1=unit, q2=unit, last=unit, samples=st.integers(0, 10), cap=st.integers(0, 12),
       safety=st.sampled_from([0.25, 1.0, 2.0, 4.0]), min_samples=st.integers(1, 4))
def test_gate_budget_is_monotone_capped_and_keeps_the_noise_scale_margin(q1, q2, last, samples, cap, safety, min_samples):
    cfg = GateConfig(enabled=True, safety=safety, min_samples=min_samples)
    lo, hi = sorted((F32(q1), F32(q2)))
    k_lo, k_hi = gate_budget(lo, F32(1.0), samples, cfg, cap), gate_budget(hi, F32(1.0), samples, cfg, cap)
    assert 0 <= k_lo <= k_hi <= cap
    if samples < min_samples:
        assert k_hi == 0
        return
    k = gate_budget(hi, F32(last), samples, cfg, cap)
    q = min(float(hi), float(last))
    assert k == gate_budget(F32(q), F32(q), samples, cfg, cap)  # min(quality, last)
    if 0 < q < 1 and k > 0:
        # effective batch B / (k + 1) stays above safety * B_noise, B_noise = B (1 - q) / q ...
        assert 1 / (k + 1) >= float(F32(safety)) * (1 - q) / q * (1 - 1e-12)
    if 0 < q < 1 and k < cap:
        # ... and one more reused step would break it
        assert 1 / (k + 2) < float(F32(safety)) * (1 - q) / q * (1 + 1e-12)
    stricter = gate_budget(F32(q), F32(q), samples, GateConfig(enabled=True, safety=2 * safety, min_samples=min_samples), cap)
    assert stricter <= k


@pytest.mark.parametrize("kind", sorted(TRAINERS))
@pytest.mark.parametrize("be", CPU, ids=lambda b: b.name)
def test_predictable_gradients_are_reused_and_noise_closes_the_gate(kind, be):
    cls, cfg = TRAINERS[kind]
    rng = np.random.default_rng(5)
    direction = rng.standard_normal(400)
    steady = [(direction + 0.01 * rng.standard_normal(400)).astype(F32) for _ in range(60)]
    noise = [rng.standard_normal(400).astype(F32) for _ in range(60)]
    t = cls([("w", (400,))], cfg, backend=be)
    phases = _drive(t, [be.xp.asarray(g) for g in steady + noise])
    early, late = phases[:60], phases[80:]
    assert early.count("P") >= 0.6 * 60 - 8  # k = 4 of every 5 steps once min_samples measurements exist
    assert late.count("P") == 0  # cosines near 0: plain backprop
    assert t.telemetry.quality < 0.5 and t.current_predict_steps == 0


@pytest.mark.parametrize("kind", sorted(TRAINERS))
def test_telemetry_values_match_a_direct_computation(kind):
    cls, cfg = TRAINERS[kind]
    be = CPU[0]
    rng = np.random.default_rng(6)
    grads = [rng.standard_normal(50).astype(F32) + F32(3.0) for _ in range(12)]
    t = cls([("w", (50,))], cfg, backend="numpy")
    seen = []
    for g in grads:
        info = t.begin_step()
        assert info.telemetry == t.telemetry == t.get_stats().telemetry
        if info.needs_backward:
            prev = t._predictor.newest_flat()
            prev = None if prev is None else prev.copy()
            pred = t._predictor.peek_flat()
            pred = None if pred is None else pred.copy()
            t.record_full_gradients({"w": g}, batch_size=32)
            tel = t.telemetry
            assert tel.step == info.total_step
            if prev is not None:
                assert tel.consecutive_cosine == float(flat_cosine(be, g, prev))
            if pred is not None:
                assert tel.prediction_cosine == float(flat_cosine(be, pred, g))
                assert tel.norm_ratio == pytest.approx(np.linalg.norm(pred) / np.linalg.norm(g), rel=1e-6)
                seen.append(tel.prediction_cosine)
            if tel.rho is not None and tel.rho > 0:
                assert tel.noise_scale == 32 * (1 - tel.rho) / tel.rho
        else:
            t.get_predicted_gradients()
        t.end_step(1.0)
    assert t.telemetry.samples == len(seen) > 3
    d = F32(cfg.gate.ema_decay)
    q = F32(seen[0])
    for x in seen[1:]:
        q = F32(min(1.0, max(-1.0, F32(F32(d * q) + F32(F32(1.0 - float(d)) * F32(x))))))
    assert t.telemetry.quality == float(q)


def test_ungated_trainer_measures_but_keeps_the_crate_schedule():
    rng = np.random.default_rng(7)
    steady = [np.ones(8, F32)] * 40
    noisy = [rng.standard_normal(8).astype(F32) for _ in range(40)]
    cfg = PhaseConfig(full_steps=2, predict_steps=4, correct_every=2)
    runs = []
    for grads in (steady, noisy):
        t = PhaseTrainer([("w", (8,))], cfg, backend="numpy")
        runs.append(_drive(t, grads))
        assert t.telemetry.samples > 0 and t.telemetry.predict_budget == t.current_predict_steps == 4
    assert runs[0] == runs[1] and runs[0].startswith("FFPPCPCFF")


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "32"])
def test_bad_batch_size_is_refused_and_changes_nothing(bad):
    t = PhaseTrainer([("w", (3,))], PhaseConfig.recommended(), backend="numpy")
    t.begin_step()
    before = t.state_dict()
    with pytest.raises((ConfigError, DTypeError), match="batch_size"):
        t.record_full_gradients({"w": np.ones(3, F32)}, batch_size=bad)
    after = t.state_dict()
    assert before["header"] == after["header"]
    assert all(before["arrays"][k].tobytes() == after["arrays"][k].tobytes() for k in before["arrays"])


@pytest.mark.parametrize("kind", sorted(TRAINERS))
def test_gated_run_resumes_bit_identically(kind, tmp_path):
    cls, cfg = TRAINERS[kind]
    rng = np.random.default_rng(8)
    direction = rng.standard_normal(30)
    grads = [(direction + s * rng.standard_normal(30)).astype(F32) for s in np.linspace(0.01, 2.0, 80)]
    whole = cls([("w", (30,))], cfg, backend="numpy")
    phases_whole = _drive(whole, grads, batch_size=64)
    first = cls([("w", (30,))], cfg, backend="numpy")
    phases = _drive(first, grads[:37], batch_size=64)
    first.save(tmp_path / "t.ckpt")
    resumed = cls.load(tmp_path / "t.ckpt")
    assert resumed.telemetry == first.telemetry
    phases += _drive(resumed, grads[37:], batch_size=64)
    assert phases == phases_whole and "P" in phases
    assert resumed.telemetry == whole.telemetry and resumed.telemetry.noise_scale is not None


@pytest.mark.parametrize("cfg_cls", [PhaseConfig, DeterministicPhaseConfig])
def test_gate_config_errors(cfg_cls):
    with pytest.raises(ConfigError, match="adaptive"):
        cfg_cls(gate=GateConfig(enabled=True), adaptive_phases=True)
    with pytest.raises(ConfigError, match="full_steps"):
        cfg_cls(gate=GateConfig(enabled=True), adaptive_phases=False, full_steps=0)
    with pytest.raises(ConfigError, match="ema_decay"):
        GateConfig(ema_decay=1.0)
    with pytest.raises(ConfigError, match="gate"):
        cfg_cls(gate={"enabled": True})
    cfg = cfg_cls.recommended()
    assert cfg_cls.from_json(cfg.to_json()) == cfg and cfg.gate.enabled
    assert not cfg_cls().gate.enabled and not cfg_cls.risky_fixed().gate.enabled


def test_telemetry_is_json_ready():
    t = PredictionTelemetry(3, 2, 0.5, 1.0, 0.25, 0.3, 0.4, 12.0, 1)
    assert t.to_dict() == {"step": 3, "samples": 2, "prediction_cosine": 0.5, "norm_ratio": 1.0, "consecutive_cosine": 0.25,
                           "rho": 0.3, "quality": 0.4, "noise_scale": 12.0, "predict_budget": 1}


def test_has_pending_correction_says_when_apply_correction_changes_something():
    t = PhaseTrainer([("w", (3,))], PhaseConfig(full_steps=1, predict_steps=3, correct_every=1), backend="numpy")
    pending = []
    for i in range(5):
        info = t.begin_step()
        if info.needs_backward:
            t.record_full_gradients({"w": np.full(3, i, F32)})
        else:
            g = t.get_predicted_gradients()
            pending.append(t.has_pending_correction)
            before = g["w"].copy()
            t.apply_correction(g)
            assert (g["w"].tobytes() != before.tobytes()) == pending[-1]
            assert not t.has_pending_correction
        t.end_step(1.0)
    assert pending == [False, True]
