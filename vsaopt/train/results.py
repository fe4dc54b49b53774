"""Result schema of a training run: :class:`TrainSettings`, :class:`ModeResult`, :class:`RunResult` and their JSON.

What :func:`~vsaopt.train.run.run_training` is given and what it returns:
the settings shared by every mode, each mode's per-step and per-evaluation
records, and the run as a whole (target accuracy, time to target, speedup).
Each round-trips through ``to_dict`` / ``from_dict`` (``RunResult`` also
through JSON text) exactly.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from .._json import parse_json
from ..errors import ConfigError
from ..phase import DeterministicPhaseConfig, PhaseConfig

__all__ = ["TARGET_MARGIN", "TrainSettings", "ModeResult", "RunResult"]

#: Target accuracy = baseline's final test accuracy minus this (0.5 percentage points).
TARGET_MARGIN = 0.005


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

    def __post_init__(self) -> None:
        for name, lo in (("steps", 1), ("batch_size", 1), ("loss_every", 0), ("eval_every", 1), ("threads", 0), ("interleave", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ConfigError(f"{name}: expected an integer >= {lo}, got {v!r}")
        if not isinstance(self.hidden, tuple) or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ConfigError(f"hidden: expected a tuple of positive ints, got {self.hidden!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr: expected a finite number > 0, got {self.lr!r}")
        if not (0 <= self.momentum < 1):
            raise ConfigError(f"momentum: expected a number in [0, 1), got {self.momentum!r}")

    def to_dict(self) -> dict:
        """JSON-ready dict (configs as nested dicts)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["hidden"] = list(self.hidden)
        d["phase_config"] = self.phase_config.to_dict()
        d["deterministic_config"] = self.deterministic_config.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict) -> TrainSettings:
        """Inverse of :meth:`to_dict`."""
        d = dict(data)
        d["hidden"] = tuple(d["hidden"])
        d["phase_config"] = PhaseConfig.from_dict(d["phase_config"])
        d["deterministic_config"] = DeterministicPhaseConfig.from_dict(d["deterministic_config"])
        return cls(**d)


@dataclasses.dataclass
class ModeResult:
    """Everything recorded while training one mode.

    Per-step lists (one entry per step): ``phase`` (``"FULL"``, ``"PREDICT"``,
    ``"CORRECT"``, ``"WARMUP"``; ``"SKIP"`` for the control's reused steps),
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

    Examples
    --------
    >>> r = ModeResult("baseline", ["FULL"], [True], [True], [0.01], [2.3], [0, 1], [0.0, 0.01], [0.1, 0.2], [2.3, 2.2])
    >>> r.backward_passes, r.wall_seconds, r.final_test_accuracy
    (1, 0.01, 0.2)
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
        """Test accuracy after the last step."""
        return self.eval_accuracy[-1]

    def time_to(self, accuracy: float) -> float | None:
        """Training seconds at the first evaluation with test accuracy >= ``accuracy`` (None: never)."""
        for t, a in zip(self.eval_time, self.eval_accuracy):
            if a >= accuracy:
                return t
        return None

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
            if p in ("PREDICT", "SKIP"):
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
            "wall_seconds": self.wall_seconds,
            "final_test_accuracy": self.final_test_accuracy,
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
    >>> RunResult.from_json(run.to_json()) == run
    True
    """

    settings: dict
    machine: str
    modes: dict[str, ModeResult]

    @property
    def target_accuracy(self) -> float | None:
        """Baseline's final test accuracy minus :data:`TARGET_MARGIN` (None without a baseline)."""
        base = self.modes.get("baseline")
        return None if base is None else base.final_test_accuracy - TARGET_MARGIN

    def time_to_target(self, mode: str) -> float | None:
        """Training seconds ``mode`` took to reach :attr:`target_accuracy` (None: not reached)."""
        target = self.target_accuracy
        return None if target is None else self.modes[mode].time_to(target)

    def speedup(self, mode: str) -> float | None:
        """Baseline's time to target / ``mode``'s (None when either did not reach it)."""
        base, this = self.time_to_target("baseline"), self.time_to_target(mode)
        if base is None or this is None or this <= 0:
            return None
        return base / this

    def summary(self) -> dict:
        """Per mode: counters, time to target and speedup (JSON-ready)."""
        return {
            m: {**r.summary(), "time_to_target": self.time_to_target(m), "speedup": self.speedup(m)}
            for m, r in self.modes.items()
        }

    def to_dict(self) -> dict:
        """JSON-ready dict (with ``target_accuracy`` and ``summary``, ignored by :meth:`from_dict`)."""
        return {
            "settings": self.settings,
            "machine": self.machine,
            "target_accuracy": self.target_accuracy,
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
