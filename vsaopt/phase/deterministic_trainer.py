"""Phase training with least-squares prediction (the crate's ``DeterministicPhaseTrainer``).

WARMUP -> FULL -> PREDICT <-> CORRECT -> FULL -> ...; the schedule is
vsa-optim-rs 0.1.1's (spec/schedule.md, "DeterministicPhaseTrainer").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._grads import ParamLayout
from ..backend import resolve_backend
from ..checkpoint import Fields
from ..errors import ConfigError, PhaseError
from ._base import TrainerBase, log
from ._scalar import F32
from .configs import DeterministicPhaseConfig
from .deterministic_predictor import DeterministicPredictor
from .loss_history import LossHistory
from .telemetry import PredictionMonitor
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
    _config_cls = DeterministicPhaseConfig
    _PHASES = DeterministicPhase
    _BACKWARD = _BACKWARD
    _PREDICTING = (DeterministicPhase.PREDICT,)

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
        self._predictor = DeterministicPredictor(self._layout.pairs, config.predictor_config(), self._be)
        self._history = LossHistory(config.loss_history_config) if config.track_loss_history else None
        self._monitor = PredictionMonitor(config.gate, self._be, primes=config.history_window + 2)
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._reset_step_counters()
        self._last_loss = F32(0.0)
        self._full_len = self.config.full_steps
        self._predict_len = self._initial_predict_len()

    # --- properties ----------------------------------------------------------------

    @property
    def warmup_complete(self) -> bool:
        """Whether FULL has been entered (warmup over): the phase is no longer WARMUP."""
        return self._phase is not DeterministicPhase.WARMUP

    @property
    def loss_history(self) -> LossHistory | None:
        """The :class:`LossHistory` (None when ``track_loss_history`` is False)."""
        return self._history

    @property
    def predictor(self) -> DeterministicPredictor:
        """The least-squares predictor (read its state; drive it through the trainer)."""
        return self._predictor

    # --- schedule ------------------------------------------------------------------------

    def _next_phase(self) -> DeterministicPhase:
        p, s = self._phase, self._phase_step
        if p is DeterministicPhase.WARMUP:
            return DeterministicPhase.FULL if self._predictor.is_ready() else p
        if p is DeterministicPhase.FULL:
            open_ = not self.gated or self._predict_len > 0
            return DeterministicPhase.PREDICT if s >= self._full_len and open_ else p
        if p is DeterministicPhase.PREDICT:
            if s > 0 and s % self.config.correct_every == 0:
                return DeterministicPhase.CORRECT
            if self._predictor.needs_correction():
                return DeterministicPhase.CORRECT
            if s >= self._predict_len:
                return DeterministicPhase.FULL
            return p
        left = self._predict_len if self.gated else self._predict_len - s  # gated: counted from this real step
        return DeterministicPhase.PREDICT if left > 0 else DeterministicPhase.FULL

    def _enter(self, new: DeterministicPhase) -> None:
        old = self._phase
        self._phase = new
        log.debug("DeterministicPhaseTrainer step %d: %s -> %s", self._total_step, old, new)
        if new is DeterministicPhase.FULL:
            if old is not DeterministicPhase.WARMUP:
                self._cycle += 1
            self._phase_step = 0
            if self.config.adaptive_phases:
                self._adapt()
        elif new is DeterministicPhase.PREDICT and (old is DeterministicPhase.FULL or self.gated):
            self._phase_step = 0

    def record_full_gradients(self, gradients: Any, batch_size: int | None = None) -> None:
        """Record this step's real gradients (WARMUP, FULL, CORRECT); in CORRECT the residual is updated first.

        The gradients are first measured against the fit's prediction for this
        step (:attr:`telemetry`); ``batch_size``, the number of samples they
        average, adds the noise-scale estimate.

        Raises
        ------
        PhaseError
            Outside a step, in PREDICT, or a second time in one step.
        ConfigError, ShapeError, DTypeError, NonFiniteError, BackendError
            Bad gradients or batch size (nothing is changed).
        """
        self._record_real(gradients, batch_size, correct=self._phase is DeterministicPhase.CORRECT)

    def _record_flat(self, flat: Any, correct: bool, max_abs: float) -> tuple[float, float] | None:
        return self._predictor.record_flat(flat, is_correction=correct, max_abs=max_abs)

    def get_predicted_gradients(self) -> dict[str, Any]:
        """This PREDICT step's predicted gradients (mapping name -> backend array).

        Raises
        ------
        PhaseError
            During warmup, outside a PREDICT step, or a second time in one step.
        """
        self._require_predict("get_predicted_gradients")
        out = self._predictor.predict_gradient()
        self._predicted = True
        return out

    def _require_predict(self, what: str) -> None:
        if not self.warmup_complete:
            raise PhaseError(f"{what}: cannot predict during warmup")
        super()._require_predict(what)

    def _record_loss(self, loss: np.float32) -> None:
        self._last_loss = loss
        if self._history is not None:
            self._history.record(loss, self._phase)

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
            self._monitor.telemetry,
        )

    def reset(self) -> None:
        """Back to WARMUP with empty history and the config's phase lengths."""
        self._predictor.reset()
        if self._history is not None:
            self._history.clear()
        self._reset_counters()

    # --- state ---------------------------------------------------------------------------

    def export_state(self) -> tuple[dict, dict]:
        """``(header, arrays)``: counters, the last loss, the predictor and the loss history.

        Examples
        --------
        >>> t = DeterministicPhaseTrainer([("w", (2,))], backend="numpy")
        >>> t.state_dict()["header"]["state"]["phase"]
        'WARMUP'
        """
        header, arrays = self._export_counters()
        arrays["last_loss"] = np.array(self._last_loss, dtype=np.float32)
        self.nest("predictor", self._predictor, header, arrays)
        if self._history is not None:
            self.nest("loss_history", self._history, header, arrays)
        return header, arrays

    def import_state(self, f: Fields) -> Callable[[], None]:
        """Validate a state of :meth:`export_state`; the returned function installs it."""
        install_counters = self._import_counters(f)
        last = f.f32("last_loss")
        predictor = DeterministicPredictor(self._layout.pairs, self.config.predictor_config(), self._be)
        install_predictor = predictor.import_state(f.sub("predictor"))
        history = None
        if self.config.track_loss_history:
            history = LossHistory(self.config.loss_history_config)
            history.import_state(f.sub("loss_history"))()
        phase = f.enum("phase", DeterministicPhase)
        f.require(phase is DeterministicPhase.WARMUP or f.sub("predictor").boolean("ready"), "the predictor is not ready after warmup")

        def install() -> None:
            install_counters()
            install_predictor()
            self._predictor = predictor
            self._history = history
            self._last_loss = last

        return install
