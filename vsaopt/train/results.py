"""Result schema of a training run: :class:`TrainSettings`, :class:`ModeResult`, :class:`RunResult` and their JSON.

What :func:`~vsaopt.train.run.run_training` is given and what it returns:
the settings shared by every mode, each mode's per-step and per-evaluation
records, and the run as a whole (target, time and pass units to target,
speedups).  Each round-trips through ``to_dict`` / ``from_dict``
(``RunResult`` also through JSON text) exactly.

The test metric is the accuracy of a classification (higher is better) or the
MSE of a regression (lower is better; the test loss).  The *target* is the
baseline's final test accuracy minus :data:`TARGET_MARGIN`, or the baseline's
final test MSE times :data:`MSE_TARGET_FACTOR`; a mode reaches it at its first
evaluation at least as good.

Cost is counted in *pass units*: a forward pass over a mini-batch of the
run's batch size costs 1, a backward pass 2 (a step with a backward pass also
runs its forward pass: 3 units).  A mode that trains on smaller batches (the
``small_batch`` control) pays in proportion to its batch
(:attr:`ModeResult.batch_fraction`).
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from .._json import parse_json
from ..errors import ConfigError
from ..phase import DeterministicPhaseConfig, PhaseConfig
from .model import MATMULS

__all__ = [
    "TARGET_MARGIN",
    "MSE_TARGET_FACTOR",
    "METRIC_HIGHER_IS_BETTER",
    "FORWARD_UNITS",
    "BACKWARD_UNITS",
    "TrainSettings",
    "ModeResult",
    "RunResult",
]

#: Target accuracy = baseline's final test accuracy minus this (0.5 percentage points).
TARGET_MARGIN = 0.005
#: Target MSE of a regression = baseline's final test MSE times this (5 % worse).
MSE_TARGET_FACTOR = 1.05
#: Test metric -> whether a larger value is better (accuracy up, MSE down).
METRIC_HIGHER_IS_BETTER: dict[str, bool] = {"accuracy": True, "mse": False}
#: Cost of a forward pass over one mini-batch, in pass units.
FORWARD_UNITS = 1
#: Cost of a backward pass over one mini-batch, in pass units (on top of its forward pass).
BACKWARD_UNITS = 2


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """What to train and how; shared by every mode.

    Attributes
    ----------
    dataset : str
        A key of :data:`vsaopt.train.data.DATASETS`.
    steps : int
        Optimizer steps per mode.
    seed : int
        Seed of the split, the initial weights, the batch order and the skip control's choices.
    batch_size : int
    lr, momentum : float
        SGD with momentum.
    hidden : tuple of int
        Hidden layer widths of the MLP.
    loss_every : int
        Measure the loss on every ``loss_every``-th step that has no backward
        pass (0: never); the others end with ``end_step(None)``.
    eval_every : int
        Steps between test-set evaluations (untimed).
    backend : str
        Backend name (``"auto"``, ``"numpy"``, ``"numba"``, ``"cupy"``).
    interleave : int
        Modes take turns of this many steps (0: one mode after the other).
    threads : int
        Threads of the BLAS library during training (0: leave as it is).  One by
        default: this model's matrices are small, and a second BLAS thread that
        spin-waits on a busy machine made single steps up to ten times slower.
    phase_config : PhaseConfig
    deterministic_config : DeterministicPhaseConfig
    diagnose : bool
        Also compute the real gradient at every predicted step (outside the
        timed region) and record the cosine similarity and relative error of
        the prediction.  Costs time, not timed.
    timing_warmup_steps : int
        Untimed warm-up steps per mode before the timed run (compiled kernels
        loaded, caches warm); :data:`vsaopt.train.harness.WARMUP_STEPS` by default.
    matmul : {"ordered", "blas"}
        The MLP's matrix products (:data:`vsaopt.train.model.MATMULS`):
        ``"ordered"``, the backend's ``matmul_ordered`` kernel, gives the same
        bytes on every machine, BLAS kernel and thread count; ``"blas"`` is
        ``xp.matmul``, whose last bits depend on the machine's CPU kernel.
        Settings read by :meth:`from_dict` without this key were run with
        ``"blas"`` (results written before the option existed).

    Examples
    --------
    >>> s = TrainSettings(steps=100)
    >>> TrainSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    True
    """

    dataset: str = "digits"
    steps: int = 600
    seed: int = 0
    batch_size: int = 256
    lr: float = 0.02
    momentum: float = 0.9
    hidden: tuple[int, ...] = (256, 256)
    loss_every: int = 0
    eval_every: int = 5
    backend: str = "auto"
    threads: int = 1
    interleave: int = 20
    phase_config: PhaseConfig = dataclasses.field(default_factory=lambda: PhaseConfig.recommended())
    deterministic_config: DeterministicPhaseConfig = dataclasses.field(
        default_factory=lambda: DeterministicPhaseConfig.recommended()
    )
    diagnose: bool = False
    timing_warmup_steps: int = 60
    matmul: str = "ordered"

    def __post_init__(self) -> None:
        for name, lo in (("steps", 1), ("batch_size", 1), ("loss_every", 0), ("eval_every", 1), ("threads", 0),
                         ("interleave", 0), ("timing_warmup_steps", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ConfigError(f"{name}: expected an integer >= {lo}, got {v!r}")
        if not isinstance(self.hidden, tuple) or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ConfigError(f"hidden: expected a tuple of positive ints, got {self.hidden!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr: expected a finite number > 0, got {self.lr!r}")
        if not (0 <= self.momentum < 1):
            raise ConfigError(f"momentum: expected a number in [0, 1), got {self.momentum!r}")
        if self.matmul not in MATMULS:
            raise ConfigError(f"matmul: expected one of {', '.join(MATMULS)}, got {self.matmul!r}")

    def to_dict(self) -> dict:
        """JSON-ready dict (configs as nested dicts)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["hidden"] = list(self.hidden)
        d["phase_config"] = self.phase_config.to_dict()
        d["deterministic_config"] = self.deterministic_config.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict) -> TrainSettings:
        """Inverse of :meth:`to_dict` (without a ``matmul`` key: ``"blas"``, the only product before the option)."""
        d = dict(data)
        d.setdefault("matmul", "blas")
        d["hidden"] = tuple(d["hidden"])
        d["phase_config"] = PhaseConfig.from_dict(d["phase_config"])
        d["deterministic_config"] = DeterministicPhaseConfig.from_dict(d["deterministic_config"])
        return cls(**d)


@dataclasses.dataclass
class ModeResult:
    """Everything recorded while training one mode.

    Per-step lists (one entry per step): ``phase`` (``"FULL"``, ``"PREDICT"``,
    ``"CORRECT"``, ``"WARMUP"``; ``"SKIP"`` and ``"REUSE"`` for the controls'
    steps without a backward pass),
    ``backward`` and ``forward`` (whether the step ran them), ``time``
    (cumulative training seconds at the end of the step) and ``loss`` (the
    measured mini-batch loss, None when not measured).  Per evaluation:
    ``eval_step`` (steps taken), ``eval_time``, ``eval_accuracy`` and
    ``eval_loss`` on the test set.  With ``diagnose``, per step (None on steps
    with a backward pass): ``pred_cosine``, the cosine similarity of the
    gradient used (predicted or reused) with the real mini-batch gradient;
    ``pred_full_cosine``, with the gradient of the whole training set; and
    ``batch_full_cosine``, of the real mini-batch gradient with the whole
    training set's (what a backward pass would have given, for reference).

    ``metric`` names the test metric (``"accuracy"``; ``"mse"`` for a
    regression, whose ``eval_accuracy`` stays empty and whose metric is
    ``eval_loss``, the test MSE).  ``batch_fraction`` is the mode's batch size
    over the run's (below 1 only for the ``small_batch`` control); it scales
    the pass units.  ``telemetry``, for the phase-trained modes, holds per step
    the trainer's :class:`~vsaopt.phase.PredictionTelemetry` as a dict on
    steps with a real gradient, None elsewhere (empty for the other modes).
    ``baseline_eval_time``, for the controls (which run in a second round),
    holds the evaluation times of a baseline run interleaved with them: their
    wall-clock reference (empty: the first round's baseline is the reference).

    Examples
    --------
    >>> r = ModeResult("baseline", ["FULL"], [True], [True], [0.01], [2.3], [0, 1], [0.0, 0.01], [0.1, 0.2], [2.3, 2.2])
    >>> r.backward_passes, r.wall_seconds, r.final_test_accuracy, r.pass_units
    (1, 0.01, 0.2, 3.0)
    >>> ModeResult.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    True
    """

    mode: str
    phase: list[str]
    backward: list[bool]
    forward: list[bool]
    time: list[float]
    loss: list[float | None]
    eval_step: list[int]
    eval_time: list[float]
    eval_accuracy: list[float]
    eval_loss: list[float]
    pred_cosine: list[float | None] = dataclasses.field(default_factory=list)
    pred_full_cosine: list[float | None] = dataclasses.field(default_factory=list)
    batch_full_cosine: list[float | None] = dataclasses.field(default_factory=list)
    trainer_stats: dict = dataclasses.field(default_factory=dict)
    metric: str = "accuracy"
    batch_fraction: float = 1.0
    telemetry: list[dict | None] = dataclasses.field(default_factory=list)
    baseline_eval_time: list[float] = dataclasses.field(default_factory=list)

    @property
    def steps(self) -> int:
        """Steps taken."""
        return len(self.phase)

    @property
    def backward_passes(self) -> int:
        """Steps that ran a backward pass."""
        return sum(self.backward)

    @property
    def forward_passes(self) -> int:
        """Steps that ran a forward pass (every backward step, plus measured-loss steps)."""
        return sum(self.forward)

    @property
    def wall_seconds(self) -> float:
        """Training time of all steps (evaluations excluded)."""
        return self.time[-1] if self.time else 0.0

    @property
    def final_test_accuracy(self) -> float:
        """Test accuracy after the last step (a classification)."""
        return self.eval_accuracy[-1]

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger test metric is better (accuracy: yes; MSE: no)."""
        return METRIC_HIGHER_IS_BETTER[self.metric]

    @property
    def eval_metric(self) -> list[float]:
        """The test metric at every evaluation: ``eval_accuracy``, or for a regression ``eval_loss`` (the test MSE)."""
        return self.eval_accuracy if self.metric == "accuracy" else self.eval_loss

    @property
    def final_metric(self) -> float:
        """The test metric after the last step."""
        return self.eval_metric[-1]

    def step_pass_units(self) -> list[float]:
        """Pass units of every step: ``(forward * FORWARD_UNITS + backward * BACKWARD_UNITS) * batch_fraction``."""
        return [(FORWARD_UNITS * f + BACKWARD_UNITS * b) * self.batch_fraction for f, b in zip(self.forward, self.backward)]

    @property
    def pass_units(self) -> float:
        """Pass units of the whole run."""
        return float(sum(self.step_pass_units()))

    @property
    def backward_skipped_share(self) -> float:
        """Share of the steps that ran no backward pass."""
        return 1.0 - self.backward_passes / self.steps if self.steps else 0.0

    def reached(self, target: float) -> int | None:
        """Index of the first evaluation whose test metric is at least as good as ``target`` (None: never)."""
        better = self.higher_is_better
        for i, v in enumerate(self.eval_metric):
            if (v >= target) if better else (v <= target):
                return i
        return None

    def time_to(self, accuracy: float) -> float | None:
        """Training seconds at the first evaluation with a test metric at least as good as ``accuracy`` (None: never)."""
        i = self.reached(accuracy)
        return None if i is None else self.eval_time[i]

    def pass_units_to(self, target: float) -> float | None:
        """Pass units spent up to the first evaluation with a test metric at least as good as ``target`` (None: never)."""
        i = self.reached(target)
        return None if i is None else float(sum(self.step_pass_units()[: self.eval_step[i]]))

    def phase_counts(self) -> dict[str, int]:
        """Steps per phase label."""
        out: dict[str, int] = {}
        for p in self.phase:
            out[p] = out.get(p, 0) + 1
        return out

    def mean_prediction_cosine(self, which: str = "pred_cosine") -> dict[str, float]:
        """Mean of a diagnose list (``pred_cosine``, ``pred_full_cosine``, ``batch_full_cosine``) by position in a predicted run (1 = first)."""
        sums: dict[int, list[float]] = {}
        run = 0
        for p, c in zip(self.phase, getattr(self, which) or [None] * self.steps):
            if p in ("PREDICT", "SKIP", "REUSE"):
                run += 1
                if c is not None:
                    sums.setdefault(run, []).append(c)
            else:
                run = 0
        return {str(k): float(np.mean(v)) for k, v in sorted(sums.items())}

    def summary(self) -> dict:
        """Counters of the run (JSON-ready)."""
        return {
            "steps": self.steps,
            "backward_passes": self.backward_passes,
            "forward_passes": self.forward_passes,
            "backward_skipped_share": self.backward_skipped_share,
            "pass_units": self.pass_units,
            "wall_seconds": self.wall_seconds,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "final_metric": self.final_metric,
            **({"final_test_accuracy": self.final_test_accuracy} if self.metric == "accuracy" else {}),
            "phase_counts": self.phase_counts(),
        }

    def to_dict(self) -> dict:
        """JSON-ready dict of every field (plus a ``summary``, ignored by :meth:`from_dict`)."""
        d = dataclasses.asdict(self)
        d["summary"] = self.summary()
        return d

    @classmethod
    def from_dict(cls, data: dict) -> ModeResult:
        """Inverse of :meth:`to_dict`."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclasses.dataclass
class RunResult:
    """The modes of one ``vsaopt train`` run, with the machine they ran on.

    Examples
    --------
    >>> base = ModeResult("baseline", ["FULL"] * 2, [True] * 2, [True] * 2, [1.0, 2.0], [2.0, 1.0],
    ...                   [0, 1, 2], [0.0, 1.0, 2.0], [0.1, 0.9, 0.95], [2.0, 1.0, 0.5])
    >>> run = RunResult(TrainSettings(steps=2).to_dict(), "test machine", {"baseline": base})
    >>> round(run.target_accuracy, 3), run.time_to_target("baseline"), run.speedup("baseline")
    (0.945, 2.0, 1.0)
    >>> run.pass_units_to_target("baseline"), run.pass_speedup("baseline"), run.metric_drop("baseline")
    (6.0, 1.0, 0.0)
    >>> RunResult.from_json(run.to_json()) == run
    True
    """

    settings: dict
    machine: str
    modes: dict[str, ModeResult]

    @property
    def metric(self) -> str:
        """The test metric of the run (the baseline's): ``"accuracy"`` or ``"mse"``."""
        base = self.modes.get("baseline")
        return "accuracy" if base is None else base.metric

    @property
    def target_metric(self) -> float | None:
        """Baseline's final test accuracy minus :data:`TARGET_MARGIN`, or its final MSE times :data:`MSE_TARGET_FACTOR` (None without a baseline)."""
        base = self.modes.get("baseline")
        if base is None:
            return None
        return base.final_metric - TARGET_MARGIN if base.higher_is_better else base.final_metric * MSE_TARGET_FACTOR

    @property
    def target_accuracy(self) -> float | None:
        """Baseline's final test accuracy minus :data:`TARGET_MARGIN` (None without a baseline, or for a regression)."""
        return self.target_metric if self.metric == "accuracy" else None

    def time_to_target(self, mode: str) -> float | None:
        """Training seconds ``mode`` took to reach :attr:`target_metric` (None: not reached)."""
        target = self.target_metric
        return None if target is None else self.modes[mode].time_to(target)

    def pass_units_to_target(self, mode: str) -> float | None:
        """Pass units ``mode`` spent to reach :attr:`target_metric` (None: not reached)."""
        target = self.target_metric
        return None if target is None else self.modes[mode].pass_units_to(target)

    @staticmethod
    def _ratio(base: float | None, this: float | None) -> float | None:
        if base is None or this is None or this <= 0:
            return None
        return base / this

    def speedup(self, mode: str) -> float | None:
        """Baseline's wall time to target / ``mode``'s (None when either did not reach it).

        The baseline's time is that of the baseline run interleaved with
        ``mode`` (:attr:`ModeResult.baseline_eval_time`, for the controls), so
        both were timed under the same machine load.
        """
        r = self.modes[mode]
        base = self.time_to_target("baseline")
        if r.baseline_eval_time and base is not None and self.target_metric is not None:
            i = self.modes["baseline"].reached(self.target_metric)
            base = None if i is None else r.baseline_eval_time[i]
        return self._ratio(base, self.time_to_target(mode))

    def pass_speedup(self, mode: str) -> float | None:
        """Baseline's pass units to target / ``mode``'s (None when either did not reach it)."""
        return self._ratio(self.pass_units_to_target("baseline"), self.pass_units_to_target(mode))

    def metric_drop(self, mode: str) -> float | None:
        """How much worse ``mode``'s final test metric is than the baseline's: accuracy points, or % of the MSE (negative: better).

        None without a baseline.
        """
        base = self.modes.get("baseline")
        if base is None:
            return None
        this = self.modes[mode].final_metric
        if base.higher_is_better:
            return (base.final_metric - this) * 100.0
        return (this / base.final_metric - 1.0) * 100.0 if base.final_metric > 0 else 0.0

    def summary(self) -> dict:
        """Per mode: counters, time and pass units to target, speedups and the metric drop (JSON-ready)."""
        return {
            m: {**r.summary(), "time_to_target": self.time_to_target(m), "speedup": self.speedup(m),
                "wall_speedup": self.speedup(m), "pass_units_to_target": self.pass_units_to_target(m),
                "pass_speedup": self.pass_speedup(m), "metric_drop": self.metric_drop(m)}
            for m, r in self.modes.items()
        }

    def to_dict(self) -> dict:
        """JSON-ready dict (with ``target_accuracy``, ``target_metric`` and ``summary``, ignored by :meth:`from_dict`)."""
        return {
            "settings": self.settings,
            "machine": self.machine,
            "target_accuracy": self.target_accuracy,
            "target_metric": self.target_metric,
            "summary": self.summary(),
            "modes": {m: r.to_dict() for m, r in self.modes.items()},
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict) -> RunResult:
        """Inverse of :meth:`to_dict`."""
        return cls(data["settings"], data["machine"], {m: ModeResult.from_dict(r) for m, r in data["modes"].items()})

    @classmethod
    def from_json(cls, text: str) -> RunResult:
        """Inverse of :meth:`to_json`; malformed text or fields raise :class:`~vsaopt.errors.ConfigError`."""
        data = parse_json(text, "RunResult")
        try:
            return cls.from_dict(data)
        except ConfigError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ConfigError(f"RunResult: malformed result ({type(exc).__name__}: {exc})") from None
