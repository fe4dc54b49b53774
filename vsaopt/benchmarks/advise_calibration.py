"""Calibration of :func:`vsaopt.advise`: the advised skip share against the share the presets skipped in a full run.

For each setting (every setting of ``vsaopt train --suite``, and
:data:`EXTRA_SETTINGS`, two batch sizes of a setting not in the suite) the
baseline's learning rate is tuned as the suite tunes it (validation split,
:data:`~vsaopt.train.suite_matrix.LR_GRID`, first seed).  Then, per seed, the
gated ``recommended()`` presets train a full run at that rate (``phase`` and
``deterministic``; their realized share of skipped backward passes) and
:func:`~vsaopt.advise.bundled.advise_bundled` advises on the same model,
weights, data split, learning rate and run length with the same seed (the
order of the mini-batches is its own draw).  A setting's band *contains* a
preset's realized share when every seed's band holds that seed's run;
:meth:`CalibrationRow.contained_median` is the looser reading of one advice
(the first seed's) against the median over the seeds.  Nothing of the
advisor is fitted to these settings (docs/training.md says what was fitted on
which other settings).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from ..advise.bundled import advise_bundled
from ..advise.result import PAYS_SHARE, SHARE_TOLERANCE, Advice
from ..backend import resolve_backend
from ..train.data import load_dataset
from ..train.lr_tuning import tune_learning_rate
from ..train.results import TrainSettings
from ..train.run import run_training
from ..train.suite_matrix import LR_GRID, SUITE_MATRIX, SuiteSetting

__all__ = ["EXTRA_SETTINGS", "PRESET_MODES", "CalibrationRow", "calibrate"]

#: A setting not in the suite (digits, one hidden layer of 64) at two batch sizes between the suite's.
EXTRA_SETTINGS: tuple[SuiteSetting, ...] = (
    SuiteSetting("digits", 512, (64,), 300),
    SuiteSetting("digits", 1024, (64,), 300),
)
#: The presets compared (the training modes of the same name).
PRESET_MODES: tuple[str, ...] = ("phase", "deterministic")


@dataclasses.dataclass(frozen=True)
class CalibrationRow:
    """One setting: the tuned rate, per seed the realized shares and the advice.

    Attributes
    ----------
    setting : SuiteSetting
    lr : float
    seeds : list of int
    realized_per_seed : dict of str to list of float
        Per preset, the share of backward passes skipped in each seed's full run.
    advices : list of Advice
        The advice with each seed.
    in_suite : bool
    """

    setting: SuiteSetting
    lr: float
    seeds: list[int]
    realized_per_seed: dict[str, list[float]]
    advices: list[Advice]
    in_suite: bool

    @property
    def realized(self) -> dict[str, float]:
        """Per preset, the median share over the seeds."""
        return {k: float(statistics.median(v)) for k, v in self.realized_per_seed.items()}

    @property
    def advice(self) -> Advice:
        """The first seed's advice."""
        return self.advices[0]

    def contained(self, preset: str) -> bool:
        """Whether each seed's advised band (at the setting's batch) holds that seed's realized share."""
        return all(a.here.skip[preset].contains(r) for a, r in zip(self.advices, self.realized_per_seed[preset]))

    def contained_median(self, preset: str) -> bool:
        """Whether the first seed's band holds the median realized share over the seeds."""
        return self.advice.here.skip[preset].contains(self.realized[preset])

    @property
    def verdict_right(self) -> bool:
        """Whether every seed's "pays" (phase preset) agrees with its run's share against :data:`PAYS_SHARE`."""
        return all(a.pays == _pays(r) for a, r in zip(self.advices, self.realized_per_seed["phase"]))

    @property
    def verdict_right_median(self) -> bool:
        """Whether the first seed's "pays" agrees with the median realized share."""
        return self.advice.pays == _pays(self.realized["phase"])

    def band_width(self, preset: str) -> float:
        """The widest of the seeds' bands of ``preset`` at the setting's batch (a share)."""
        return max(a.here.skip[preset].high - a.here.skip[preset].low for a in self.advices)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"setting": self.setting.to_dict(), "lr": self.lr, "seeds": list(self.seeds),
                "realized_per_seed": {k: list(v) for k, v in self.realized_per_seed.items()},
                "advices": [a.to_dict() for a in self.advices], "in_suite": self.in_suite}


def _pays(share: float) -> bool:
    """Whether a realized share reaches :data:`PAYS_SHARE` (30 of 300 steps does)."""
    return share >= PAYS_SHARE - SHARE_TOLERANCE


def calibrate(settings: Sequence[SuiteSetting] = (*SUITE_MATRIX, *EXTRA_SETTINGS), seeds: Sequence[int] = (0, 1), *,
              backend: str = "auto", on_progress: Callable[[int, int, str], None] | None = None) -> list[CalibrationRow]:
    """Tune, train the presets, and advise on every setting with every seed (see the module).

    Examples
    --------
    >>> rows = calibrate([SuiteSetting("iris", None, (8,), 40)], seeds=[0], backend="numpy")
    >>> rows[0].setting.label, 0.0 <= rows[0].realized["phase"] <= 1.0, rows[0].in_suite
    ('iris full h8x1', True, False)
    >>> rows[0].contained("phase") == rows[0].contained_median("phase")   # one seed: the two readings agree
    True
    """
    be = resolve_backend(None if backend == "auto" else backend)
    rows = []
    for i, setting in enumerate(settings):
        if on_progress is not None:
            on_progress(i, len(settings), setting.label)
        rows.append(_calibrate_one(setting, [int(s) for s in seeds], be, backend))
    if on_progress is not None:
        on_progress(len(settings), len(settings), "done")
    return rows


def _calibrate_one(setting: SuiteSetting, seeds: list[int], be: Any, backend: str) -> CalibrationRow:
    data = load_dataset(setting.dataset, seed=seeds[0], backend=be)
    n = int(data.x_train.shape[0])
    batch = n if setting.batch_size is None else setting.batch_size
    lr, _ = tune_learning_rate(data, setting.hidden, LR_GRID, steps=setting.steps, batch_size=setting.batch_size,
                               seed=seeds[0], backend=be)
    shares: dict[str, list[float]] = {k: [] for k in PRESET_MODES}
    advices = []
    for seed in seeds:
        ts = TrainSettings(dataset=setting.dataset, steps=setting.steps, seed=seed, batch_size=batch, lr=lr,
                           momentum=0.9, hidden=setting.hidden, eval_every=setting.steps, backend=backend,
                           timing_warmup_steps=0, interleave=0)
        run = run_training(ts, list(shares))
        for preset in shares:
            shares[preset].append(run.modes[preset].backward_skipped_share)
        advices.append(advise_bundled(setting.dataset, batch, setting.hidden, lr=lr, momentum=0.9, seed=seed,
                                      backend=be, matmul="blas", run_steps=setting.steps))
    return CalibrationRow(setting, lr, seeds, shares, advices, setting in SUITE_MATRIX)
