"""Hypothesis state machines: random call sequences, valid and invalid, on every CPU backend in lockstep.

Invariants: the transition tables, counters, typed errors that leave the state
exactly as it was, and byte-identical predictions and states across backends.
"""

from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from vsaopt.backend import available_backends, get_backend
from vsaopt.errors import ConfigError, DTypeError, NonFiniteError, OptimError, PhaseError, ShapeError
from vsaopt.phase import (
    DeterministicPhase,
    DeterministicPhaseConfig,
    DeterministicPhaseTrainer,
    GateConfig,
    PhaseConfig,
    PredictionConfig,
    PhaseTrainer,
    TrainingPhase,
)
from vsaopt.phase._scalar import adaptive_trend
from vsaopt.phase.telemetry import gate_budget
from vsaopt.testing import assert_bit_equal, to_host

F32 = np.float32
SHAPES = [("w", (2, 3)), ("b", (3,))]
BACKENDS = [get_backend(n) for n in available_backends() if n in ("numpy", "numba")]

grad_values = st.floats(-8.0, 8.0, width=32)
gradients = st.fixed_dictionaries({n: hnp.arrays(np.float32, s, elements=grad_values) for n, s in SHAPES})
losses = st.floats(0.125, 4.0, width=32)
BAD_GRADIENTS = {
    "missing": (lambda g: {"w": g["w"]}, ShapeError),
    "unknown": (lambda g: {**g, "extra": np.zeros(1, F32)}, ShapeError),
    "shape": (lambda g: {"w": g["w"].T.copy(), "b": g["b"]}, ShapeError),
    "dtype": (lambda g: {"w": g["w"].astype(np.int32), "b": g["b"]}, DTypeError),
    "nan": (lambda g: {"w": np.where(np.arange(6).reshape(2, 3) == 4, np.nan, g["w"]).astype(F32), "b": g["b"]}, NonFiniteError),
    "not a mapping": (lambda g: list(g.values()), DTypeError),
}
BAD_LOSSES = [(float("nan"), NonFiniteError), (float("inf"), NonFiniteError), (1e300, NonFiniteError), ("0.5", DTypeError), (b"1", DTypeError)]


def snapshot(trainer):
    sd = trainer.state_dict()
    return sd["header"], {k: v.tobytes() + str(v.dtype).encode() + str(v.shape).encode() for k, v in sd["arrays"].items()}


class TrainerMachine(RuleBasedStateMachine):
    """Common rules; subclasses say how to build trainers and which phases exist."""

    trainer_cls: type = PhaseTrainer
    predict_phase: object = TrainingPhase.PREDICT

    def __init__(self):
        super().__init__()
        self.trainers = []
        self.in_step = False
        self.info = None
        self.recorded = self.predicted = False
        self.ended = 0

    # --- helpers ----------------------------------------------------------------------------

    def each(self, fn):
        return [fn(t, be) for t, be in zip(self.trainers, BACKENDS)]

    def expect_error(self, err, fn):
        before = [snapshot(t) for t in self.trainers]
        for t, be in zip(self.trainers, BACKENDS):
            try:
                fn(t, be)
            except err:
                pass
            else:  # pragma: no cover - a failure of the library
                raise AssertionError(f"expected {err.__name__}")
        after = [snapshot(t) for t in self.trainers]
        assert before == after, "state changed by a failing call"

    def expected_transition(self, t):
        raise NotImplementedError

    # --- rules --------------------------------------------------------------------------------

    @rule()
    def begin_step(self):
        if self.in_step:
            self.expect_error(PhaseError, lambda t, be: t.begin_step())
            return
        expected = self.expected_transition(self.trainers[0])
        prev = self.trainers[0].current_phase
        infos = self.each(lambda t, be: t.begin_step())
        assert all(i == infos[0] for i in infos)
        info = infos[0]
        assert (info.phase, info.phase_step, info.cycle) == expected[:3]
        assert info.phase_changed == (info.phase is not prev)
        assert info.needs_backward == self.trainers[0].needs_backward() == (info.phase is not self.predict_phase)
        assert info.total_step == self.ended
        lengths = expected[3]
        assert all((t.current_full_steps, t.current_predict_steps) == lengths for t in self.trainers)
        self.in_step, self.info, self.recorded, self.predicted = True, info, False, False

    @rule(g=gradients)
    def record(self, g):
        ok = self.in_step and self.info.needs_backward and not self.recorded
        if not ok:
            self.expect_error(PhaseError, lambda t, be: t.record_full_gradients({k: be.xp.asarray(v) for k, v in g.items()}))
            return
        self.each(lambda t, be: t.record_full_gradients({k: be.xp.asarray(v) for k, v in g.items()}))
        self.recorded = True

    @rule(g=gradients, kind=st.sampled_from(sorted(BAD_GRADIENTS)))
    def record_bad(self, g, kind):
        make, err = BAD_GRADIENTS[kind]
        if not (self.in_step and self.info.needs_backward and not self.recorded):
            err = PhaseError
        self.expect_error(err, lambda t, be: t.record_full_gradients(make(g)))

    @rule()
    def predict(self):
        ok = self.in_step and self.info.phase is self.predict_phase and not self.predicted
        if not ok:
            self.expect_error(PhaseError, lambda t, be: t.get_predicted_gradients())
            return
        outs = self.each(lambda t, be: t.get_predicted_gradients())
        for out, be in zip(outs, BACKENDS):
            assert list(out) == [n for n, _ in SHAPES]
            for n, s in SHAPES:
                assert be.owns(out[n]) and out[n].shape == s and out[n].dtype == np.float32
                assert_bit_equal(to_host(out[n]), to_host(outs[0][n]), n)
        self.predicted = True

    @rule(loss=losses)
    def end_step(self, loss):
        if not self.in_step:
            self.expect_error(PhaseError, lambda t, be: t.end_step(loss))
            return
        self.each(lambda t, be: t.end_step(loss))
        self.in_step = False
        self.ended += 1

    @precondition(lambda self: not self.in_step)
    @rule(g=gradients, loss=losses, n=st.integers(1, 6))
    def train_steps(self, g, loss, n):
        """``n`` canonical steps (begin, record or predict, end), so long valid runs are common."""
        for k in range(n):
            self.begin_step()
            if self.info.needs_backward:
                self.record({key: (v + F32(0.25 * k)).astype(F32) for key, v in g.items()})
            else:
                self.predict()
            self.end_step(loss * F32(1.0 + 0.1 * k))

    @rule(bad=st.sampled_from(BAD_LOSSES))
    def end_step_bad(self, bad):
        value, err = bad
        self.expect_error(err, lambda t, be: t.end_step(value))

    @rule()
    def checkpoint_round_trip(self):
        fresh = []
        for t, be in zip(self.trainers, BACKENDS):
            u = type(t)(t.param_shapes, t.config, backend=be)
            u.load_state_dict(t.state_dict())
            assert snapshot(u) == snapshot(t)
            fresh.append(u)
        self.trainers = fresh

    # --- invariants ----------------------------------------------------------------------------

    @invariant()
    def backends_agree(self):
        if len(self.trainers) > 1:
            snaps = [snapshot(t) for t in self.trainers]
            assert all(s == snaps[0] for s in snaps)

    @invariant()
    def counters_add_up(self):
        for t in self.trainers:
            s = t.get_stats()
            assert t.total_step == s.total_steps == self.ended
            parts = s.full_steps + s.predict_steps + s.correct_steps + getattr(s, "warmup_steps", 0)
            assert parts == self.ended
            backward = parts - s.predict_steps
            assert s.speedup == float(F32(F32(self.ended) / F32(max(backward, 1)))) or self.ended == 0

    @invariant()
    def gate_sets_the_predict_length(self):
        """Gated: ``P`` is the rule of schedule.md section 11 applied to the telemetry, within [0, predict_steps]."""
        for t in self.trainers:
            if not t.gated:
                continue
            tel = t.telemetry
            q = None if tel.quality is None else F32(tel.quality)
            last = None if tel.prediction_cosine is None else F32(tel.prediction_cosine)
            want = gate_budget(q, last, tel.samples, t.config.gate, t.config.predict_steps)
            assert t.current_predict_steps == tel.predict_budget == want <= t.config.predict_steps


def _gate(gated, min_samples):
    return GateConfig(enabled=gated, min_samples=min_samples)


def _transition(t, phases, needs_correction, trend_rules):
    """Next (phase, phase_step, cycle, lengths) by the transition table, from the trainer's visible state."""
    P = phases
    phase, s, cycle = t.current_phase, t.phase_step, t.cycle_count
    F, L = t.current_full_steps, t.current_predict_steps
    every = t.config.correct_every
    gated = t.config.gate.enabled
    if phase is P.FULL:
        nxt = P.PREDICT if s >= F and (L > 0 or not gated) else P.FULL
    elif phase is P.PREDICT:
        if s > 0 and s % every == 0:
            nxt = P.CORRECT
        elif needs_correction:
            nxt = P.CORRECT
        else:
            nxt = P.FULL if s >= L else P.PREDICT
    elif phase is P.CORRECT:
        nxt = P.PREDICT if (L if gated else L - s) > 0 else P.FULL
    else:  # WARMUP
        nxt = P.FULL if t.predictor.is_ready() else phase
    if nxt is not phase:
        if nxt is P.FULL:
            if phase is not getattr(P, "WARMUP", None):
                cycle += 1
            s = 0
            if t.config.adaptive_phases:
                trend = adaptive_trend(list(t._recent), t.config.loss_threshold)
                F, L = trend_rules(trend, F, L)
        elif nxt is P.PREDICT and (phase is P.FULL or gated):
            s = 0
    return nxt, s, cycle, (F, L)


def _phase_rules(trend, F, L):
    if trend > 0:
        return min(F + 5, 50), max(L - 10, 10)
    if trend < 0:
        return max(F - 2, 5), min(L + 5, 100)
    return F, L


def _det_rules(trend, F, L):
    if trend > 0:
        return min(F + 2, 30), max(L - 5, 5)
    if trend < 0:
        return max(F - 1, 3), min(L + 3, 50)
    return F, L


class PhaseTrainerMachine(TrainerMachine):
    trainer_cls = PhaseTrainer
    predict_phase = TrainingPhase.PREDICT

    @initialize(
        full=st.integers(0, 4), predict=st.integers(0, 8), every=st.integers(1, 4), adaptive=st.booleans(),
        history=st.integers(1, 3), momentum=st.sampled_from([0.0, 0.5, 0.9, -1.25]), gated=st.booleans(),
        min_samples=st.integers(1, 3),
    )
    def build(self, full, predict, every, adaptive, history, momentum, gated, min_samples):
        if gated:
            full, adaptive = max(full, 1), False
        cfg = PhaseConfig(full_steps=full, predict_steps=predict, correct_every=every, adaptive_phases=adaptive,
                          prediction_config=PredictionConfig(history_size=history, momentum=momentum),
                          gate=_gate(gated, min_samples))
        self.trainers = [PhaseTrainer(SHAPES, cfg, backend=be) for be in BACKENDS]

    def expected_transition(self, t):
        return _transition(t, TrainingPhase, False, _phase_rules)

    @rule(g=gradients)
    def apply_correction(self, g):
        targets = [{k: be.xp.asarray(v.copy()) for k, v in g.items()} for be in BACKENDS]
        if not (self.in_step and self.info.phase is not TrainingPhase.FULL):  # outside a step or in FULL: refused
            self.expect_error(PhaseError, lambda t, be: t.apply_correction({k: be.xp.asarray(v.copy()) for k, v in g.items()}))
            return
        for t, tg in zip(self.trainers, targets):
            t.apply_correction(tg)
        for tg in targets[1:]:
            for n, _ in SHAPES:
                assert_bit_equal(to_host(tg[n]), to_host(targets[0][n]), n)


class DeterministicTrainerMachine(TrainerMachine):
    trainer_cls = DeterministicPhaseTrainer
    predict_phase = DeterministicPhase.PREDICT

    @initialize(
        warmup=st.integers(0, 5), full=st.integers(0, 4), predict=st.integers(0, 8), every=st.integers(1, 4),
        window=st.integers(0, 3), decay=st.sampled_from([0.5, 0.95, 1.0]), threshold=st.sampled_from([0.05, 0.5, 100.0]),
        track=st.booleans(), gated=st.booleans(), min_samples=st.integers(1, 3),
    )
    def build(self, warmup, full, predict, every, window, decay, threshold, track, gated, min_samples):
        if gated:
            full = max(full, 1)
        cfg = DeterministicPhaseConfig(warmup_steps=warmup, full_steps=full, predict_steps=predict, correct_every=every,
                                       history_window=window, history_decay=decay, residual_threshold=threshold,
                                       track_loss_history=track, adaptive_phases=not gated, gate=_gate(gated, min_samples))
        self.trainers = [DeterministicPhaseTrainer(SHAPES, cfg, backend=be) for be in BACKENDS]

    def expected_transition(self, t):
        return _transition(t, DeterministicPhase, t.predictor.needs_correction(), _det_rules)

    @precondition(lambda self: self.in_step and self.info.phase is DeterministicPhase.WARMUP)
    @rule()
    def predict_in_warmup(self):
        self.expect_error(PhaseError, lambda t, be: t.get_predicted_gradients())

    @invariant()
    def loss_history_bounded(self):
        for t in self.trainers:
            h = t.loss_history
            if h is not None:
                assert len(h) == min(self.ended, t.config.loss_history_config.max_history)


PhaseTrainerMachine.TestCase.settings = settings(settings.default, stateful_step_count=40, max_examples=max(10, settings.default.max_examples // 2))
DeterministicTrainerMachine.TestCase.settings = settings(settings.default, stateful_step_count=40, max_examples=max(10, settings.default.max_examples // 2))

TestPhaseTrainerStateMachine = PhaseTrainerMachine.TestCase
TestDeterministicTrainerStateMachine = DeterministicTrainerMachine.TestCase


def test_a_failing_call_is_reported_as_an_optim_error():
    # every error class used by the machines belongs to the one hierarchy
    for _, err in BAD_GRADIENTS.values():
        assert issubclass(err, OptimError)
    for _, err in BAD_LOSSES:
        assert issubclass(err, OptimError)
