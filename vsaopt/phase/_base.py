"""What both phase trainers share: the step protocol, the adaptive rule, float32 loss windows and the counters' state."""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from .._arrays import check_int
from ..checkpoint import Checkpointable, Fields
from ..errors import PhaseError
from ._scalar import F32, adaptive_trend, check_loss
from .telemetry import PredictionMonitor, RealGradientSums
from .types import PredictionTelemetry, StepInfo

log = logging.getLogger("vsaopt")

#: Losses kept for adaptive scheduling (the crate's ``recent_losses``).
RECENT_LOSSES = 100
#: Factor that makes ``sqrt`` of a float64 sum of squares a bound on the largest magnitude despite its roundings.
SUMSQ_SLACK = 1.0 + 2.0**-20


class TrainerBase(Checkpointable):
    """Step-protocol bookkeeping and the counters' state; subclasses define the schedule.

    A subclass names its phase enum (:attr:`_PHASES`), the phases that need real
    gradients (:attr:`_BACKWARD`) and the one that predicts (:attr:`_PREDICTING`).
    """

    _PHASES: ClassVar[Any]
    _BACKWARD: ClassVar[tuple[Any, ...]]
    _PREDICTING: ClassVar[tuple[Any, ...]]
    config: Any
    _layout: Any
    _phase: Any
    _be: Any
    _phase_step: int
    _total_step: int
    _cycle: int
    _predictor: Any
    _monitor: PredictionMonitor

    def __init__(self, param_shapes: Any, config: Any = None, backend: Any = None) -> None:  # pragma: no cover
        raise NotImplementedError

    def needs_backward(self) -> bool:
        """Whether the current phase needs real gradients."""
        return self._phase in self._BACKWARD

    def should_compute_full(self) -> bool:
        """Same as :meth:`needs_backward` (the crate's name)."""
        return self.needs_backward()

    @property
    def in_step(self) -> bool:
        """Whether a step has begun and not ended."""
        return self._in_step

    @property
    def step_has_gradients(self) -> bool:
        """Whether the step in progress has recorded or predicted its gradients."""
        return self._recorded or self._predicted

    @property
    def step_records(self) -> bool:
        """Whether the step in progress records its real gradients (``StepInfo.records``: not on PREDICT or dormant steps)."""
        return self._in_step and self.needs_backward() and not self._unrecorded

    @property
    def backend(self) -> Any:
        """The resolved backend."""
        return self._be

    @property
    def gated(self) -> bool:
        """Whether the predictability gate sets the PREDICT lengths (``config.gate.enabled``)."""
        return bool(self.config.gate.enabled)

    @property
    def telemetry(self) -> PredictionTelemetry:
        """Prediction telemetry as of the last real-gradient step (spec/schedule.md, section 11)."""
        return self._monitor.telemetry

    @property
    def layout(self) -> Any:
        """The declared parameters (:class:`~vsaopt._grads.ParamLayout`: names, shapes, sizes, flat offsets)."""
        return self._layout

    @property
    def param_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """The declared ``(name, shape)`` pairs (a new list)."""
        return list(self._layout.pairs)

    @property
    def current_phase(self) -> Any:
        """Phase of the current (or last begun) step."""
        return self._phase

    @property
    def cycle_count(self) -> int:
        """Entries into FULL after the first (the deterministic trainer's first is the one that ends warmup)."""
        return self._cycle

    @property
    def speedup_ratio(self) -> float:
        """Total steps / max(steps with a backward pass, 1), float32 (both counted by :meth:`end_step`)."""
        backward = sum(self._taken[p] for p in self._BACKWARD)
        return float(F32(F32(self._total_step) / F32(max(backward, 1))))

    @property
    def current_full_steps(self) -> int:
        """FULL length now in use (adaptive scheduling changes it; the config keeps the initial one)."""
        return self._full_len

    @property
    def current_predict_steps(self) -> int:
        """PREDICT length now in use."""
        return self._predict_len

    @property
    def phase_step(self) -> int:
        """Steps taken in the current phase run."""
        return self._phase_step

    @property
    def total_step(self) -> int:
        """Steps ended so far."""
        return self._total_step

    @property
    def predictor_state_bytes(self) -> int:
        """Bytes of predictor state held now (spec/history.md §4); also in the predictor's stats."""
        return int(self._predictor.state_bytes)

    def _next_phase(self) -> Any:  # pragma: no cover - defined by each trainer
        raise NotImplementedError

    def _enter(self, phase: Any) -> None:  # pragma: no cover - defined by each trainer
        raise NotImplementedError

    def begin_step(self) -> StepInfo:
        """Start a step: apply at most one phase transition and say what this step is.

        Raises
        ------
        PhaseError
            The previous step has not ended.
        """
        self._require_idle("begin_step")
        nxt = self._next_phase()
        changed = nxt is not self._phase
        if changed:
            self._enter(nxt)
        self._in_step, self._recorded, self._predicted = True, False, False
        backward = self.needs_backward()
        self._unrecorded = backward and not self._monitor.dormancy.records
        return StepInfo(self._phase, self._phase_step, self._total_step, self._cycle, changed, backward,
                        self._monitor.telemetry, records=backward and not self._unrecorded)

    def _initial_predict_len(self) -> int:
        """The configured PREDICT length; 0 for a gated schedule until its first measurements allow more."""
        return 0 if self.gated else int(self.config.predict_steps)

    def _record_flat(self, flat: Any, correct: bool, max_abs: float) -> tuple[float, float] | None:  # pragma: no cover
        """Record a validated flat gradient (``max_abs`` bounds its magnitudes) in the predictor; the prediction's sums when the record took them."""
        raise NotImplementedError

    def _record_real(self, gradients: Any, batch_size: Any, correct: bool) -> None:
        """Validate a backward step's gradients and batch size, record them (``correct``: a CORRECT step) and measure them.

        One pass (kernel ``gather_stats``) copies the gradients into the flat
        row the predictor records and takes every sum the telemetry needs; the
        sum of squares is the finite check, and nothing changes when a check
        fails.  Where the predictor's record itself reads the prediction's
        operands (a least-squares correction, kernel ``residual_stats``), it
        takes the prediction's sums there instead, of the same values (the
        prediction before this record).  When gated, the measurement sets the
        next PREDICT length (section 11).
        """
        self.require_backward("record_full_gradients")
        if batch_size is not None:
            check_int(batch_size, "batch_size", 1, 2**62)
        if self._unrecorded:  # a dormant step (section 11): the gradients are not read
            self._recorded = True
            return
        be, lay, p = self._be, self._layout, self._predictor
        pieces = lay.pieces(gradients, be, "gradients")
        priming = self._monitor.dormancy.priming  # a dormant sample's record that refills the history, unmeasured
        previous = None if priming else p.newest_flat()
        in_record = not priming and p.record_measures_prediction(correct)
        own_prediction = None if priming or p.prediction_is_newest or in_record else p.prediction_operand()
        flat = p.scratch_row()  # written now, kept by the predictor only if every check passes
        g2, d_prev, d_pred, p2 = be.gather_stats(pieces, flat, previous, own_prediction)
        if not math.isfinite(g2):
            lay.raise_non_finite(flat, be, "gradients")
        max_abs = math.sqrt(g2) * SUMSQ_SLACK  # >= max |g|: predictions are checked only when this allows an overflow
        if priming:
            self._record_flat(flat, correct, max_abs)
            self._recorded = True
            self._monitor.prime(g2)
            return
        prev2 = 0.0 if previous is None else self._monitor.previous_sumsq(previous)
        if p.prediction_is_newest:
            d_pred, p2 = d_prev, prev2
        measured = self._record_flat(flat, correct, max_abs)  # not None exactly when in_record
        if measured is not None:
            d_pred, p2 = measured
        self._recorded = True
        sums = RealGradientSums(g2, d_prev, prev2, d_pred, 0.0 if p2 is None else p2)
        cap = int(self.config.predict_steps) if self.gated else self._predict_len
        budget = self._monitor.measure(sums, step=self._total_step, batch_size=batch_size, cap=cap)
        t = self._monitor.telemetry
        log.debug("%s step %d telemetry: prediction cosine %s, rho %s, quality %s, budget %d", type(self).__name__,
                  self._total_step, t.prediction_cosine, t.rho, t.quality, budget)
        if self.gated:
            self._predict_len = budget

    #: ``(full_up, full_max, predict_down, predict_min, full_down, full_min, predict_up, predict_max)``.
    _ADAPT_RULE: tuple[int, int, int, int, int, int, int, int]
    _full_len: int
    _predict_len: int

    def _adapt(self) -> None:
        """Adjust the current phase lengths to the loss trend of the recent window (spec/schedule.md)."""
        f_up, f_max, p_down, p_min, f_down, f_min, p_up, p_max = self._ADAPT_RULE
        trend = self._trend(self.config.loss_threshold)
        before = (self._full_len, self._predict_len)
        if trend > 0:
            self._full_len = min(self._full_len + f_up, f_max)
            self._predict_len = max(self._predict_len - p_down, p_min)
        elif trend < 0:
            self._full_len = max(self._full_len - f_down, f_min)
            self._predict_len = min(self._predict_len + p_up, p_max)
        if before != (self._full_len, self._predict_len):
            log.debug("%s adaptive: full %d -> %d, predict %d -> %d", type(self).__name__, before[0], self._full_len,
                      before[1], self._predict_len)

    def _reset_step_counters(self) -> None:
        """Back to the first phase with no step taken (the phase lengths are the trainer's to reset)."""
        self._in_step = False
        self._recorded = False
        self._predicted = False
        self._unrecorded = False  # this step is a dormant one: its gradients are not recorded
        self._recent: deque[np.float32] = deque(maxlen=RECENT_LOSSES)
        self._phase = next(iter(self._PHASES))
        self._phase_step = 0
        self._total_step = 0
        self._cycle = 0
        self._taken = {p: 0 for p in self._PHASES}
        self._monitor.reset()

    def _record_loss(self, loss: np.float32) -> None:  # pragma: no cover - defined by each trainer
        raise NotImplementedError

    def end_step(self, loss: float | None) -> None:
        """End the step with its loss (finite; used as float32), or ``None`` when no loss was measured.

        ``end_step(None)`` is a vsaopt extension of the crate's API (spec/schedule.md,
        sections 3 and 4): a PREDICT step may skip its forward pass too.  The step is
        counted as usual, but no loss enters the adaptive window or the trainer's
        loss records, so adaptive scheduling uses measured losses only.

        Raises
        ------
        PhaseError
            No step in progress.
        DTypeError, NonFiniteError
            ``loss`` is not a real number (or None) or not finite as float32 (nothing is changed).
        """
        v = None if loss is None else check_loss(loss)
        self._require_step("end_step")
        self._count_step(v, self._unrecorded)
        self._in_step, self._recorded, self._predicted, self._unrecorded = False, False, False, False

    def _count_step(self, v: np.float32 | None, unrecorded: bool) -> None:
        """Count the step ending now: its checked loss ``v`` (None: no loss) and, for a dormant step, one fewer left unrecorded."""
        if v is not None:
            self._recent.append(v)
            self._record_loss(v)
        if unrecorded:
            self._monitor.dormancy.skipped()
        self._taken[self._phase] += 1
        self._phase_step += 1
        self._total_step += 1

    @property
    def next_step_dormant(self) -> bool:
        """Whether the step begun next is a dormant one: a real step a closed gate leaves unrecorded (section 11); False during a step."""
        return not self._in_step and self._monitor.dormancy.left > 0 and self._next_phase() in self._BACKWARD

    def take_dormant_step(self, loss: float | None) -> None:
        """A whole dormant step in one call: ``begin_step()``, ``record_full_gradients`` (which reads nothing) and ``end_step(loss)``.

        For a caller that knows from :attr:`next_step_dormant` that the next
        step records nothing and has run its backward pass and update already
        (the PyTorch adapter's ``step``): the same state as the three calls,
        with none of their per-step objects.

        Raises
        ------
        PhaseError
            A step is in progress, or the next step is not a dormant one.
        DTypeError, NonFiniteError
            ``loss`` is not a real number (or None) or not finite as float32 (nothing is changed).
        """
        v = None if loss is None else check_loss(loss)
        self._require_idle("take_dormant_step")
        nxt = self._next_phase()
        if not self._monitor.dormancy.left or nxt not in self._BACKWARD:  # next_step_dormant, with the phase kept
            raise PhaseError(f"take_dormant_step: step {self._total_step} is not a dormant step (see next_step_dormant)")
        if nxt is not self._phase:
            self._enter(nxt)
        self._count_step(v, True)

    # --- step protocol -------------------------------------------------------------

    def _require_idle(self, what: str) -> None:
        if self._in_step:
            raise PhaseError(f"{what}: the step begun at total_step {self._total_step} has not ended (call end_step first)")

    def _require_step(self, what: str) -> None:
        if not self._in_step:
            raise PhaseError(f"{what}: no step in progress (call begin_step first)")

    def require_backward(self, what: str) -> None:
        """Raise :class:`PhaseError` unless real gradients may be recorded now (``what`` names the caller)."""
        self._require_step(what)
        if not self.needs_backward():
            raise PhaseError(f"{what}: phase {self._phase} uses predicted gradients; real gradients are recorded only in backward phases")
        if self._recorded:
            raise PhaseError(f"{what}: gradients were already recorded in this step")

    def require_predict(self, what: str) -> None:
        """Raise :class:`PhaseError` unless gradients may be predicted now (``what`` names the caller)."""
        self._require_predict(what)

    def _require_predict(self, what: str) -> None:
        self._require_step(what)
        if self._phase not in self._PREDICTING:
            raise PhaseError(f"{what}: phase {self._phase} needs real gradients: record them in this step, no prediction is made")
        if self._predicted:
            raise PhaseError(f"{what}: gradients were already predicted in this step")

    def predict_gradients_into(self, out: Any) -> None:
        """Write this PREDICT step's predicted gradients into ``out``, one flat float32 vector (declaration order).

        The same values and bookkeeping as :meth:`get_predicted_gradients`, without a
        mapping or a copy of its own: for callers whose gradients live in one
        buffer (``out`` may be viewed by a framework's gradient tensors).

        Raises
        ------
        PhaseError
            Outside a step, outside a PREDICT step (or during warmup), or a second time in one step.
        DTypeError, ShapeError
            ``out`` is not a writeable 1-D C-contiguous float32 array of the backend with one element per parameter element.
        """
        self._require_predict("predict_gradients_into")
        self._layout.require_flat(out, self._be, "out")
        self._predictor.predict_into(out)
        self._predicted = True

    def _trend(self, loss_threshold: float) -> int:
        return adaptive_trend(list(self._recent), loss_threshold)

    # --- state ---------------------------------------------------------------------------

    def _export_counters(self) -> tuple[dict, dict]:
        """The step protocol's fields, shared by both trainers."""
        header = {
            "phase": self._phase.name,
            "phase_step": self._phase_step,
            "total_step": self._total_step,
            "cycle": self._cycle,
            "full_len": self._full_len,
            "predict_len": self._predict_len,
            "taken": {p.name: self._taken[p] for p in self._PHASES},
            "in_step": self._in_step,
            "recorded": self._recorded,
            "predicted": self._predicted,
            "unrecorded": self._unrecorded,
        }
        arrays = {"recent_losses": np.array(list(self._recent), dtype=np.float32)}
        self.nest("telemetry", self._monitor, header, arrays)
        return header, arrays

    def _phase_len_range(self, configured: int, lo: int, hi: int) -> tuple[int, int]:
        """Lengths a phase can have: the configured one, or anything the adaptive rule reaches from it."""
        if not self.config.adaptive_phases:
            return configured, configured
        return min(configured, lo), max(configured, hi)

    def _import_counters(self, f: Fields) -> Callable[[], None]:
        """Validate the step protocol's fields; the returned function installs them."""
        f_up, f_max, p_down, p_min, f_down, f_min, p_up, p_max = self._ADAPT_RULE
        phase = f.enum("phase", self._PHASES)
        total = f.integer("total_step")
        phase_step = f.integer("phase_step", 0, total)
        cycle = f.integer("cycle", 0, total)
        full_len = f.integer("full_len", *self._phase_len_range(self.config.full_steps, f_min, f_max))
        predict_range = (0, self.config.predict_steps) if self.gated else self._phase_len_range(self.config.predict_steps, p_min, p_max)
        predict_len = f.integer("predict_len", *predict_range)
        taken = f.counts("taken", self._PHASES)
        in_step, recorded, predicted = f.boolean("in_step"), f.boolean("recorded"), f.boolean("predicted")
        unrecorded = f.boolean("unrecorded") if "unrecorded" in f.header else False
        recent = f.f32_list("recent_losses", RECENT_LOSSES)
        f.require(sum(taken.values()) == total, "phase counters do not add up to total_step")
        f.require(not recorded or (in_step and phase in self._BACKWARD), "gradients recorded outside a backward step")
        f.require(not predicted or (in_step and phase in self._PREDICTING), "gradients predicted outside a PREDICT step")
        f.require(not unrecorded or (in_step and phase in self._BACKWARD), "a dormant step outside a backward step")
        install_monitor = self._monitor.import_state(f.sub("telemetry"), total, predict_range[1])

        def install() -> None:
            install_monitor()
            self._phase, self._phase_step, self._total_step, self._cycle = phase, phase_step, total, cycle
            self._full_len, self._predict_len = full_len, predict_len
            self._taken = taken
            self._in_step, self._recorded, self._predicted, self._unrecorded = in_step, recorded, predicted, unrecorded
            self._recent = deque(recent, maxlen=RECENT_LOSSES)

        return install
