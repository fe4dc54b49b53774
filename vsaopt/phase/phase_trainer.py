"""Phase training with momentum prediction (the crate's ``PhaseTrainer``): FULL -> PREDICT <-> CORRECT -> FULL.

The schedule is vsa-optim-rs 0.1.1's, transition for transition
(spec/schedule.md, "PhaseTrainer").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from .._grads import ParamLayout
from ..accumulator import TernaryGradientAccumulator
from ..backend import resolve_backend
from ..checkpoint import Fields
from ..compressor import VSAGradientCompressor
from ..errors import ConfigError, PhaseError
from ._base import TrainerBase, log
from ._scalar import F32, sum_f32
from .configs import PhaseConfig
from .momentum_predictor import GradientPredictor
from .telemetry import PredictionMonitor
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
    _config_cls = PhaseConfig
    _PHASES = TrainingPhase
    _BACKWARD = (TrainingPhase.FULL, TrainingPhase.CORRECT)
    _PREDICTING = (TrainingPhase.PREDICT,)

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
        self._predictor = GradientPredictor(self._layout.pairs, config.prediction_config, self._be)
        self._ternary: Any = None
        self._vsa: Any = None
        self._monitor = PredictionMonitor(config.gate, self._be, primes=min(config.prediction_config.history_size, 2))
        self._full_len = config.full_steps
        self._predict_len = self._initial_predict_len()
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._reset_step_counters()
        self._phase_losses: dict[TrainingPhase, deque[np.float32]] = {p: deque(maxlen=PHASE_LOSSES) for p in TrainingPhase}

    # --- properties ------------------------------------------------------------------

    @property
    def ternary_accumulator(self) -> Any:
        """A :class:`vsaopt.accumulator.TernaryGradientAccumulator` for ``config.ternary_config``, built on first use."""
        if self._ternary is None:
            self._ternary = self._new_accumulator()
        return self._ternary

    def _new_accumulator(self) -> TernaryGradientAccumulator:
        return TernaryGradientAccumulator(self._layout.pairs, self.config.ternary_config, backend=self._be)

    @property
    def vsa_compressor(self) -> Any:
        """A :class:`vsaopt.compressor.VSAGradientCompressor` for ``config.vsa_config``, built on first use."""
        if self._vsa is None:
            self._vsa = VSAGradientCompressor(self._layout.pairs, self.config.vsa_config, backend=self._be)
        return self._vsa

    # --- schedule ------------------------------------------------------------------------

    def _next_phase(self) -> TrainingPhase:
        p, s = self._phase, self._phase_step
        if p is TrainingPhase.FULL:
            open_ = not self.gated or self._predict_len > 0
            return TrainingPhase.PREDICT if s >= self._full_len and open_ else p
        if p is TrainingPhase.PREDICT:
            if s > 0 and s % self.config.correct_every == 0:
                return TrainingPhase.CORRECT
            if s >= self._predict_len:
                return TrainingPhase.FULL
            return p
        left = self._predict_len if self.gated else self._predict_len - s  # gated: counted from this real step
        return TrainingPhase.PREDICT if left > 0 else TrainingPhase.FULL

    def _enter(self, new: TrainingPhase) -> None:
        old = self._phase
        self._phase = new
        log.debug("PhaseTrainer step %d: %s -> %s", self._total_step, old, new)
        if new is TrainingPhase.FULL:
            self._phase_step = 0
            self._cycle += 1
            if self.config.adaptive_phases:
                self._adapt()
        elif new is TrainingPhase.PREDICT and (old is TrainingPhase.FULL or self.gated):
            self._phase_step = 0

    def record_full_gradients(self, gradients: Any, batch_size: int | None = None) -> None:
        """Record this step's real gradients (FULL or CORRECT); in CORRECT also accumulate ``actual - last prediction``.

        The gradients are first measured against the prediction the predictor
        would have made (:attr:`telemetry`); ``batch_size``, the number of samples
        they average, adds the noise-scale estimate.

        Raises
        ------
        PhaseError
            Outside a step, in PREDICT, or a second time in one step.
        ConfigError, ShapeError, DTypeError, NonFiniteError, BackendError
            Missing or unknown names, wrong shapes or dtypes, NaN/Inf, arrays of another backend;
            a batch size that is not an integer >= 1.
        """
        self._record_real(gradients, batch_size, correct=self._phase is TrainingPhase.CORRECT)

    def _record_flat(self, flat: Any, correct: bool, max_abs: float) -> None:
        self._predictor.record_flat(flat, correct=correct, owned=True, max_abs=max_abs)  # the scratch row: the history keeps it

    def get_predicted_gradients(self) -> dict[str, Any]:
        """This PREDICT step's predicted gradients (mapping name -> backend array).

        Raises
        ------
        PhaseError
            Outside a step, outside PREDICT, or a second time in one step.
        """
        self._require_predict("get_predicted_gradients")
        out = self._predictor.predict_gradient()
        self._predicted = True
        return out

    @property
    def has_pending_correction(self) -> bool:
        """Whether a CORRECT step accumulated corrections that :meth:`apply_correction` has not applied yet.

        A caller may skip :meth:`apply_correction` (and its input checks) when False.
        """
        return bool(self._predictor.has_pending_correction)

    def apply_correction(self, gradients: Any) -> None:
        """Add ``correction_weight`` x the accumulated corrections to ``gradients`` in place, then clear them.

        Call it in a PREDICT step on the gradients about to be applied (usually
        the ones :meth:`get_predicted_gradients` returned), or in a CORRECT step
        on the real ones (the spec's driver loop).

        Raises
        ------
        PhaseError
            Outside a step or in a FULL step: the pending correction is kept.
        ShapeError, DTypeError, BackendError
            ``gradients`` are not writeable float arrays of the declared names and shapes.
        """
        self._require_step("apply_correction")
        if self._phase is TrainingPhase.FULL:
            raise PhaseError("apply_correction: phase FULL; corrections are applied in PREDICT or CORRECT steps")
        self._predictor.apply_correction(gradients)

    def _record_loss(self, loss: np.float32) -> None:
        self._phase_losses[self._phase].append(loss)

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
            self.speedup_ratio,
            t[TrainingPhase.FULL],
            t[TrainingPhase.PREDICT],
            t[TrainingPhase.CORRECT],
            self._full_len,
            self._predict_len,
            avgs,
            self._monitor.telemetry,
        )

    def reset(self) -> None:
        """Back to the first FULL step with empty history; the adapted phase lengths are kept (as in the crate), a gated PREDICT length returns to 0."""
        self._predictor.reset()
        if self._ternary is not None:
            self._ternary.reset()
        self._reset_counters()
        if self.gated:
            self._predict_len = 0

    # --- state -------------------------------------------------------------------------------

    def export_state(self) -> tuple[dict, dict]:
        """``(header, arrays)``: counters, loss windows, the predictor and, once built, the ternary accumulator.

        Examples
        --------
        >>> t = PhaseTrainer([("w", (2,))], backend="numpy")
        >>> sd = t.state_dict()
        >>> sd["header"]["kind"], sorted(sd["arrays"])[:2]
        ('PhaseTrainer', ['loss.CORRECT', 'loss.FULL'])
        """
        header, arrays = self._export_counters()
        self.nest("predictor", self._predictor, header, arrays)
        arrays.update({f"loss.{p.name}": np.array(list(self._phase_losses[p]), dtype=np.float32) for p in TrainingPhase})
        if self._ternary is not None:
            self.nest("ternary", self._ternary, header, arrays)
        return header, arrays

    def import_state(self, f: Fields) -> Callable[[], None]:
        """Validate a state of :meth:`export_state`; the returned function installs it."""
        install_counters = self._import_counters(f)
        plosses = {p: f.f32_list(f"loss.{p.name}", PHASE_LOSSES) for p in TrainingPhase}
        predictor = GradientPredictor(self._layout.pairs, self.config.prediction_config, self._be)
        install_predictor = predictor.import_state(f.sub("predictor"))
        ternary = None
        if "ternary" in f.header:
            ternary = self._new_accumulator()
            ternary.import_state(f.sub("ternary"))()

        def install() -> None:
            install_counters()
            install_predictor()
            self._predictor = predictor
            self._phase_losses = {p: deque(plosses[p], maxlen=PHASE_LOSSES) for p in TrainingPhase}
            self._ternary = ternary

        return install
