"""Configs of phase training: field names and defaults of vsa-optim-rs 0.1.1, validated and immutable.

Every config is a frozen dataclass (see :class:`vsaopt.config.ConfigBase`):
construction checks every field and raises :class:`~vsaopt.errors.ConfigError`
naming it; ``to_json`` / ``from_json`` round-trip exactly.  Float fields are
used as float32 values (``numpy.float32(x)``), as in the crate.

Fields the crate carries but never reads are kept for compatibility, validated,
and marked *unused* below.
"""

from __future__ import annotations

import dataclasses

from .._arrays import check_int, check_real
from ..config import ConfigBase, TernaryConfig, VSAConfig, check_bool
from ..errors import ConfigError
from .history_codec import check_compression

__all__ = [
    "GateConfig",
    "PredictionConfig",
    "PhaseConfig",
    "DeterministicPredictionConfig",
    "DeterministicPhaseConfig",
    "LossHistoryConfig",
]

#: Largest step count accepted in a config (phase lengths, windows, warmup).
MAX_STEPS = 2**31 - 1
#: Largest magnitude accepted for a float32 field.
F32_MAX = 3.0e38


def _count(value: object, name: str, lo: int = 0) -> int:
    return check_int(value, name, lo, MAX_STEPS)


def _f32(value: object, name: str, lo: float = -F32_MAX, hi: float = F32_MAX, *, lo_open: bool = False) -> float:
    return check_real(value, name, lo, hi, lo_open=lo_open)


def _sub(value: object, cls: type, name: str) -> None:
    if not isinstance(value, cls):
        raise ConfigError(f"{name}: expected a {cls.__name__}, got {type(value).__name__}")


@dataclasses.dataclass(frozen=True)
class GateConfig(ConfigBase):
    """The predictability gate (spec/schedule.md, section 11): PREDICT only as long as the measured prediction quality allows.

    At every real-gradient step the trainer measures the cosine ``c`` between the
    gradient its predictor would have produced and the real one, and keeps an
    exponential average ``Q`` of it.  With ``q = min(Q, c)`` (quick to stop,
    slow to resume) the next PREDICT run may last

    .. math:: k = \\mathrm{clip}(\\lfloor q / (s (1 - q)) \\rfloor - 1,\\ 0,\\ k_{max})

    steps, ``s`` the safety factor and ``k_max`` the trainer's ``predict_steps``.
    Reusing a mini-batch gradient ``k`` times acts like training at batch
    ``B / (k + 1)``; with ``q`` the cosine of consecutive gradients the noise
    scale is ``B_noise = B (1 - q) / q`` (McCandlish et al., 2018), and the rule
    keeps ``B / (k + 1) >= s B_noise``.  ``k = 0`` means FULL steps.

    Dormant measurement (``dormant_after > 0``): once ``dormant_after``
    measurements in a row gave ``k = 0``, measuring every real step buys
    nothing.  The trainer then leaves runs of real steps unrecorded (their
    gradients are not read at all), ``dormant_after`` steps long at first and
    twice as long after each sample that still gives ``k = 0``, up to
    ``dormant_max_gap``.  After each run, a sample of consecutive real steps is
    recorded: the first ones refill the history the prediction reads, the last
    one is measured.  A measurement with ``k > 0``, or whose ``c`` alone would
    give ``k > 0``, ends the dormancy: every real step is measured again and
    ``Q`` recovers as it would without it.

    Attributes
    ----------
    enabled : bool
        Gate the schedule (False: the crate's fixed or loss-trend schedule).
    safety : float > 0
        ``s``: how many noise scales the effective batch must stay above.
    ema_decay : float in [0, 1)
        Weight of the old average in ``Q`` (and in the telemetry's ``rho``).
    min_samples : int >= 1
        Prediction measurements needed before the first PREDICT step.
    dormant_after : int >= 0
        Measurements in a row with budget 0 before real steps go unrecorded
        (also the first run of unrecorded steps); 0: record every real step.
    dormant_max_gap : int >= 1
        The longest run of unrecorded real steps.

    Examples
    --------
    >>> GateConfig(enabled=True).safety
    1.0
    >>> GateConfig(safety=0)
    Traceback (most recent call last):
    ...
    vsaopt.errors.ConfigError: safety: expected a finite number in (0.0, 3e+38], got 0
    """

    enabled: bool = False
    safety: float = 1.0
    ema_decay: float = 0.8
    min_samples: int = 3
    dormant_after: int = 0
    dormant_max_gap: int = 64

    def _validate(self) -> None:
        check_bool(self.enabled, "enabled")
        _f32(self.safety, "safety", 0.0, lo_open=True)
        _f32(self.ema_decay, "ema_decay", 0.0, 1.0)
        if self.ema_decay >= 1.0:
            raise ConfigError(f"ema_decay: expected a finite number in [0.0, 1.0), got {self.ema_decay!r}")
        _count(self.min_samples, "min_samples", 1)
        _count(self.dormant_after, "dormant_after")
        _count(self.dormant_max_gap, "dormant_max_gap", 1)


def _recommended_gate() -> GateConfig:
    """The gate of both ``recommended()`` presets: safety 2, dormant after 8 closed measurements, gaps up to 64 steps."""
    return GateConfig(enabled=True, safety=2.0, dormant_after=8, dormant_max_gap=64)


def _check_gate(config: PhaseConfig | DeterministicPhaseConfig) -> None:
    """A gated schedule replaces the adaptive rule and needs real steps to measure."""
    _sub(config.gate, GateConfig, "gate")
    if config.gate.enabled and config.adaptive_phases:
        raise ConfigError("gate: a gated schedule replaces the adaptive rule; set adaptive_phases=False")
    if config.gate.enabled and config.full_steps < 1:
        raise ConfigError("gate: a gated schedule needs full_steps >= 1 (real steps measure the prediction quality)")


@dataclasses.dataclass(frozen=True)
class PredictionConfig(ConfigBase):
    """Momentum gradient prediction (:class:`~vsaopt.phase.GradientPredictor`).

    Attributes
    ----------
    history_size : int >= 1
        Gradients kept per parameter (the crate treats 0 as 1; vsaopt rejects it).
    prediction_steps : int >= 0
        Predicted steps after which :meth:`GradientPredictor.should_compute_full` asks for a real gradient.
    momentum : float
        Extrapolation factor: ``g[-1] + momentum * (g[-1] - g[-2])``.
    correction_weight : float
        Weight of the accumulated corrections in :meth:`GradientPredictor.apply_correction`.
    min_correlation : float in [-1, 1]
        Unused (the crate never reads it).
    history_compression : {"none", "bfloat16", "ternary"}
        How the history rows are held (spec/history.md); "none" keeps float32.
        ``to_dict`` omits the field when it is "none".

    Examples
    --------
    >>> PredictionConfig(history_size=3).prediction_steps
    4
    >>> PredictionConfig(history_size=0)
    Traceback (most recent call last):
    ...
    vsaopt.errors.ConfigError: history_size: expected an integer in [1, 2147483647], got 0
    """

    history_size: int = 5
    prediction_steps: int = 4
    momentum: float = 0.9
    correction_weight: float = 0.5
    min_correlation: float = 0.8
    history_compression: str = "none"

    def _validate(self) -> None:
        _count(self.history_size, "history_size", 1)
        _count(self.prediction_steps, "prediction_steps")
        _f32(self.momentum, "momentum")
        _f32(self.correction_weight, "correction_weight")
        _f32(self.min_correlation, "min_correlation", -1.0, 1.0)
        check_compression(self.history_compression)



@dataclasses.dataclass(frozen=True)
class PhaseConfig(ConfigBase):
    """Phase training with momentum prediction (:class:`~vsaopt.phase.PhaseTrainer`).

    Attributes
    ----------
    full_steps : int >= 0
        FULL steps per cycle (initial value; adaptive scheduling changes the trainer's copy).
    predict_steps : int >= 0
        PREDICT steps per cycle (initial value).
    correct_every : int >= 1
        A CORRECT step after every ``correct_every`` predicted steps (0 panics in the crate).
    prediction_config : PredictionConfig
    ternary_config : TernaryConfig
        Config of :attr:`PhaseTrainer.ternary_accumulator`.
    vsa_config : VSAConfig
        Config of :attr:`PhaseTrainer.vsa_compressor`.
    gradient_accumulation : int >= 1
        Unused (the crate never reads it).
    max_grad_norm : float > 0
        Unused (the crate never clips).
    adaptive_phases : bool
        Adjust phase lengths from the loss trend when a cycle starts.
    loss_threshold : float >= 0
        Relative loss increase that lengthens FULL and shortens PREDICT.
    gate : GateConfig
        The predictability gate (disabled by default); when enabled,
        ``predict_steps`` is the longest PREDICT run it may allow.

    Examples
    --------
    >>> cfg = PhaseConfig(full_steps=2, predict_steps=4, correct_every=2)
    >>> PhaseConfig.from_json(cfg.to_json()) == cfg
    True
    >>> PhaseConfig(correct_every=0)
    Traceback (most recent call last):
    ...
    vsaopt.errors.ConfigError: correct_every: expected an integer in [1, 2147483647], got 0
    """

    full_steps: int = 10
    predict_steps: int = 40
    correct_every: int = 10
    prediction_config: PredictionConfig = dataclasses.field(default_factory=PredictionConfig)
    ternary_config: TernaryConfig = dataclasses.field(default_factory=TernaryConfig)
    vsa_config: VSAConfig = dataclasses.field(default_factory=VSAConfig)
    gradient_accumulation: int = 1
    max_grad_norm: float = 1.0
    adaptive_phases: bool = True
    loss_threshold: float = 0.1
    gate: GateConfig = dataclasses.field(default_factory=GateConfig)

    @classmethod
    def recommended(cls) -> PhaseConfig:
        """Safe preset (``vsaopt train`` default): reuse the last real gradient only while the gate measures it predictable.

        - ``gate=GateConfig(enabled=True, safety=2.0, ...)``: after every real step
          the next PREDICT run gets ``k`` steps from the measured prediction
          cosine (:class:`GateConfig`); where consecutive gradients are nearly
          uncorrelated (small batches at a tuned learning rate) ``k`` is 0 and
          the trainer runs plain backprop, and where they are predictable
          (large or full batches) up to ``predict_steps = 4`` steps reuse it.
          A safety of 2 needs a cosine of 0.8 before the first reuse; it lost
          no more than safety 1 on the settings tried and saved somewhat fewer
          backward passes (``docs/training.md``).  ``dormant_after=8``,
          ``dormant_max_gap=64``: after 8 closed measurements in a row only
          samples of two real steps are recorded, 8 to 64 steps apart, so a
          closed gate costs almost nothing.
        - ``prediction_config.momentum=0.0, history_size=1``: the prediction is
          the last real gradient; the crate's ``g1 + 0.9 (g1 - g0)`` carries
          ``1.9**2 + 0.9**2 = 4.4`` times the mini-batch noise of one gradient.
        - ``correct_every=5`` (> ``predict_steps``): every real step is a FULL
          step, which also measures the prediction it replaces.
        - ``adaptive_phases=False``: the gate replaces the loss-trend rule.

        ``docs/training.md`` reports the evaluation matrix this preset is held to.

        Examples
        --------
        >>> cfg = PhaseConfig.recommended()
        >>> cfg.gate.enabled, cfg.full_steps, cfg.predict_steps, cfg.prediction_config.momentum
        (True, 1, 4, 0.0)
        >>> PhaseConfig().gate.enabled      # the dataclass defaults stay the crate's
        False
        """
        return cls(full_steps=1, predict_steps=4, correct_every=5, adaptive_phases=False,
                   prediction_config=PredictionConfig(history_size=1, momentum=0.0), gate=_recommended_gate())

    @classmethod
    def risky_fixed(cls) -> PhaseConfig:
        """Risky fixed preset (recommended before the gate existed): one backward pass, then its gradient reused for two steps.

        Kept for research: tuned on one setting (digits, batch 256), it loses
        badly where consecutive mini-batch gradients are uncorrelated (digits
        at batch 32: 65.6 % against plain backprop's 97.2 %).  Differences from
        the crate's defaults (``docs/training.md`` explains and measures them):

        - ``full_steps=1, predict_steps=2``: a third of the steps run a backward
          pass.  Long PREDICT runs apply stale gradients; SGD with momentum
          integrates them, and this delayed feedback overshoots: six predicted
          steps per cycle diverged at lr 0.05 on digits (10-44 % accuracy), two
          trained at every learning rate tried.
        - ``prediction_config.momentum=0.0, history_size=1``: the prediction is
          the last real gradient.  The crate's ``g1 + 0.9 (g1 - g0)`` carries
          ``1.9**2 + 0.9**2 = 4.4`` times the mini-batch noise variance of one
          gradient (measured cosine with the full-data gradient 0.20-0.27,
          against 0.45 for the last gradient); averaging the last two
          (``momentum=-0.5``) pointed better but, being older and shorter,
          reached the target later.
        - ``correct_every=4`` (> ``predict_steps``): no CORRECT step inside a
          cycle; the next FULL step is the correction.
        - ``adaptive_phases=False``: the adaptive rule compares means of ten
          mini-batch losses, whose noise triggers changes that are not trends.

        Examples
        --------
        >>> cfg = PhaseConfig.risky_fixed()
        >>> cfg.full_steps, cfg.predict_steps, cfg.prediction_config.momentum
        (1, 2, 0.0)
        """
        return cls(full_steps=1, predict_steps=2, correct_every=4, adaptive_phases=False,
                   prediction_config=PredictionConfig(history_size=1, momentum=0.0))

    def _validate(self) -> None:
        _count(self.full_steps, "full_steps")
        _count(self.predict_steps, "predict_steps")
        _count(self.correct_every, "correct_every", 1)
        _sub(self.prediction_config, PredictionConfig, "prediction_config")
        _sub(self.ternary_config, TernaryConfig, "ternary_config")
        _sub(self.vsa_config, VSAConfig, "vsa_config")
        _count(self.gradient_accumulation, "gradient_accumulation", 1)
        _f32(self.max_grad_norm, "max_grad_norm", 0.0, lo_open=True)
        check_bool(self.adaptive_phases, "adaptive_phases")
        _f32(self.loss_threshold, "loss_threshold", 0.0)
        _check_gate(self)


@dataclasses.dataclass(frozen=True)
class DeterministicPredictionConfig(ConfigBase):
    """Weighted least-squares prediction (:class:`~vsaopt.phase.DeterministicPredictor`).

    Attributes
    ----------
    warmup_steps : int >= 0
        Gradients to record before predicting (0 behaves as 1, as in the crate).
    history_window : int >= 0
        The fit uses the last ``history_window + 2`` recorded gradients.
    prediction_horizon : int >= 0
        Predicted steps after a fit at which :meth:`DeterministicPredictor.needs_correction` turns True.
    history_decay : float in [0, 1]
        Weight ``history_decay ** age`` of a history entry, and decay of the residual.
    residual_threshold : float >= 0
        Any ``|residual|`` element above it asks for a correction.
    history_compression : {"none", "bfloat16", "ternary"}
        How the history rows are held (spec/history.md); "none" keeps float32.
        With compression the fit is recomputed from the history when used and
        the residual is held in bfloat16.  ``to_dict`` omits the field when it is "none".

    Examples
    --------
    >>> DeterministicPredictionConfig().history_window
    8
    """

    warmup_steps: int = 10
    history_window: int = 8
    prediction_horizon: int = 4
    history_decay: float = 0.95
    residual_threshold: float = 0.5
    history_compression: str = "none"

    def _validate(self) -> None:
        check_compression(self.history_compression)
        _count(self.warmup_steps, "warmup_steps")
        _count(self.history_window, "history_window")
        if self.history_window > 1_000_000:
            raise ConfigError(f"history_window: expected an integer in [0, 1000000], got {self.history_window}")
        _count(self.prediction_horizon, "prediction_horizon")
        _f32(self.history_decay, "history_decay", 0.0, 1.0)
        _f32(self.residual_threshold, "residual_threshold", 0.0)



@dataclasses.dataclass(frozen=True)
class LossHistoryConfig(ConfigBase):
    """Loss tracking (:class:`~vsaopt.phase.LossHistory`).

    Attributes
    ----------
    max_history : int >= 1
        Measurements kept; older ones are dropped.
    rolling_window : int >= 1
        Default window of the rolling statistics when none is given (the crate never reads it).
    spike_threshold : float
        z-score above which the latest loss is a spike.
    divergence_threshold : float > 0
        Ratio of the last window's mean to the one before it above which the loss diverges.
    convergence_window : int >= 2
        Default window of :meth:`LossHistory.is_converging` (the crate never reads it).
    convergence_threshold : float
        Default threshold of :meth:`LossHistory.is_converging` (the crate never reads it).

    Examples
    --------
    >>> LossHistoryConfig(max_history=10).rolling_window
    20
    """

    max_history: int = 1000
    rolling_window: int = 20
    spike_threshold: float = 3.0
    divergence_threshold: float = 1.2
    convergence_window: int = 50
    convergence_threshold: float = 0.01

    def _validate(self) -> None:
        _count(self.max_history, "max_history", 1)
        if self.max_history > 100_000_000:
            raise ConfigError(f"max_history: expected an integer in [1, 100000000], got {self.max_history}")
        _count(self.rolling_window, "rolling_window", 1)
        _f32(self.spike_threshold, "spike_threshold")
        _f32(self.divergence_threshold, "divergence_threshold", 0.0, lo_open=True)
        _count(self.convergence_window, "convergence_window", 2)
        _f32(self.convergence_threshold, "convergence_threshold")


@dataclasses.dataclass(frozen=True)
class DeterministicPhaseConfig(ConfigBase):
    """Phase training with least-squares prediction (:class:`~vsaopt.phase.DeterministicPhaseTrainer`).

    Attributes
    ----------
    warmup_steps : int >= 0
        WARMUP lasts until this many gradients are recorded.
    full_steps : int >= 0
        FULL steps per cycle (initial value).
    predict_steps : int >= 0
        PREDICT steps per cycle (initial value); also the predictor's prediction horizon.
    correct_every : int >= 1
        A CORRECT step after every ``correct_every`` predicted steps.
    history_window : int >= 0
        Least-squares window (the fit uses ``history_window + 2`` gradients).
    adaptive_phases : bool
    loss_threshold : float >= 0
    max_grad_norm : float > 0
        Unused (the crate never clips).
    track_loss_history : bool
        Keep a :class:`~vsaopt.phase.LossHistory` (``trainer.loss_history``).
    loss_history_config : LossHistoryConfig
    history_decay : float in [0, 1]
        Passed to the predictor (the crate hard-codes 0.95).
    residual_threshold : float >= 0
        Passed to the predictor (the crate hard-codes 0.5).
    gate : GateConfig
        The predictability gate (disabled by default); when enabled,
        ``predict_steps`` is the longest PREDICT run it may allow.
    history_compression : {"none", "bfloat16", "ternary"}
        Passed to the predictor (see :class:`DeterministicPredictionConfig`).

    Examples
    --------
    >>> DeterministicPhaseConfig().predictor_config().prediction_horizon
    20
    """

    warmup_steps: int = 10
    full_steps: int = 5
    predict_steps: int = 20
    correct_every: int = 5
    history_window: int = 8
    adaptive_phases: bool = True
    loss_threshold: float = 0.1
    max_grad_norm: float = 1.0
    track_loss_history: bool = True
    loss_history_config: LossHistoryConfig = dataclasses.field(default_factory=LossHistoryConfig)
    history_decay: float = 0.95
    residual_threshold: float = 0.5
    gate: GateConfig = dataclasses.field(default_factory=GateConfig)
    history_compression: str = "none"

    @classmethod
    def recommended(cls) -> DeterministicPhaseConfig:
        """Safe preset (``vsaopt train`` default): short extrapolations of a short least-squares fit, as long as the gate allows.

        - ``gate=GateConfig(enabled=True, safety=2.0, dormant_after=8, dormant_max_gap=64)``:
          as for :meth:`PhaseConfig.recommended`; the gate reads the cosine of
          the fit's prediction with each real gradient, and a dormant sample is
          five real steps (four refill the fit's window).
        - ``predict_steps=4`` (the longest PREDICT run, also the prediction
          horizon), ``full_steps=1``, ``correct_every=5`` (> ``predict_steps``).
        - ``history_window=2`` and ``warmup_steps=4``: the fit reads four
          gradients; longer windows (4, 8) did not predict better enough to pay
          for a pass over ``history_window + 2`` gradients at every real step.
        - ``adaptive_phases=False``: the gate replaces the loss-trend rule.

        Examples
        --------
        >>> cfg = DeterministicPhaseConfig.recommended()
        >>> cfg.gate.enabled, cfg.full_steps, cfg.predict_steps, cfg.history_window
        (True, 1, 4, 2)
        >>> DeterministicPhaseConfig().predict_steps    # the crate's default
        20
        """
        return cls(warmup_steps=4, full_steps=1, predict_steps=4, correct_every=5, history_window=2, adaptive_phases=False,
                   gate=_recommended_gate())

    @classmethod
    def risky_fixed(cls) -> DeterministicPhaseConfig:
        """Risky fixed preset (recommended before the gate existed): cycles of 1 FULL, 3 PREDICT, 1 CORRECT.

        Kept for research: tuned on one setting, it loses badly where gradients
        are unpredictable (digits at batch 32: 40.6 % against 97.2 %).  Differences from the crate's defaults (``docs/training.md`` explains and measures them):

        - ``predict_steps=3`` (also the prediction horizon): the fitted
          velocity's error grows with the distance it is extrapolated; the
          horizon ends every PREDICT run with a CORRECT step (a backward pass),
          so ``full_steps=1`` gives cycles of 1 FULL, 3 PREDICT, 1 CORRECT
          (two backward passes in five steps).
        - ``history_window=2`` and ``warmup_steps=4``: the fit reads four
          gradients; its cost (one pass over ``history_window + 2`` gradients
          at every backward step) is paid on top of the backward pass, and
          longer windows (4, 8) did not predict better enough to pay for it.
        - ``correct_every=4`` (> ``predict_steps``): the horizon alone places
          the CORRECT steps.
        - ``adaptive_phases=False``: as for :meth:`PhaseConfig.risky_fixed`.

        Examples
        --------
        >>> cfg = DeterministicPhaseConfig.risky_fixed()
        >>> cfg.full_steps, cfg.predict_steps, cfg.history_window
        (1, 3, 2)
        """
        return cls(warmup_steps=4, full_steps=1, predict_steps=3, correct_every=4, history_window=2, adaptive_phases=False)

    def _validate(self) -> None:
        _count(self.full_steps, "full_steps")
        _count(self.predict_steps, "predict_steps")
        _count(self.correct_every, "correct_every", 1)
        check_bool(self.adaptive_phases, "adaptive_phases")
        _f32(self.loss_threshold, "loss_threshold", 0.0)
        _f32(self.max_grad_norm, "max_grad_norm", 0.0, lo_open=True)
        check_bool(self.track_loss_history, "track_loss_history")
        _sub(self.loss_history_config, LossHistoryConfig, "loss_history_config")
        _check_gate(self)
        self.predictor_config()  # validates warmup_steps, history_window, history_decay, residual_threshold, history_compression


    def predictor_config(self) -> DeterministicPredictionConfig:
        """The predictor config the trainer builds (``prediction_horizon = predict_steps``, as in the crate)."""
        return DeterministicPredictionConfig(
            warmup_steps=self.warmup_steps,
            history_window=self.history_window,
            prediction_horizon=self.predict_steps,
            history_decay=self.history_decay,
            residual_threshold=self.residual_threshold,
            history_compression=self.history_compression,
        )
