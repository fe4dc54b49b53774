"""``vsaopt train --suite``: every mode on a matrix of settings, against a tuned baseline, over several seeds.

Per setting of the matrix (:mod:`vsaopt.train.suite_matrix`):

1. the baseline's learning rate is tuned on a validation split of the
   training data (:mod:`vsaopt.train.lr_tuning`; the first seed's split), never
   on the test metric that is reported;
2. per seed, one :func:`~vsaopt.train.run.run_training` at that rate trains
   ``baseline``, ``phase`` and ``deterministic`` (interleaved), then the
   controls ``skip``, ``reuse`` and ``small_batch`` matched to ``phase``'s
   realized schedule, all with SGD momentum 0.9 and the same data order;
3. each mode's figures (:class:`~vsaopt.train.suite_results.ModeOutcome`)
   are kept per seed; tables report the median over seeds, and over the
   matrix the median and the worst case (:mod:`vsaopt.train.suite_results`).

Nothing here prints: progress goes to an ``on_progress`` callback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..backend import resolve_backend
from ..errors import ConfigError
from ..phase import DeterministicPhaseConfig, PhaseConfig
from .data import load_dataset
from .lr_tuning import tune_learning_rate
from .model import MATMULS
from .results import TrainSettings
from .run import MODES, run_training
from .suite_matrix import LR_GRID, SUITE_MATRIX, SuiteSetting
from .suite_results import ModeOutcome, SettingResult, SuiteResult

__all__ = ["SUITE_WARMUP_STEPS", "EVALUATIONS_PER_RUN", "run_suite"]

#: Untimed warm-up steps per mode and run (compiled kernels stay loaded between the suite's runs).
SUITE_WARMUP_STEPS = 20
#: Test evaluations per run (evaluations every ``steps // EVALUATIONS_PER_RUN`` steps).
EVALUATIONS_PER_RUN = 60


def run_suite(
    matrix: Sequence[SuiteSetting] = SUITE_MATRIX,
    seeds: Sequence[int] = (0, 1),
    *,
    steps_scale: float = 1.0,
    lr_grid: Sequence[float] = LR_GRID,
    backend: str = "auto",
    threads: int = 1,
    interleave: int = 20,
    phase_config: PhaseConfig | None = None,
    deterministic_config: DeterministicPhaseConfig | None = None,
    matmul: str = "ordered",
    on_progress: Callable[[int, int, str], None] | None = None,
    machine: str = "",
) -> SuiteResult:
    """Tune, train and measure every mode on every setting of ``matrix`` for every seed.

    Parameters
    ----------
    matrix : sequence of SuiteSetting
    seeds : sequence of int
        At least one; the learning rate is tuned with the first.
    steps_scale : float > 0
        Every setting's steps times this (at least 1 step).
    lr_grid : sequence of float
        Baseline learning rates tried per setting.
    backend : str
        ``"auto"``, ``"numpy"``, ``"numba"`` or ``"cupy"``.
    threads, interleave : int
        As in :class:`~vsaopt.train.results.TrainSettings`.
    phase_config, deterministic_config : optional
        The methods' configs (default: their ``recommended()`` presets).
    matmul : {"ordered", "blas"}
        The MLP's matrix products (:class:`~vsaopt.train.results.TrainSettings`),
        in the learning-rate tuning and in every run.
    on_progress : callable(done, total, description), optional
        Called before each unit of work (one lr tuning or one run per
        setting and seed) and once at the end with ``done == total``.
    machine : str
        Stored in the result.

    Returns
    -------
    SuiteResult

    Examples
    --------
    >>> from vsaopt.train.suite_matrix import QUICK_MATRIX, QUICK_LR_GRID
    >>> suite = run_suite(QUICK_MATRIX[:1], seeds=[0], lr_grid=QUICK_LR_GRID, backend="numpy")
    >>> s = suite.settings[0]
    >>> s.setting.label, s.lr in QUICK_LR_GRID, list(s.outcomes) == list(suite.modes)
    ('wine b16 h8x1', True, True)
    """
    if not seeds:
        raise ConfigError("seeds: expected at least one seed")
    if not steps_scale > 0:
        raise ConfigError(f"steps_scale: expected a number > 0, got {steps_scale!r}")
    if not lr_grid:
        raise ConfigError("lr_grid: expected at least one learning rate")
    if matmul not in MATMULS:
        raise ConfigError(f"matmul: expected one of {', '.join(MATMULS)}, got {matmul!r}")
    pc = PhaseConfig.recommended() if phase_config is None else phase_config
    dc = DeterministicPhaseConfig.recommended() if deterministic_config is None else deterministic_config
    be = resolve_backend(None if backend == "auto" else backend)
    total = len(matrix) * (1 + len(seeds))
    done = 0

    def progress(text: str) -> None:
        if on_progress is not None:
            on_progress(done, total, text)

    results = []
    for setting in matrix:
        steps = max(1, round(setting.steps * steps_scale))
        data = load_dataset(setting.dataset, seed=seeds[0], backend=be)
        n_train = int(data.x_train.shape[0])
        batch = n_train if setting.batch_size is None else setting.batch_size
        progress(f"{setting.label}: tuning lr")
        lr, scores = tune_learning_rate(data, setting.hidden, lr_grid, steps=steps, batch_size=setting.batch_size,
                                        seed=seeds[0], backend=be, matmul=matmul)
        done += 1
        outcomes: dict[str, list[ModeOutcome]] = {m: [] for m in MODES}
        for seed in seeds:
            progress(f"{setting.label}: seed {seed}, lr {lr:g}")
            settings = TrainSettings(
                dataset=setting.dataset, steps=steps, seed=int(seed), batch_size=batch, lr=lr, momentum=0.9,
                hidden=setting.hidden, eval_every=max(1, steps // EVALUATIONS_PER_RUN), backend=backend,
                threads=threads, interleave=interleave, phase_config=pc, deterministic_config=dc,
                timing_warmup_steps=min(SUITE_WARMUP_STEPS, steps), matmul=matmul,
            )
            with np.errstate(over="ignore", invalid="ignore"):  # a diverging control overflows; it is reported as diverged
                run = run_training(settings, MODES, machine=machine)
            for mode in MODES:
                outcomes[mode].append(ModeOutcome.from_run(run, mode))
            done += 1
        results.append(SettingResult(setting, batch, steps, lr, scores, [int(s) for s in seeds], outcomes))
    progress("done")
    config: dict[str, Any] = {
        "seeds": [int(s) for s in seeds], "steps_scale": steps_scale, "lr_grid": [float(v) for v in lr_grid],
        "backend": backend, "threads": threads, "interleave": interleave, "momentum": 0.9, "matmul": matmul,
        "phase_config": pc.to_dict(), "deterministic_config": dc.to_dict(),
        "matrix": [s.to_dict() for s in matrix],
    }
    return SuiteResult(results, config, machine)
