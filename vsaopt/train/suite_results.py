"""Result schema of ``vsaopt train --suite``: per seed, per setting (median over seeds) and per mode over the matrix.

:class:`ModeOutcome` is one mode of one run (one setting, one seed), taken
from its :class:`~vsaopt.train.results.RunResult`; :class:`SettingResult`
holds a setting's tuned learning rate and the outcomes of every seed;
:class:`SuiteResult` the whole matrix, with the per-mode summary.

Medians and worst cases treat a speedup of None (the target was not reached)
as the worst value: the worst case is then None, and a median that falls on
it is None too.  The *drop* is how much worse a mode's final test metric is
than the baseline's: accuracy points, or percent of the MSE for a
regression; a run whose final metric is not finite has *diverged* (final
metric and drop None), which ranks as the worst drop.  A mode is *within
tolerance* on a setting when its median drop is at most
:data:`ACCURACY_TOLERANCE` points or :data:`MSE_TOLERANCE` percent (a
diverged median is not).  Everything round-trips through JSON (:meth:`SuiteResult.from_json`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

from .._json import parse_json
from ..errors import ConfigError
from .lr_tuning import LrScore
from .results import RunResult
from .suite_matrix import SuiteSetting

__all__ = [
    "ACCURACY_TOLERANCE",
    "MSE_TOLERANCE",
    "median_or_none",
    "worst_or_none",
    "ModeOutcome",
    "SettingResult",
    "SuiteResult",
]

#: A classification setting is within tolerance at a drop of at most this many accuracy points.
ACCURACY_TOLERANCE = 1.0
#: A regression setting is within tolerance at a drop of at most this many percent of the baseline's MSE.
MSE_TOLERANCE = 5.0


def median_or_none(values: Sequence[float | None]) -> float | None:
    """Median with None ranked lowest; None when the median falls on a None (or there are no values).

    Examples
    --------
    >>> median_or_none([3.0, 1.0, 2.0]), median_or_none([1.0, None, 2.0]), median_or_none([2.0, None])
    (2.0, 1.0, None)
    """
    if not values:
        return None
    ranked = sorted(values, key=lambda v: -math.inf if v is None else v)
    n = len(ranked)
    mid = ranked[(n - 1) // 2 : n // 2 + 1]
    if any(v is None for v in mid):
        return None
    return float(sum(v for v in mid if v is not None) / len(mid))


def worst_or_none(values: Sequence[float | None]) -> float | None:
    """The smallest value; None when any is None (not reached) or there are none.

    Examples
    --------
    >>> worst_or_none([1.5, 0.8]), worst_or_none([1.5, None])
    (0.8, None)
    """
    if not values or any(v is None for v in values):
        return None
    return float(min(v for v in values if v is not None))


@dataclasses.dataclass(frozen=True)
class ModeOutcome:
    """One mode of one run (one setting, one seed).

    Attributes
    ----------
    final_metric : float or None
        Final test accuracy, or test MSE (None: diverged).
    metric_drop : float or None
        Accuracy points, or percent of the MSE, below the baseline (negative: better; None: diverged).
    pass_speedup, wall_speedup : float or None
        Baseline's pass units (wall seconds) to target / the mode's; None: not reached.
    skipped_share : float
        Share of steps without a backward pass.
    pass_units, wall_seconds : float
        Cost of the whole run.
    telemetry : dict or None
        The last prediction telemetry of a phase-trained mode (None for the others).
    """

    final_metric: float | None
    metric_drop: float | None
    pass_speedup: float | None
    wall_speedup: float | None
    skipped_share: float
    pass_units: float
    wall_seconds: float
    telemetry: dict | None = None

    @classmethod
    def from_run(cls, run: RunResult, mode: str) -> ModeOutcome:
        """The figures of ``mode`` in ``run``."""
        r = run.modes[mode]
        last = next((t for t in reversed(r.telemetry) if t is not None), None)
        final = r.final_metric if math.isfinite(r.final_metric) else None
        drop = run.metric_drop(mode)
        if final is None or drop is None or not math.isfinite(drop):
            drop = None
        return cls(final, drop, run.pass_speedup(mode), run.speedup(mode), r.backward_skipped_share, r.pass_units,
                   r.wall_seconds, last)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModeOutcome:
        """Inverse of :meth:`to_dict`."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{k: data[k] for k in names if k in data})


@dataclasses.dataclass
class SettingResult:
    """One setting of the matrix: its tuned learning rate and every seed's outcomes.

    Attributes
    ----------
    setting : SuiteSetting
    batch_size : int
        The batch size used (full batch resolved to the training split's size).
    steps : int
        Steps per mode (the setting's, scaled).
    lr : float
        The tuned baseline learning rate every mode used.
    lr_scores : list of LrScore
        The validation scores of the grid.
    seeds : list of int
    outcomes : dict of str to list of ModeOutcome
        Per mode, one outcome per seed (in the order of ``seeds``).
    """

    setting: SuiteSetting
    batch_size: int
    steps: int
    lr: float
    lr_scores: list[LrScore]
    seeds: list[int]
    outcomes: dict[str, list[ModeOutcome]]

    @property
    def metric(self) -> str:
        """``"accuracy"``, or ``"mse"`` for the regression."""
        from .data import REGRESSION_DATASETS

        return "mse" if self.setting.dataset in REGRESSION_DATASETS else "accuracy"

    @property
    def tolerance(self) -> float:
        """The largest drop within tolerance (accuracy points or percent of MSE)."""
        return ACCURACY_TOLERANCE if self.metric == "accuracy" else MSE_TOLERANCE

    def median(self, mode: str, field: str) -> float | None:
        """Median over seeds of one :class:`ModeOutcome` field; None ranks as the worst value.

        The worst is the lowest for speedups and accuracies, the highest for
        drops and MSEs; None when the median falls on a None.
        """
        values = [getattr(o, field) for o in self.outcomes[mode]]
        if field == "metric_drop" or (field == "final_metric" and self.metric == "mse"):
            flipped = median_or_none([None if v is None else -v for v in values])
            return None if flipped is None else 0.0 - flipped  # not -0.0
        return median_or_none(values)

    def within_tolerance(self, mode: str) -> bool:
        """Whether ``mode``'s median drop is at most :attr:`tolerance`."""
        drop = self.median(mode, "metric_drop")
        return drop is not None and drop <= self.tolerance

    def to_dict(self) -> dict:
        """JSON-ready dict (with per-mode medians, ignored by :meth:`from_dict`)."""
        fields = ("final_metric", "metric_drop", "pass_speedup", "wall_speedup", "skipped_share")
        return {
            "setting": self.setting.to_dict(),
            "label": self.setting.label,
            "metric": self.metric,
            "batch_size": self.batch_size,
            "steps": self.steps,
            "lr": self.lr,
            "lr_scores": [s.to_dict() for s in self.lr_scores],
            "seeds": list(self.seeds),
            "outcomes": {m: [o.to_dict() for o in os] for m, os in self.outcomes.items()},
            "medians": {m: {**{f: self.median(m, f) for f in fields}, "within_tolerance": self.within_tolerance(m)}
                        for m in self.outcomes},
        }

    @classmethod
    def from_dict(cls, data: dict) -> SettingResult:
        """Inverse of :meth:`to_dict`."""
        return cls(SuiteSetting.from_dict(data["setting"]), int(data["batch_size"]), int(data["steps"]),
                   float(data["lr"]), [LrScore.from_dict(s) for s in data["lr_scores"]], [int(s) for s in data["seeds"]],
                   {m: [ModeOutcome.from_dict(o) for o in os] for m, os in data["outcomes"].items()})


@dataclasses.dataclass
class SuiteResult:
    """The whole matrix: every setting's result, the configuration of the suite and the machine.

    Attributes
    ----------
    settings : list of SettingResult
    config : dict
        The suite's options (phase configs, learning-rate grid, step scale, backend, ...).
    machine : str

    Examples
    --------
    >>> o = ModeOutcome(0.9, 0.0, 1.0, 1.0, 0.0, 30.0, 0.1)
    >>> p = ModeOutcome(0.89, 1.0, 1.4, None, 0.5, 20.0, 0.1)
    >>> s = SettingResult(SuiteSetting("wine", 16, (8,), 10), 16, 10, 0.1, [], [0], {"baseline": [o], "phase": [p]})
    >>> suite = SuiteResult([s], {}, "test machine")
    >>> row = suite.summary()["phase"]
    >>> row["pass_speedup_median"], row["wall_speedup_worst"], row["within_tolerance"]
    (1.4, None, '1/1')
    >>> SuiteResult.from_json(suite.to_json()) == suite
    True
    """

    settings: list[SettingResult]
    config: dict
    machine: str

    @property
    def modes(self) -> list[str]:
        """The modes, in the order of the first setting."""
        return list(self.settings[0].outcomes) if self.settings else []

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per mode over the matrix (of the per-setting medians): median and worst speedups, skipped share, settings within tolerance.

        The worst drops are over the settings that did not diverge;
        ``diverged`` counts those that did (median drop None).
        """
        out: dict[str, dict[str, Any]] = {}
        for mode in self.modes:
            rows = [s for s in self.settings if mode in s.outcomes]
            pass_speed = [s.median(mode, "pass_speedup") for s in rows]
            wall_speed = [s.median(mode, "wall_speedup") for s in rows]
            acc_drops = [s.median(mode, "metric_drop") for s in rows if s.metric == "accuracy"]
            mse_drops = [s.median(mode, "metric_drop") for s in rows if s.metric == "mse"]
            diverged = sum(d is None for d in acc_drops + mse_drops)
            skipped = [s.median(mode, "skipped_share") for s in rows]
            out[mode] = {
                "pass_speedup_median": median_or_none(pass_speed),
                "pass_speedup_worst": worst_or_none(pass_speed),
                "wall_speedup_median": median_or_none(wall_speed),
                "wall_speedup_worst": worst_or_none(wall_speed),
                "accuracy_drop_worst": max((d for d in acc_drops if d is not None), default=None),
                "mse_drop_worst": max((d for d in mse_drops if d is not None), default=None),
                "skipped_share_median": median_or_none(skipped),
                "diverged": f"{diverged}/{len(rows)}",
                "within_tolerance": f"{sum(s.within_tolerance(mode) for s in rows)}/{len(rows)}",
            }
        return out

    def to_dict(self) -> dict:
        """JSON-ready dict (with the ``summary``, ignored by :meth:`from_dict`)."""
        return {"config": self.config, "machine": self.machine, "summary": self.summary(),
                "settings": [s.to_dict() for s in self.settings]}

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict) -> SuiteResult:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(data["config"], dict) or not isinstance(data["machine"], str):
            raise TypeError("config must be an object and machine a string")
        return cls([SettingResult.from_dict(s) for s in data["settings"]], data["config"], data["machine"])

    @classmethod
    def from_json(cls, text: str) -> SuiteResult:
        """Inverse of :meth:`to_json`; malformed text or fields raise :class:`~vsaopt.errors.ConfigError`."""
        data = parse_json(text, "SuiteResult")
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"SuiteResult: malformed result ({exc})") from None
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ConfigError(f"SuiteResult: malformed result ({type(exc).__name__}: {exc})") from None
