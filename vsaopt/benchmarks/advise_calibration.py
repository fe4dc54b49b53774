"""Calibration of :func:`vsaopt.advise`: the advised skip share against the share the presets skipped in a full run.

For each setting (every setting of ``vsaopt train --suite``, and
:data:`EXTRA_SETTINGS`, two batch sizes of a setting not in the suite) the
baseline's learning rate is tuned as the suite tunes it (validation split,
:data:`~vsaopt.train.suite_matrix.LR_GRID`), the gated ``recommended()``
presets train a full run at it (``phase`` and ``deterministic``, one run per
seed; their realized share of skipped backward passes, the median over the
seeds), and :func:`~vsaopt.advise.bundled.advise_bundled` advises on the
same model, data, learning rate and run length with the first seed.  Nothing
of the advisor is fitted to these results.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from ..advise.bundled import advise_bundled
from ..advise.result import PAYS_SHARE, Advice
from ..backend import resolve_backend
from ..train.data import load_dataset
from ..train.lr_tuning import tune_learning_rate
from ..train.results import TrainSettings
from ..train.run import run_training
from ..train.suite_matrix import LR_GRID, SUITE_MATRIX, SuiteSetting

__all__ = ["EXTRA_SETTINGS", "CalibrationRow", "calibrate"]

#: A setting not in the suite (digits, one hidden layer of 64) at two batch sizes between the suite's.
EXTRA_SETTINGS: tuple[SuiteSetting, ...] = (
    SuiteSetting("digits", 512, (64,), 300),
    SuiteSetting("digits", 1024, (64,), 300),
)


@dataclasses.dataclass(frozen=True)
class CalibrationRow:
    """One setting: the tuned rate, the realized shares (median over seeds) and the advice.

    Attributes
    ----------
    setting : SuiteSetting
    lr : float
    realized : dict of str to float
        Per preset, the median share of backward passes skipped in the full runs.
    advice : Advice
    in_suite : bool
    """

    setting: SuiteSetting
    lr: float
    realized: dict[str, float]
    advice: Advice
    in_suite: bool

    def contained(self, preset: str) -> bool:
        """Whether the advised band of ``preset`` at the setting's batch holds the realized share."""
        return self.advice.here.skip[preset].contains(self.realized[preset])

    @property
    def verdict_right(self) -> bool:
        """Whether the advice's "pays" (phase preset) agrees with the realized share against :data:`PAYS_SHARE`."""
        return self.advice.pays == (self.realized["phase"] >= PAYS_SHARE)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"setting": self.setting.to_dict(), "lr": self.lr, "realized": dict(self.realized),
                "advice": self.advice.to_dict(), "in_suite": self.in_suite}


def calibrate(settings: Sequence[SuiteSetting] = (*SUITE_MATRIX, *EXTRA_SETTINGS), seeds: Sequence[int] = (0, 1), *,
              backend: str = "auto", on_progress: Callable[[int, int, str], None] | None = None) -> list[CalibrationRow]:
    """Tune, train the presets, and advise on every setting (see the module).

    Examples
    --------
    >>> rows = calibrate([SuiteSetting("iris", None, (8,), 40)], seeds=[0], backend="numpy")
    >>> rows[0].setting.label, 0.0 <= rows[0].realized["phase"] <= 1.0, rows[0].in_suite
    ('iris full h8x1', True, False)
    """
    be = resolve_backend(None if backend == "auto" else backend)
    rows = []
    for i, setting in enumerate(settings):
        if on_progress is not None:
            on_progress(i, len(settings), setting.label)
        rows.append(_calibrate_one(setting, seeds, be, backend))
    if on_progress is not None:
        on_progress(len(settings), len(settings), "done")
    return rows


def _calibrate_one(setting: SuiteSetting, seeds: Sequence[int], be: Any, backend: str) -> CalibrationRow:
    data = load_dataset(setting.dataset, seed=seeds[0], backend=be)
    n = int(data.x_train.shape[0])
    batch = n if setting.batch_size is None else setting.batch_size
    lr, _ = tune_learning_rate(data, setting.hidden, LR_GRID, steps=setting.steps, batch_size=setting.batch_size,
                               seed=seeds[0], backend=be)
    shares: dict[str, list[float]] = {"phase": [], "deterministic": []}
    for seed in seeds:
        ts = TrainSettings(dataset=setting.dataset, steps=setting.steps, seed=int(seed), batch_size=batch, lr=lr,
                           momentum=0.9, hidden=setting.hidden, eval_every=setting.steps, backend=backend,
                           timing_warmup_steps=0, interleave=0)
        run = run_training(ts, list(shares))
        for preset in shares:
            shares[preset].append(run.modes[preset].backward_skipped_share)
    advice = advise_bundled(setting.dataset, batch, setting.hidden, lr=lr, momentum=0.9, seed=int(seeds[0]),
                            backend=be, matmul="blas", run_steps=setting.steps)
    realized = {k: float(statistics.median(v)) for k, v in shares.items()}
    return CalibrationRow(setting, lr, realized, advice, setting in SUITE_MATRIX)
