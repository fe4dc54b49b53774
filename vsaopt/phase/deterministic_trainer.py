"""Phase training with least-squares prediction (the crate's ``DeterministicPhaseTrainer``).

WARMUP -> FULL -> PREDICT <-> CORRECT -> FULL -> ...; the schedule is
vsa-optim-rs 0.1.1's (spec/schedule.md, "DeterministicPhaseTrainer").
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

import numpy as np

from ..backend import resolve_backend
from ..errors import CheckpointError, ConfigError, PhaseError
from ._base import TrainerBase, log
from ._layout import ParamLayout
from ._scalar import F32, check_loss
from .configs import DeterministicPhaseConfig
from .deterministic_predictor import DeterministicPredictor
from .loss_history import LossHistory
from .types import DeterministicPhase, DeterministicTrainerStats

__all__ = ["DeterministicPhaseTrainer"]

_BACKWARD = (DeterministicPhase.WARMUP, DeterministicPhase.FULL, DeterministicPhase.CORRECT)


class DeterministicPhaseTrainer(TrainerBase):
    """Phase trainer whose predictions come from a weighted least-squares fit of the gradient history.

    Parameters
    ----------
    param_shapes : sequence of (name, shape)
    config : DeterministicPhaseConfig
    backend : None, a backend name or a backend object

    Examples
    --------
    Gradients that change linearly with the step are predicted exactly:

    >>> import numpy as np
    >>> cfg = DeterministicPhaseConfig(warmup_steps=3, full_steps=2, predict_steps=4, correct_every=2)
    >>> trainer = DeterministicPhaseTrainer([("w", (2,))], cfg, backend="numpy")
    >>> for step in range(8):
    ...     info = trainer.begin_step()
    ...     g = np.full(2, 1.0 + 0.25 * step, np.float32)
    ...     if info.needs_backward:
    ...         trainer.record_full_gradients({"w": g})
    ...     else:
    ...         assert np.array_equal(trainer.get_predicted_gradients()["w"], g)
    ...     trainer.end_step(1.0)
    >>> print(trainer.get_stats())
    Steps: 8 | Cycles: 0 | Speedup: 1.33x | Warmup: 3 | Full: 2 | Predict: 2 | Correct: 1
    """

    _kind = "DeterministicPhaseTrainer"

    #: Adaptive rule (crate): rising loss: full + 2 (<= 30), predict - 5 (>= 5); falling: full - 1 (>= 3), predict + 3 (<= 50).
    _ADAPT_RULE = (2, 30, 5, 5, 1, 3, 3, 50)

    def __init__(self, param_shapes: Any, config: DeterministicPhaseConfig | None = None, backend: Any = None) -> None:
        if config is None:
            config = DeterministicPhaseConfig()
        if not isinstance(config, DeterministicPhaseConfig):
            raise ConfigError(f"config: expected a DeterministicPhaseConfig, got {type(config).__name__}")
        self.config = config
        self._layout = ParamLayout(param_shapes)
        self._be = resolve_backend(backend)
        self._predictor = DeterministicPredictor(self._layout.pairs(), config.predictor_config(), self._be)
        self._history = LossHistory(config.loss_history_config) if config.track_loss_history else None
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._init_step_state()
        self._phase = DeterministicPhase.WARMUP
        self._phase_step = 0
        self._total_step = 0
        self._cycle = 0
        self._taken = {p: 0 for p in DeterministicPhase}
        self._last_loss = F32(0.0)
        self._warmup_complete = False
        self._full_len = self.config.full_steps
        self._predict_len = self.config.predict_steps

    # --- properties ----------------------------------------------------------------

    @property
    def current_phase(self) -> DeterministicPhase:
        """Phase of the current (or last begun) step."""
        return self._phase

    @property
    def cycle_count(self) -> int:
        """Entries into FULL other than the one that ends warmup."""
        return self._cycle

    @property
    def warmup_complete(self) -> bool:
        """Whether FULL has been entered (warmup over)."""
        return self._warmup_complete

    @property
    def loss_history(self) -> LossHistory | None:
        """The :class:`LossHistory` (None when ``track_loss_history`` is False)."""
        return self._history

    @property
    def predictor(self) -> DeterministicPredictor:
        """The least-squares predictor (read its state; drive it through the trainer)."""
        return self._predictor

    @property
    def speedup_ratio(self) -> float:
        """Total steps / max(WARMUP + FULL + CORRECT steps, 1), float32."""
        backward = sum(self._taken[p] for p in _BACKWARD)
        return float(F32(F32(self._total_step) / F32(max(backward, 1))))

    @property
    def current_full_steps(self) -> int:
        """FULL length now in use."""
        return self._full_len

    @property
    def current_predict_steps(self) -> int:
        """PREDICT length now in use."""
        return self._predict_len

    def needs_backward(self) -> bool:
        """Whether the current phase needs real gradients (WARMUP, FULL, CORRECT)."""
        return self._phase in _BACKWARD

    def should_compute_full(self) -> bool:
        """Same as :meth:`needs_backward`."""
        return self.needs_backward()

    # --- schedule ------------------------------------------------------------------------

    def _next_phase(self) -> DeterministicPhase:
        p, s = self._phase, self._phase_step
        if p is DeterministicPhase.WARMUP:
            return DeterministicPhase.FULL if self._predictor.is_ready() else p
        if p is DeterministicPhase.FULL:
            return DeterministicPhase.PREDICT if s >= self._full_len else p
        if p is DeterministicPhase.PREDICT:
            if s > 0 and s % self.config.correct_every == 0:
                return DeterministicPhase.CORRECT
            if self._predictor.needs_correction():
                return DeterministicPhase.CORRECT
            if s >= self._predict_len:
                return DeterministicPhase.FULL
            return p
        return DeterministicPhase.PREDICT if self._predict_len - s > 0 else DeterministicPhase.FULL

    def _enter(self, new: DeterministicPhase) -> None:
        old = self._phase
        self._phase = new
        log.debug("DeterministicPhaseTrainer step %d: %s -> %s", self._total_step, old, new)
        if new is DeterministicPhase.FULL:
            if old is not DeterministicPhase.WARMUP:
                self._cycle += 1
            self._phase_step = 0
            self._warmup_complete = True
            if self.config.adaptive_phases:
                self._adapt()
        elif new is DeterministicPhase.PREDICT and old is DeterministicPhase.FULL:
            self._phase_step = 0

    def record_full_gradients(self, gradients: Any) -> None:
        """Record this step's real gradients (WARMUP, FULL, CORRECT); in CORRECT the residual is updated first.

        Raises
        ------
        PhaseError
            Outside a step, in PREDICT, or a second time in one step.
        ConfigError, ShapeError, DTypeError, NonFiniteError, BackendError
            Bad gradients (nothing is changed).
        """
        self._require_backward("record_full_gradients")
        flat = self._layout.flatten(gradients, self._be, "gradients")
        self._predictor._record(flat, self._phase is DeterministicPhase.CORRECT)
        self._recorded = True

    def get_predicted_gradients(self) -> dict[str, Any]:
        """This PREDICT step's predicted gradients (mapping name -> backend array).

        Raises
        ------
        PhaseError
            During warmup, outside a PREDICT step, or a second time in one step.
        """
        if not self._warmup_complete:
            raise PhaseError("get_predicted_gradients: cannot predict during warmup")
        self._require_predict("get_predicted_gradients")
        if self._phase is not DeterministicPhase.PREDICT:
            raise PhaseError(f"get_predicted_gradients: phase {self._phase} needs real gradients (record_full_gradients)")
        out = self._predictor.predict_gradient()
        self._predicted = True
        return out

    def end_step(self, loss: float | None) -> None:
        """End the step with its loss (finite; used as float32), or ``None`` when no loss was measured.

        ``end_step(None)`` is a vsaopt extension (spec/schedule.md, section 4): the
        step is counted, but the adaptive window, ``last_loss`` and the loss
        history see measured losses only.

        Raises
        ------
        PhaseError
            No step in progress.
        DTypeError, NonFiniteError
            Bad loss (nothing is changed).
        """
        v = None if loss is None else check_loss(loss)
        self._require_step("end_step")
        if v is not None:
            self._recent.append(v)
            self._last_loss = v
            if self._history is not None:
                self._history.record(v, self._phase)
        self._taken[self._phase] += 1
        self._phase_step += 1
        self._total_step += 1
        self._in_step = False

    def get_stats(self) -> DeterministicTrainerStats:
        """Counters, float32 speedup, the predictor's mean error and the last loss."""
        t = self._taken
        return DeterministicTrainerStats(
            self._total_step,
            t[DeterministicPhase.WARMUP],
            t[DeterministicPhase.FULL],
            t[DeterministicPhase.PREDICT],
            t[DeterministicPhase.CORRECT],
            self._cycle,
            self.speedup_ratio,
            self._predictor.get_stats().mean_abs_error,
            float(self._last_loss),
        )

    def reset(self) -> None:
        """Back to WARMUP with empty history and the config's phase lengths."""
        self._predictor.reset()
        if self._history is not None:
            self._history.clear()
        self._reset_counters()

    # --- state ---------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The complete state: ``{"header": JSON-able dict, "arrays": name -> numpy array}``.

        Examples
        --------
        >>> t = DeterministicPhaseTrainer([("w", (2,))], backend="numpy")
        >>> t.state_dict()["header"]["phase"]
        'WARMUP'
        """
        p_header, p_arrays = self._predictor.state_arrays()
        header: dict[str, Any] = {
            "phase": self._phase.name,
            "phase_step": self._phase_step,
            "total_step": self._total_step,
            "cycle": self._cycle,
            "full_len": self._full_len,
            "predict_len": self._predict_len,
            "taken": {p.name: self._taken[p] for p in DeterministicPhase},
            "warmup_complete": self._warmup_complete,
            "in_step": self._in_step,
            "recorded": self._recorded,
            "predicted": self._predicted,
            "predictor": p_header,
        }
        arrays = {
            "recent_losses": np.array(list(self._recent), dtype=np.float32),
            "last_loss": np.array(self._last_loss, dtype=np.float32),
            **self._prefixed("predictor", p_arrays),
        }
        if self._history is not None:
            h_header, h_arrays = self._history.state_arrays()
            header["loss_history"] = h_header
            arrays.update(self._prefixed("loss_history", h_arrays))
        return self._frame(header, arrays)

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` of a trainer with the same config and parameters.

        Raises
        ------
        CheckpointError
            Wrong format, version, kind, config or parameters, or a modified state; the trainer is unchanged.
        """
        header, arrays = self._unframe(state)
        try:
            phase = DeterministicPhase[header["phase"]]
            taken = {p: header["taken"][p.name] for p in DeterministicPhase}
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"state dict: malformed phase counters ({exc})") from None
        ints = self._ints(header, ("phase_step", "total_step", "cycle", "full_len", "predict_len"))
        flags = self._bools(header, ("warmup_complete", "in_step", "recorded", "predicted"))
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in taken.values()) or sum(taken.values()) != ints["total_step"]:
            raise CheckpointError("state dict: phase counters do not add up to total_step")
        recent = self._f32_list(arrays, "recent_losses", 100)
        last = arrays.get("last_loss")
        if not isinstance(last, np.ndarray) or last.dtype != np.float32 or last.shape != () or not np.isfinite(last):
            raise CheckpointError("state dict: last_loss must be a finite float32 scalar")
        predictor = DeterministicPredictor(self._layout.pairs(), self.config.predictor_config(), self._be)
        predictor.load_state_arrays(header.get("predictor", {}), self._unprefixed("predictor", arrays))
        history = None
        if self.config.track_loss_history:
            history = LossHistory.from_state_arrays(header.get("loss_history", {}), self._unprefixed("loss_history", arrays))
            if history.config != self.config.loss_history_config:
                raise CheckpointError("state dict: loss history config differs from the trainer's")
        self._predictor = predictor
        self._history = history
        self._phase = phase
        self._phase_step = ints["phase_step"]
        self._total_step = ints["total_step"]
        self._cycle = ints["cycle"]
        self._full_len = ints["full_len"]
        self._predict_len = ints["predict_len"]
        self._taken = taken
        self._warmup_complete = flags["warmup_complete"]
        self._in_step, self._recorded, self._predicted = flags["in_step"], flags["recorded"], flags["predicted"]
        self._recent = deque(recent, maxlen=100)
        self._last_loss = F32(last)

    @classmethod
    def load(cls, path: str | os.PathLike, backend: Any = None) -> DeterministicPhaseTrainer:
        """A trainer rebuilt from a file written by :meth:`save`.

        Raises
        ------
        CheckpointError
            The file is missing, truncated, modified, of another kind or version.
        """
        return cls._from_file(path, backend, DeterministicPhaseConfig)
