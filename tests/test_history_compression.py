"""Compressed predictor history (spec/history.md): codecs, backend identity, memory held, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vsaopt.backend import get_backend
from vsaopt.checkpoint import digest
from vsaopt.errors import CheckpointError, ConfigError
from vsaopt.phase import (
    DeterministicPhaseConfig,
    DeterministicPhaseTrainer,
    DeterministicPredictor,
    GradientPredictor,
    PhaseConfig,
    PhaseTrainer,
)
from vsaopt.phase.configs import DeterministicPredictionConfig, PredictionConfig
from vsaopt.phase.history_codec import bf16_decode, bf16_encode, ternary_decode, ternary_encode
from vsaopt.testing import assert_bit_equal, to_host

F32 = np.float32
REF = get_backend("numpy")
finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
SHAPES = [("w", (6, 7)), ("b", (6,)), ("head", (3,))]
N = 6 * 7 + 6 + 3


def gradient(step):
    rng = np.random.default_rng(500 + step)
    return {n: (0.3 + 0.01 * step + 0.2 * rng.standard_normal(s)).astype(F32) for n, s in SHAPES}


def phase_trainer(comp, be="numpy"):
    pc = PredictionConfig(history_size=3, prediction_steps=4, history_compression=comp)
    return PhaseTrainer(SHAPES, PhaseConfig(full_steps=3, predict_steps=6, correct_every=2, prediction_config=pc), backend=be)


def det_trainer(comp, be="numpy"):
    cfg = DeterministicPhaseConfig(warmup_steps=4, full_steps=2, predict_steps=5, correct_every=2, history_window=2,
                                   residual_threshold=0.3, history_compression=comp)
    return DeterministicPhaseTrainer(SHAPES, cfg, backend=be)


def drive(trainer, start, stop, be=REF):
    """Steps [start, stop): the bytes of every prediction and corrected gradient, and the most predictor bytes held."""
    trace, most = [], 0
    for step in range(start, stop):
        info = trainer.begin_step()
        if info.needs_backward:
            g = {n: be.xp.asarray(a) for n, a in gradient(step).items()}
            trainer.record_full_gradients(g)
            if str(info.phase) == "CORRECT" and hasattr(trainer, "apply_correction"):
                trainer.apply_correction(g)
                trace.append(b"".join(to_host(g[n]).tobytes() for n, _ in SHAPES))
        else:
            pred = trainer.get_predicted_gradients()
            trace.append(b"".join(to_host(pred[n]).tobytes() for n, _ in SHAPES))
        most = max(most, trainer.predictor_state_bytes)
        trainer.end_step(1.0 + 0.01 * np.sin(step))
    return trace, most


# --- codecs -------------------------------------------------------------------


def test_bfloat16_rounds_to_nearest_even_and_saturates():
    bits = np.array([0x3F808000, 0x3F818000, 0x3F808001, 0xBF808000, 0x7F7F8000, 0x7F800000, 0x7FC12345, 0x80000000], np.uint32)
    got = bf16_encode(bits.view(F32), REF)
    assert got.tolist() == [0x3F80, 0x3F82, 0x3F81, 0xBF80, 0x7F7F, 0x7F7F, 0x7FC0, 0x8000]


@given(hnp.arrays(np.float32, st.integers(0, 200), elements=finite32))
def test_bfloat16_is_the_nearest_finite_value(x):
    back = bf16_decode(bf16_encode(x, REF), REF).astype(np.float64)
    assert np.isfinite(back).all()
    x64 = x.astype(np.float64)
    # the neighbours of x on the bfloat16 grid: truncation and one step away from zero
    lo = (x.view(np.uint32) & np.uint32(0xFFFF0000)).view(F32).astype(np.float64)
    hi_bits = (x.view(np.uint32) & np.uint32(0xFFFF0000)) + np.uint32(0x10000)
    hi = np.where((hi_bits & 0x7F800000) == 0x7F800000, lo, hi_bits.view(F32).astype(np.float64))
    best = np.minimum(np.abs(lo - x64), np.abs(hi - x64))
    assert (np.abs(back - x64) <= best).all()


def test_ternary_rows_are_unbiased_with_a_power_of_two_scale():
    x = np.linspace(-0.7, 0.7, 101).astype(F32)
    decoded = []
    for step in range(400):
        packed, scale = ternary_encode(x, step, REF)
        assert scale == F32(1.0) and packed.shape == (26,)
        decoded.append(ternary_decode(packed, scale, x.size, REF))
    d = np.stack(decoded)
    assert set(np.unique(d)) <= {-1.0, 0.0, 1.0}
    stderr = np.sqrt((np.abs(x) * (1 - np.abs(x))) / len(decoded)) + 1e-6
    assert (np.abs(d.mean(0) - x) <= 5 * stderr).all()
    assert not (d[0] == d[1]).all(), "rows of different steps draw differently"


def test_ternary_row_of_zeros_has_scale_zero():
    packed, scale = ternary_encode(np.zeros(9, F32), 3, REF)
    assert scale == 0 and not packed.any()


@pytest.mark.parametrize("value", ["bf16", "", None, 1])
def test_unknown_compression_is_a_config_error(value):
    with pytest.raises(ConfigError, match="history_compression"):
        PredictionConfig(history_compression=value)
    with pytest.raises(ConfigError, match="history_compression"):
        DeterministicPhaseConfig(history_compression=value)


def test_the_option_is_in_the_dict_and_round_trips():
    assert DeterministicPhaseConfig().to_dict()["history_compression"] == "none"
    cfg = DeterministicPhaseConfig(history_compression="ternary")
    assert DeterministicPhaseConfig.from_json(cfg.to_json()) == cfg
    assert cfg.predictor_config().history_compression == "ternary"


# --- backends give the same bytes ---------------------------------------------


def test_codecs_identical_on_every_backend(fast_backend):
    @given(hnp.arrays(np.float32, st.integers(0, 300), elements=finite32), st.integers(0, 2**64 - 1))
    def check(x, step):
        dx = fast_backend.xp.asarray(x)
        assert_bit_equal(to_host(bf16_encode(dx, fast_backend)), bf16_encode(x, REF))
        p_ref, s_ref = ternary_encode(x, step, REF)
        p, s = ternary_encode(dx, step, fast_backend)
        assert_bit_equal(to_host(p), p_ref)
        assert s.tobytes() == s_ref.tobytes()
        assert_bit_equal(to_host(ternary_decode(p, s, x.size, fast_backend)), ternary_decode(p_ref, s_ref, x.size, REF))

    check()


@pytest.mark.parametrize("comp", ["bfloat16", "ternary"])
@pytest.mark.parametrize("make", [phase_trainer, det_trainer], ids=["phase", "deterministic"])
def test_trainers_identical_on_every_backend(fast_backend, make, comp):
    ref, _ = drive(make(comp), 0, 60)
    got, _ = drive(make(comp, fast_backend), 0, 60, fast_backend)
    assert got == ref


def test_compressed_fit_in_blocks_matches_one_block(monkeypatch):
    from vsaopt.phase import deterministic_predictor as dp

    ref, _ = drive(det_trainer("bfloat16"), 0, 40)
    monkeypatch.setattr(dp, "FIT_BLOCK", 8)
    assert drive(det_trainer("bfloat16"), 0, 40)[0] == ref


# --- what compression changes and what it does not ------------------------------


@pytest.mark.parametrize("make", [phase_trainer, det_trainer], ids=["phase", "deterministic"])
def test_compression_predicts_close_to_the_float32_history(make):
    exact, _ = drive(make("none"), 0, 60)
    for comp, floor in (("bfloat16", 0.99), ("ternary", 0.3)):
        got, _ = drive(make(comp), 0, 60)
        assert len(got) == len(exact) and got != exact
        cos = [np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
               for a, b in ((np.frombuffer(x, F32), np.frombuffer(y, F32)) for x, y in zip(got, exact))]
        assert np.mean(cos) > floor, (comp, np.mean(cos))


def test_state_bytes_count_what_is_held():
    p = GradientPredictor(SHAPES, PredictionConfig(history_size=3), backend="numpy")
    d = DeterministicPredictor(SHAPES, DeterministicPredictionConfig(warmup_steps=2, history_window=1), backend="numpy")
    for step in range(4):
        p.record_gradient(gradient(step))
        d.record_gradient(gradient(step))
    p.predict_gradient()
    assert p.get_stats().state_bytes == 4 * N * 3 + 4 * N  # three rows and the last prediction
    assert d.get_stats().state_bytes == 4 * N * 4 + 3 * 4 * N  # the ring (3 records and the next), baseline, velocity, residual
    assert d.get_stats().state_bytes_per_param == 28.0

    pt = GradientPredictor(SHAPES, PredictionConfig(history_size=3, history_compression="ternary"), backend="numpy")
    dt = DeterministicPredictor(SHAPES, DeterministicPredictionConfig(warmup_steps=2, history_window=1, history_compression="bfloat16"), backend="numpy")
    for step in range(4):
        pt.record_gradient(gradient(step))
        dt.record_gradient(gradient(step))
    pt.predict_gradient()
    row = -(-N // 4) + 4
    assert pt.get_stats().state_bytes == 3 * row  # the prediction is held as two of those rows
    pt.record_gradient(gradient(4))  # pushes out the oldest row, which the prediction does not use
    assert pt.get_stats().state_bytes == 3 * row
    pt.record_gradient(gradient(5))  # pushes out a row the prediction still uses: it stays held
    assert pt.get_stats().state_bytes == 4 * row
    assert dt.get_stats().state_bytes == 3 * 2 * N + 2 * N  # rows and the bfloat16 residual, no fit


@pytest.mark.parametrize("preset", ["phase", "deterministic"])
def test_recommended_presets_hold_at_most_the_parameter_bytes_with_ternary_history(preset):
    if preset == "phase":
        base = PhaseConfig.recommended()
        pc = PredictionConfig(**{**base.prediction_config.to_dict(), "history_compression": "ternary"})
        trainer: object = PhaseTrainer(SHAPES, PhaseConfig(**{**vars(base), "prediction_config": pc}), backend="numpy")
    else:
        base = DeterministicPhaseConfig.recommended()
        trainer = DeterministicPhaseTrainer(SHAPES, DeterministicPhaseConfig(**{**vars(base), "history_compression": "ternary"}), backend="numpy")
    _, most = drive(trainer, 0, 40)
    assert 0 < most <= 4 * N


# --- checkpoints ------------------------------------------------------------------


@pytest.mark.parametrize("comp", ["bfloat16", "ternary"])
@pytest.mark.parametrize("make", [phase_trainer, det_trainer], ids=["phase", "deterministic"])
def test_resume_continues_bit_identically(make, comp, tmp_path):
    straight = make(comp)
    full, _ = drive(straight, 0, 70)
    first = make(comp)
    head, _ = drive(first, 0, 33)
    first.save(tmp_path / "ckpt")
    resumed = type(first).load(tmp_path / "ckpt", backend="numpy")
    tail, _ = drive(resumed, 33, 70)
    assert head + tail == full
    assert resumed.predictor_state_bytes == straight.predictor_state_bytes


@pytest.mark.parametrize("make", [phase_trainer, det_trainer], ids=["phase", "deterministic"])
def test_checkpoint_keeps_the_history_compressed(make):
    arrays = {}
    for comp in ("none", "bfloat16", "ternary"):
        t = make(comp)
        drive(t, 0, 33)
        arrays[comp] = {k: a for k, a in t.state_dict()["arrays"].items() if k.startswith("predictor.")}
    size = {c: sum(a.nbytes for a in arr.values()) for c, arr in arrays.items()}
    assert arrays["bfloat16"]["predictor.history"].dtype == np.uint16
    assert arrays["ternary"]["predictor.history"].dtype == np.uint8
    assert size["ternary"] < size["bfloat16"] < size["none"]
    assert not any(k.endswith(("baseline", "velocity", "last_prediction")) for k in arrays["ternary"])


def test_a_damaged_ternary_row_is_rejected():
    t = phase_trainer("ternary")
    drive(t, 0, 20)
    state = t.state_dict()
    state["arrays"]["predictor.history"] = state["arrays"]["predictor.history"].copy()
    state["arrays"]["predictor.history"][0, 0] = 0xFF  # code 3
    state["header"]["sha256"] = digest(state["header"], state["arrays"])  # a consistent file with a bad row
    fresh = phase_trainer("ternary")
    with pytest.raises(CheckpointError, match="2-bit code"):
        fresh.load_state_dict(state)
    assert fresh.predictor_state_bytes == 0 and fresh.total_step == 0


def test_predictor_memory_bench_rows():
    from vsaopt.benchmarks.predictor_memory import predictor_memory_rows

    rows = predictor_memory_rows(steps=30, backend="numpy", presets=("PhaseConfig()", "DeterministicPhaseConfig()"))
    assert [(r.preset, r.compression) for r in rows][:3] == [("PhaseConfig()", c) for c in ("none", "bfloat16", "ternary")]
    for preset in {r.preset for r in rows}:
        none, bf16, tern = (r for r in rows if r.preset == preset)
        assert tern.held_bytes_per_param < bf16.held_bytes_per_param < none.held_bytes_per_param
        assert tern.state_dict_bytes_per_param < bf16.state_dict_bytes_per_param < none.state_dict_bytes_per_param
        assert none.cosine_vs_float32 == pytest.approx(1.0, abs=1e-9) and none.cosine_vs_actual == none.float32_cosine_vs_actual
        assert bf16.compared > 0 and bf16.cosine_vs_float32 > 0.999
        assert -1.0 <= tern.cosine_vs_float32 < bf16.cosine_vs_float32
