"""Phase training with momentum prediction (the crate's ``PhaseTrainer``): FULL -> PREDICT <-> CORRECT -> FULL.

The schedule is vsa-optim-rs 0.1.1's, transition for transition
(spec/schedule.md, "PhaseTrainer").
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
from ._scalar import F32, check_loss, sum_f32
from .configs import PhaseConfig
from .momentum_predictor import GradientPredictor
from .types import TrainerStats, TrainingPhase

__all__ = ["PhaseTrainer"]

#: Losses per phase kept for :meth:`PhaseTrainer.get_stats` (the crate averages the last 100).
PHASE_LOSSES = 100


class PhaseTrainer(TrainerBase):
    """Decides at each step whether to backpropagate (FULL, CORRECT) or to use predicted gradients (PREDICT).

    Parameters
    ----------
    param_shapes : sequence of (name, shape)
        The parameters whose gradients are recorded and predicted.
    config : PhaseConfig
    backend : None, a backend name or a backend object

    Examples
    --------
    >>> import numpy as np
    >>> trainer = PhaseTrainer([("w", (3,))], PhaseConfig(full_steps=2, predict_steps=4, correct_every=2), backend="numpy")
    >>> phases = []
    >>> for step in range(8):
    ...     info = trainer.begin_step()
    ...     phases.append(str(info.phase))
    ...     if info.needs_backward:
    ...         trainer.record_full_gradients({"w": np.full(3, 1.0 / (step + 1), np.float32)})
    ...     else:
    ...         grads = trainer.get_predicted_gradients()
    ...     trainer.end_step(1.0)
    >>> phases
    ['FULL', 'FULL', 'PREDICT', 'PREDICT', 'CORRECT', 'PREDICT', 'CORRECT', 'FULL']
    >>> print(trainer.get_stats())
    Steps: 8 | Cycles: 1 | Speedup: 1.60x | Full: 3 | Predict: 3 | Correct: 2
    """

    _kind = "PhaseTrainer"

    #: Adaptive rule (crate): rising loss: full + 5 (<= 50), predict - 10 (>= 10); falling: full - 2 (>= 5), predict + 5 (<= 100).
    _ADAPT_RULE = (5, 50, 10, 10, 2, 5, 5, 100)

    def __init__(self, param_shapes: Any, config: PhaseConfig | None = None, backend: Any = None) -> None:
        if config is None:
            config = PhaseConfig()
        if not isinstance(config, PhaseConfig):
            raise ConfigError(f"config: expected a PhaseConfig, got {type(config).__name__}")
        self.config = config
        self._layout = ParamLayout(param_shapes)
        self._be = resolve_backend(backend)
        self._predictor = GradientPredictor(self._layout.pairs(), config.prediction_config, self._be)
        self._ternary: Any = None
        self._vsa: Any = None
        self._full_len = config.full_steps
        self._predict_len = config.predict_steps
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._init_step_state()
        self._phase = TrainingPhase.FULL
        self._phase_step = 0
        self._total_step = 0
        self._cycle = 0
        self._speedup = F32(1.0)
        self._taken = {p: 0 for p in TrainingPhase}
        self._phase_losses: dict[TrainingPhase, deque[np.float32]] = {p: deque(maxlen=PHASE_LOSSES) for p in TrainingPhase}

    # --- properties ------------------------------------------------------------------

    @property
    def current_phase(self) -> TrainingPhase:
        """Phase of the current (or last begun) step."""
        return self._phase

    @property
    def cycle_count(self) -> int:
        """Entries into FULL after the first."""
        return self._cycle

    @property
    def speedup_ratio(self) -> float:
        """Total steps / max(FULL + CORRECT steps, 1), float32, updated by :meth:`end_step`."""
        return float(self._speedup)

    @property
    def current_full_steps(self) -> int:
        """FULL length now in use (adaptive scheduling changes it; the config keeps the initial one)."""
        return self._full_len

    @property
    def current_predict_steps(self) -> int:
        """PREDICT length now in use."""
        return self._predict_len

    @property
    def ternary_accumulator(self) -> Any:
        """A :class:`vsaopt.accumulator.TernaryGradientAccumulator` for ``config.ternary_config``, built on first use."""
        if self._ternary is None:
            from ..accumulator import TernaryGradientAccumulator

            self._ternary = TernaryGradientAccumulator(self._layout.pairs(), self.config.ternary_config, backend=self._be)
        return self._ternary

    @property
    def vsa_compressor(self) -> Any:
        """A :class:`vsaopt.compressor.VSAGradientCompressor` for ``config.vsa_config``, built on first use."""
        if self._vsa is None:
            from ..compressor import VSAGradientCompressor

            self._vsa = VSAGradientCompressor(self._layout.pairs(), self.config.vsa_config, backend=self._be)
        return self._vsa

    def needs_backward(self) -> bool:
        """Whether the current phase needs real gradients (FULL or CORRECT)."""
        return self._phase in (TrainingPhase.FULL, TrainingPhase.CORRECT)

    def should_compute_full(self) -> bool:
        """Same as :meth:`needs_backward` (the crate's name)."""
        return self.needs_backward()

    # --- schedule ------------------------------------------------------------------------

    def _next_phase(self) -> TrainingPhase:
        p, s = self._phase, self._phase_step
        if p is TrainingPhase.FULL:
            return TrainingPhase.PREDICT if s >= self._full_len else p
        if p is TrainingPhase.PREDICT:
            if s > 0 and s % self.config.correct_every == 0:
                return TrainingPhase.CORRECT
            if s >= self._predict_len:
                return TrainingPhase.FULL
            return p
        return TrainingPhase.PREDICT if self._predict_len - s > 0 else TrainingPhase.FULL

    def _enter(self, new: TrainingPhase) -> None:
        old = self._phase
        self._phase = new
        log.debug("PhaseTrainer step %d: %s -> %s", self._total_step, old, new)
        if new is TrainingPhase.FULL:
            self._phase_step = 0
            self._cycle += 1
            if self.config.adaptive_phases:
                self._adapt()
        elif new is TrainingPhase.PREDICT and old is TrainingPhase.FULL:
            self._phase_step = 0

    def record_full_gradients(self, gradients: Any) -> None:
        """Record this step's real gradients (FULL or CORRECT); in CORRECT also accumulate ``actual - last prediction``.

        Raises
        ------
        PhaseError
            Outside a step, in PREDICT, or a second time in one step.
        ConfigError, ShapeError, DTypeError, NonFiniteError, BackendError
            Missing or unknown names, wrong shapes or dtypes, NaN/Inf, arrays of another backend.
        """
        self._require_backward("record_full_gradients")
        flat = self._layout.flatten(gradients, self._be, "gradients")
        self._predictor._push(flat)
        if self._phase is TrainingPhase.CORRECT and self._predictor._last_prediction is not None:
            self._predictor._correct(flat)
        self._recorded = True

    def get_predicted_gradients(self) -> dict[str, Any]:
        """This PREDICT step's predicted gradients (mapping name -> backend array).

        Raises
        ------
        PhaseError
            Outside a step, outside PREDICT, or a second time in one step.
        """
        self._require_predict("get_predicted_gradients")
        if self._phase is not TrainingPhase.PREDICT:
            raise PhaseError(f"get_predicted_gradients: phase {self._phase} needs real gradients (record_full_gradients)")
        out = self._predictor.predict_gradient()
        self._predicted = True
        return out

    def apply_correction(self, gradients: Any) -> None:
        """Add ``correction_weight`` x the accumulated corrections to ``gradients`` in place, then clear them."""
        self._predictor.apply_correction(gradients)

    def end_step(self, loss: float | None) -> None:
        """End the step with its loss (finite; used as float32), or ``None`` when no loss was measured.

        ``end_step(None)`` is a vsaopt extension of the crate's API (spec/schedule.md,
        section 3): a PREDICT step may skip its forward pass too.  The step is
        counted as usual, but no loss enters the adaptive window or the per-phase
        averages, so adaptive scheduling uses measured losses only.

        Raises
        ------
        PhaseError
            No step in progress.
        DTypeError, NonFiniteError
            ``loss`` is not a real number (or None) or not finite as float32.
        """
        v = None if loss is None else check_loss(loss)
        self._require_step("end_step")
        if v is not None:
            self._recent.append(v)
            self._phase_losses[self._phase].append(v)
        self._taken[self._phase] += 1
        self._phase_step += 1
        self._total_step += 1
        backward = self._taken[TrainingPhase.FULL] + self._taken[TrainingPhase.CORRECT]
        self._speedup = F32(F32(self._total_step) / F32(max(backward, 1)))
        self._in_step = False

    def get_stats(self) -> TrainerStats:
        """Counters, current phase lengths and the float32 mean of each phase's last 100 losses (newest first)."""
        avgs = {}
        for p in TrainingPhase:
            losses = self._phase_losses[p]
            if losses:
                avgs[p] = float(F32(sum_f32(losses[-1 - i] for i in range(len(losses))) / F32(len(losses))))
        t = self._taken
        return TrainerStats(
            self._total_step,
            self._cycle,
            float(self._speedup),
            t[TrainingPhase.FULL],
            t[TrainingPhase.PREDICT],
            t[TrainingPhase.CORRECT],
            self._full_len,
            self._predict_len,
            avgs,
        )

    def reset(self) -> None:
        """Back to the first FULL step with empty history; the adapted phase lengths are kept (as in the crate)."""
        self._predictor.reset()
        if self._ternary is not None:
            self._ternary.reset()
        self._reset_counters()

    # --- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The complete state: ``{"header": JSON-able dict, "arrays": name -> numpy array}``.

        Examples
        --------
        >>> t = PhaseTrainer([("w", (2,))], backend="numpy")
        >>> sd = t.state_dict()
        >>> sd["header"]["kind"], sorted(sd["arrays"])[:2]
        ('PhaseTrainer', ['loss.CORRECT', 'loss.FULL'])
        """
        p_header, p_arrays = self._predictor.state_arrays()
        header = {
            "phase": self._phase.name,
            "phase_step": self._phase_step,
            "total_step": self._total_step,
            "cycle": self._cycle,
            "full_len": self._full_len,
            "predict_len": self._predict_len,
            "taken": {p.name: self._taken[p] for p in TrainingPhase},
            "in_step": self._in_step,
            "recorded": self._recorded,
            "predicted": self._predicted,
            "predictor": p_header,
        }
        arrays = {
            "recent_losses": np.array(list(self._recent), dtype=np.float32),
            "speedup": np.array(self._speedup, dtype=np.float32),
            **{f"loss.{p.name}": np.array(list(self._phase_losses[p]), dtype=np.float32) for p in TrainingPhase},
            **self._prefixed("predictor", p_arrays),
        }
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
            phase = TrainingPhase[header["phase"]]
            taken_in = header["taken"]
            taken = {p: taken_in[p.name] for p in TrainingPhase}
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"state dict: malformed phase counters ({exc})") from None
        ints = self._ints(header, ("phase_step", "total_step", "cycle", "full_len", "predict_len"))
        flags = self._bools(header, ("in_step", "recorded", "predicted"))
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in taken.values()) or sum(taken.values()) != ints["total_step"]:
            raise CheckpointError("state dict: phase counters do not add up to total_step")
        recent = self._f32_list(arrays, "recent_losses", 100)
        plosses = {p: self._f32_list(arrays, f"loss.{p.name}", PHASE_LOSSES) for p in TrainingPhase}
        speed = arrays.get("speedup")
        if not isinstance(speed, np.ndarray) or speed.dtype != np.float32 or speed.shape != ():
            raise CheckpointError("state dict: speedup must be a float32 scalar")
        predictor = GradientPredictor(self._layout.pairs(), self.config.prediction_config, self._be)
        predictor.load_state_arrays(header.get("predictor", {}), self._unprefixed("predictor", arrays))
        self._predictor = predictor
        self._phase = phase
        self._phase_step = ints["phase_step"]
        self._total_step = ints["total_step"]
        self._cycle = ints["cycle"]
        self._full_len = ints["full_len"]
        self._predict_len = ints["predict_len"]
        self._taken = taken
        self._in_step, self._recorded, self._predicted = flags["in_step"], flags["recorded"], flags["predicted"]
        self._recent = deque(recent, maxlen=100)
        self._phase_losses = {p: deque(plosses[p], maxlen=PHASE_LOSSES) for p in TrainingPhase}
        self._speedup = F32(speed)

    @classmethod
    def load(cls, path: str | os.PathLike, backend: Any = None) -> PhaseTrainer:
        """A trainer rebuilt from a file written by :meth:`save` (config and parameters come from the file).

        Raises
        ------
        CheckpointError
            The file is missing, truncated, modified, of another kind or version.
        """
        return cls._from_file(path, backend, PhaseConfig)
