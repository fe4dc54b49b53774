"""The momentum and least-squares predictors, and the loss history."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vsaopt.errors import ConfigError, DTypeError, NonFiniteError, PhaseError, ShapeError
from vsaopt.phase import (
    DeterministicPhase,
    DeterministicPredictionConfig,
    DeterministicPredictor,
    Divergence,
    GradientPredictor,
    LossHistory,
    LossHistoryConfig,
    PredictionConfig,
    Spike,
)
from vsaopt.testing import assert_bit_equal, to_host

F32 = np.float32
SHAPES = [("layer1.weight", (6, 8)), ("layer1.bias", (6,))]


def g(be, value=None, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for n, s in SHAPES:
        a = np.full(s, value, F32) if value is not None else rng.standard_normal(s).astype(F32)
        out[n] = be.xp.asarray(a)
    return out


# --- momentum predictor ------------------------------------------------------------------


def test_momentum_predictor_crate_tests(reference):
    p = GradientPredictor(SHAPES, PredictionConfig(), backend=reference)
    assert p.total_steps == 0 and p.should_compute_full()
    p.record_gradient(g(reference))
    assert p.total_steps == 1 and p.should_compute_full()
    p.record_gradient(g(reference, seed=1))
    assert p.total_steps == 2 and not p.should_compute_full()
    pred = p.predict_gradient()
    assert set(pred) == {n for n, _ in SHAPES} and all(pred[n].shape == s for n, s in SHAPES)


def test_momentum_prediction_values_and_history_cap(backend):
    p = GradientPredictor([("w", (3,))], PredictionConfig(history_size=2, momentum=0.5, prediction_steps=2), backend=backend)
    assert_bit_equal(to_host(p.predict_gradient()["w"]), np.zeros(3, F32))  # no history: zeros
    p.record_gradient({"w": backend.xp.asarray(np.array([1, 2, 3], F32))})
    assert_bit_equal(to_host(p.predict_gradient()["w"]), np.array([1, 2, 3], F32))  # one entry: itself
    for row in ([2, 2, 2], [4, 0, 2]):
        p.record_gradient({"w": backend.xp.asarray(np.array(row, F32))})
    assert p.get_stats().history_size == 2
    assert_bit_equal(to_host(p.predict_gradient()["w"]), np.array([5, -1, 2], F32))  # 4 + 0.5*(4-2), ...
    assert not p.should_compute_full()
    p.predict_gradient()
    assert p.should_compute_full()  # prediction_steps reached


def test_momentum_correction_cycle(reference):
    cfg = PredictionConfig(prediction_steps=2, correction_weight=0.5)
    p = GradientPredictor([("w", (4,))], cfg, backend=reference)
    assert p.compute_correction({"w": np.ones(4, F32)}) == {}  # nothing predicted yet
    p.record_gradient({"w": np.zeros(4, F32)})
    p.record_gradient({"w": np.ones(4, F32)})
    pred = p.predict_gradient()["w"]  # 1 + 0.9 * 1 = 1.9
    actual = {"w": np.full(4, 2.5, F32)}
    corr = p.compute_correction(actual)["w"]
    assert_bit_equal(corr, np.full(4, F32(2.5) - pred[0], F32))
    stats = p.get_stats()
    assert stats.mean_error == stats.recent_error == float(F32(F32(2.5) - pred[0]))
    assert stats.prediction_ratio == float(F32(1 - F32(1 / F32(3))))
    target = {"w": np.zeros(4, F32)}
    p.apply_correction(target)
    assert_bit_equal(target["w"], np.full(4, F32(0.5) * corr[0], F32))
    again = {"w": np.zeros(4, F32)}
    p.apply_correction(again)  # cleared
    assert_bit_equal(again["w"], np.zeros(4, F32))


def test_momentum_error_history_drives_should_compute_full(reference):
    p = GradientPredictor([("w", (2,))], PredictionConfig(prediction_steps=10**6), backend=reference)
    p.record_gradient({"w": np.zeros(2, F32)})
    p.record_gradient({"w": np.zeros(2, F32)})
    for _ in range(150):
        p.predict_gradient()
        p.compute_correction({"w": np.ones(2, F32)})  # error 1.0 each time
    assert p.should_compute_full()
    assert len(p.export_state()[1]["errors"]) == 100  # bounded


def test_apply_correction_validates_before_changing(reference):
    p = GradientPredictor([("w", (2,)), ("b", (1,))], PredictionConfig(), backend=reference)
    p.record_gradient({"w": np.zeros(2, F32), "b": np.zeros(1, F32)})
    p.predict_gradient()
    p.compute_correction({"w": np.ones(2, F32), "b": np.ones(1, F32)})
    w = np.zeros(2, F32)
    ro = np.zeros(1, F32)
    ro.flags.writeable = False
    with pytest.raises(DTypeError, match="read-only"):
        p.apply_correction({"w": w, "b": ro})
    assert_bit_equal(w, np.zeros(2, F32))
    with pytest.raises(DTypeError):
        p.apply_correction({"w": np.zeros(2, np.int32), "b": np.zeros(1, F32)})
    w64 = np.zeros(2)
    p.apply_correction({"w": w64, "b": np.zeros(1, F32)})
    assert w64.dtype == np.float64 and w64[0] == 0.5


@pytest.mark.parametrize(
    "bad, err",
    [
        ({"layer1.weight": np.zeros((6, 8), F32)}, ShapeError),
        ({"layer1.weight": np.zeros((6, 8), F32), "layer1.bias": np.zeros(6, F32), "x": np.zeros(1, F32)}, ShapeError),
        ({"layer1.weight": np.zeros((8, 6), F32), "layer1.bias": np.zeros(6, F32)}, ShapeError),
        ({"layer1.weight": np.zeros((6, 8), np.int64), "layer1.bias": np.zeros(6, F32)}, DTypeError),
        ({"layer1.weight": np.full((6, 8), np.nan, F32), "layer1.bias": np.zeros(6, F32)}, NonFiniteError),
        ([("layer1.weight", np.zeros((6, 8)))], DTypeError),
    ],
)
def test_predictors_reject_bad_gradients(reference, bad, err):
    for p in (GradientPredictor(SHAPES, backend=reference), DeterministicPredictor(SHAPES, backend=reference)):
        before = p.export_state()
        with pytest.raises(err):
            p.record_gradient(bad)
        after = p.export_state()
        assert before[0] == after[0] and all(np.array_equal(before[1][k], after[1][k]) for k in before[1])


def test_bad_param_shapes():
    for bad in ([], [("a", (2,)), ("a", (3,))], [("", (2,))], "a", [("a", (2.5,))]):
        with pytest.raises(ConfigError):
            GradientPredictor(bad, backend="numpy")


# --- least-squares predictor ---------------------------------------------------------------


def test_deterministic_predictor_crate_tests(reference):
    p = DeterministicPredictor(SHAPES, DeterministicPredictionConfig(warmup_steps=5), backend=reference)
    assert p.in_warmup() and not p.is_ready()
    with pytest.raises(PhaseError):
        p.predict_gradient()
    for i in range(5):
        p.record_gradient(g(reference, value=float(i)), is_correction=False)
    assert p.is_ready() and not p.in_warmup() and p.global_step == 5
    # linear fit quality: g(t) = 1 + 0.1 t, next value 1.5
    q = DeterministicPredictor([("param", (8,))], DeterministicPredictionConfig(warmup_steps=5, prediction_horizon=3), backend=reference)
    for t in range(5):
        q.record_gradient({"param": np.full(8, 1 + 0.1 * t, F32)})
    np.testing.assert_allclose(q.predict_gradient()["param"], 1.5, atol=1e-6)
    assert q.steps_since_fit == 1 and not q.needs_correction()
    q.predict_gradient()
    q.predict_gradient()
    assert q.needs_correction()  # horizon reached


def test_deterministic_predictions_identical_across_backends(fast_backend, reference):
    outs = {}
    for be in (reference, fast_backend):
        p = DeterministicPredictor(SHAPES, DeterministicPredictionConfig(warmup_steps=3, history_window=2), backend=be)
        seq = []
        for step in range(40):
            if step < 3 or step % 4 == 0:
                p.record_gradient(g(be, seed=step), is_correction=step > 3 and step % 8 == 0)
            else:
                seq.append(to_host(np.concatenate([to_host(a).ravel() for a in p.predict_gradient().values()])))
        outs[be.name] = (np.stack(seq), p.get_stats())
    assert_bit_equal(outs[fast_backend.name][0], outs["numpy"][0])
    assert outs[fast_backend.name][1] == outs["numpy"][1]


def test_single_gradient_fit_is_degenerate(reference):
    p = DeterministicPredictor([("w", (3,))], DeterministicPredictionConfig(warmup_steps=1), backend=reference)
    p.record_gradient({"w": np.array([1, 2, 3], F32)})
    assert_bit_equal(p.predict_gradient()["w"], np.array([1, 2, 3], F32))


def test_deterministic_history_is_bounded(reference):
    p = DeterministicPredictor([("w", (2,))], DeterministicPredictionConfig(warmup_steps=1, history_window=3), backend=reference)
    for i in range(50):
        p.record_gradient({"w": np.full(2, i, F32)})
    header, arrays = p.export_state()
    assert arrays["history"].shape == (5, 2) and header["steps"] == list(range(45, 50))
    with pytest.raises(DTypeError):
        p.record_gradient({"w": np.zeros(2, F32)}, is_correction=1)


# --- loss history ---------------------------------------------------------------------------


def test_loss_history_crate_behaviour():
    h = LossHistory(LossHistoryConfig(max_history=100))
    h.record(1.0, DeterministicPhase.WARMUP)
    h.record(0.8, DeterministicPhase.FULL)
    h.record(0.6, DeterministicPhase.FULL)
    assert len(h) == 3 and h.current_loss() == float(F32(0.6))
    assert [m.phase for m in h.measurements_for_phase(DeterministicPhase.FULL)] == [DeterministicPhase.FULL] * 2
    s = h.compute_statistics()
    assert s.count == 3 and s.min == float(F32(0.6)) and s.max == 1.0 and s.median == float(F32(0.8))
    assert s.mean == float(F32(F32(F32(F32(1.0) + F32(0.8)) + F32(0.6)) / F32(3)))
    assert h.compute_statistics(0) is None and h.rolling_average(4) is None
    assert h.rolling_average(2) == float(F32(F32(F32(0.6) + F32(0.8)) / F32(2)))
    summary = dict(h.phase_summary())
    assert set(summary) == {DeterministicPhase.WARMUP, DeterministicPhase.FULL} and summary[DeterministicPhase.FULL].count == 2
    data = json.loads(h.to_json())
    assert data[1] == {"step": 1, "loss": float(F32(0.8)), "phase": "FULL"}
    h.clear()
    assert len(h) == 0 and h.current_loss() is None


def test_loss_history_trends_and_anomalies():
    h = LossHistory(LossHistoryConfig(max_history=50, spike_threshold=2.0))
    for i in range(20):
        h.record(1.0 - 0.01 * i, DeterministicPhase.FULL)
    assert h.is_converging(20, 0.05) and not h.is_converging(20, 0.5)
    assert h.improvement_rate(20) == pytest.approx(-0.19 / 1.0, rel=1e-5)
    assert h.detect_anomalies(10) == []
    h.record(5.0, DeterministicPhase.PREDICT)
    anomalies = h.detect_anomalies(10)
    assert isinstance(anomalies[0], Spike) and anomalies[0].step == 20 and anomalies[0].magnitude > 2.0
    for _ in range(10):
        h.record(3.0, DeterministicPhase.PREDICT)
    assert any(isinstance(a, Divergence) and a.rate > 1.2 for a in h.detect_anomalies(10))
    assert h.rolling_std_dev(5) == 0.0 and h.rolling_variance(5) == 0.0
    with pytest.raises(ConfigError):
        h.is_converging(1, 0.1)
    with pytest.raises(NonFiniteError):
        h.record(float("inf"), DeterministicPhase.FULL)
    with pytest.raises(DTypeError):
        h.record(1.0, "FULL")


def test_loss_history_is_bounded_and_keeps_step_numbers():
    h = LossHistory(LossHistoryConfig(max_history=7))
    for i in range(1000):
        h.record(float(i), DeterministicPhase.FULL)
    ms = h.measurements()
    assert len(ms) == 7 and [m.step for m in ms] == list(range(993, 1000))
    back = LossHistory(h.config)
    back.load_state_dict(h.state_dict())
    assert back.measurements() == ms and back.to_json() == h.to_json()
