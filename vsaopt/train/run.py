"""Train one model four ways and time them: ``baseline``, ``phase``, ``deterministic`` and ``skip``.

Every mode starts from the same initial weights, sees the same mini-batches in
the same order (one seeded permutation per epoch) and uses the same optimizer
(:class:`~vsaopt.train.optim.SGDMomentum`).  They differ only in where each
step's gradient comes from:

``baseline``
    a forward and backward pass every step;
``phase``
    :class:`~vsaopt.phase.PhaseTrainer` (momentum extrapolation; corrections
    accumulated by a CORRECT step are added to the next predicted gradient);
``deterministic``
    :class:`~vsaopt.phase.DeterministicPhaseTrainer` (least-squares prediction);
``skip``
    a control: as many steps as ``phase``'s schedule predicts (its share of
    PREDICT steps without adaptive changes, :func:`nominal_predict_share`),
    chosen at random, skip their backward pass and reuse the last real gradient.

A step without a backward pass also skips its forward pass, except every
``loss_every``-th such step, whose loss is measured (forward only) and given
to the trainer; the others end with ``end_step(None)``.

Wall-clock time counts training steps only (data gathering, forward, backward,
trainer calls, optimizer update); the periodic test-set evaluations are not
timed.  *Time to target* is the training time at the first evaluation whose
test accuracy reaches the baseline's final test accuracy minus
:data:`~vsaopt.train.results.TARGET_MARGIN`.

The settings and results are the schema of :mod:`vsaopt.train.results`.
Nothing here prints; :mod:`vsaopt.cli.train` formats the results.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..backend import resolve_backend
from ..errors import ConfigError
from ..phase import DeterministicPhaseTrainer, PhaseConfig, PhaseTrainer
from .data import Dataset, load_dataset
from .model import MLP
from .optim import SGDMomentum
from .results import ModeResult, RunResult, TrainSettings

__all__ = [
    "MODES",
    "run_training",
    "batch_schedule",
    "nominal_predict_share",
]

#: The modes, in the order they run.
MODES: tuple[str, ...] = ("baseline", "phase", "deterministic", "skip")
#: Steps of an untimed warm-up run per mode (loads compiled kernels, warms caches).
WARMUP_STEPS = 60


def batch_schedule(n_train: int, batch_size: int, steps: int, seed: int) -> np.ndarray:
    """Sample indices of every step's mini-batch, ``(steps, batch_size)`` int64.

    One seeded permutation per epoch (``numpy.random.default_rng(seed)``); an
    epoch's incomplete last batch is dropped.  The same for every mode.

    Examples
    --------
    >>> b = batch_schedule(10, 4, 3, seed=0)
    >>> b.shape, len(set(b[0]) | set(b[1])), np.array_equal(b, batch_schedule(10, 4, 3, seed=0))
    ((3, 4), 8, True)
    """
    if batch_size > n_train:
        raise ConfigError(f"batch_size: at most the {n_train} training samples, got {batch_size}")
    rng = np.random.default_rng([seed, 1])
    per_epoch = n_train // batch_size
    epochs = -(-steps // per_epoch)
    rows = [rng.permutation(n_train)[: per_epoch * batch_size].reshape(per_epoch, batch_size) for _ in range(epochs)]
    return np.concatenate(rows)[:steps]


def _skip_steps(steps: int, count: int, seed: int) -> np.ndarray:
    """Which steps the ``skip`` control skips: ``count`` seeded random steps, never step 0."""
    rng = np.random.default_rng([seed, 2])
    mask = np.zeros(steps, dtype=bool)
    count = max(0, min(count, steps - 1))
    mask[1 + rng.choice(steps - 1, size=count, replace=False)] = True
    return mask


def nominal_predict_share(config: PhaseConfig, steps: int) -> float:
    """Share of PREDICT steps of ``config``'s schedule over ``steps`` steps without adaptive changes.

    Examples
    --------
    >>> nominal_predict_share(PhaseConfig(full_steps=2, predict_steps=2, correct_every=5), 100)
    0.5
    """
    trainer = PhaseTrainer([("g", (1,))], dataclasses.replace(config, adaptive_phases=False), backend="numpy")
    g = {"g": np.zeros(1, np.float32)}
    predicted = 0
    for _ in range(steps):
        info = trainer.begin_step()
        if info.needs_backward:
            trainer.record_full_gradients(g)
        else:
            trainer.get_predicted_gradients()
            predicted += 1
        trainer.end_step(None)
    return predicted / steps


def _flat_dot(a: dict, b: dict, xp: Any) -> float:
    return sum(float(xp.sum(a[k] * b[k])) for k in b)


def _cosine(a: dict, b: dict, xp: Any) -> float:
    na, nb = math.sqrt(_flat_dot(a, a, xp)), math.sqrt(_flat_dot(b, b, xp))
    return _flat_dot(a, b, xp) / (na * nb) if na > 0 and nb > 0 else 0.0


class _ModeRun:
    """One mode's model, optimizer, trainer and records; :meth:`step` takes one timed training step."""

    def __init__(self, mode: str, settings: TrainSettings, data: Dataset, init: dict, batches: np.ndarray,
                 skip_mask: np.ndarray | None, be: Any, evaluate: bool = True) -> None:
        if mode not in MODES:
            raise ConfigError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
        self.mode, self.settings, self.data, self.batches, self.skip_mask, self.be = mode, settings, data, batches, skip_mask, be
        self._idx = be.xp.asarray(batches)  # sample indices where the data live (cupy indexes with device arrays)
        sizes = [data.n_features, *settings.hidden, data.n_classes]
        self.model = MLP(sizes, seed=settings.seed, backend=be)
        self.model.set_params(init)
        self.opt = SGDMomentum(self.model.params, lr=settings.lr, momentum=settings.momentum)
        self.trainer: Any = None
        if mode == "phase":
            self.trainer = PhaseTrainer(self.model.param_shapes(), settings.phase_config, backend=be)
        elif mode == "deterministic":
            self.trainer = DeterministicPhaseTrainer(self.model.param_shapes(), settings.deterministic_config, backend=be)
        self.res = ModeResult(mode, [], [], [], [], [], [], [], [], [])
        self.diagnose = settings.diagnose and mode != "baseline"
        self.evaluate = evaluate
        self.elapsed = 0.0
        self.done = 0
        self._light = 0  # steps without a backward pass so far
        self._last_grads: dict | None = None
        self._correction_pending = False
        if evaluate:
            self._eval()

    @property
    def finished(self) -> bool:
        return self.done >= self.batches.shape[0]

    def _eval(self) -> None:
        m, d, r = self.model, self.data, self.res
        r.eval_step.append(self.done)
        r.eval_time.append(self.elapsed)
        r.eval_accuracy.append(m.accuracy(d.x_test, d.y_test))
        r.eval_loss.append(m.loss(d.x_test, d.y_test))

    def _diagnose(self, grads: dict, idx: np.ndarray) -> None:
        """Untimed: how close the used gradient is to the real mini-batch and full training-set gradients."""
        xp, m, d = self.be.xp, self.model, self.data
        _, real = m.loss_and_gradients(d.x_train[idx], d.y_train[idx])
        _, full = m.loss_and_gradients(d.x_train, d.y_train)
        self.res.pred_cosine.append(_cosine(grads, real, xp))
        self.res.pred_full_cosine.append(_cosine(grads, full, xp))
        self.res.batch_full_cosine.append(_cosine(real, full, xp))

    def step(self) -> None:
        """One training step; its time (without evaluations and diagnostics) is added to the clock."""
        step, model, trainer = self.done, self.model, self.trainer
        x_all, y_all = self.data.x_train, self.data.y_train
        clock = time.perf_counter
        t0 = clock()
        if trainer is not None:
            info = trainer.begin_step()
            backward, label = info.needs_backward, str(info.phase)
        else:
            backward = self.skip_mask is None or not self.skip_mask[step]
            label = "FULL" if backward else "SKIP"
        loss: float | None = None
        forward = backward
        if backward:
            idx = self._idx[step]
            loss, grads = model.loss_and_gradients(x_all[idx], y_all[idx])
            if trainer is not None:
                trainer.record_full_gradients(grads)
                # a CORRECT record of the momentum trainer accumulates a correction for the next prediction
                self._correction_pending |= self.mode == "phase" and label == "CORRECT"
            self._last_grads = grads
        else:
            if trainer is not None:
                grads = trainer.get_predicted_gradients()
                if self._correction_pending:  # apply_correction validates its input even with nothing pending
                    trainer.apply_correction(grads)
                    self._correction_pending = False
            else:
                assert self._last_grads is not None  # step 0 is never skipped
                grads = self._last_grads
            self._light += 1
            every = self.settings.loss_every
            if every and self._light % every == 0:
                idx = self._idx[step]
                loss = model.loss(x_all[idx], y_all[idx])
                forward = True
        if self.diagnose:
            pause = clock()
            if backward:
                for lst in (self.res.pred_cosine, self.res.pred_full_cosine, self.res.batch_full_cosine):
                    lst.append(None)
            else:
                self._diagnose(grads, self._idx[step])
            t0 += clock() - pause
        self.opt.step(grads)
        if trainer is not None:
            trainer.end_step(loss)
        self.elapsed += clock() - t0
        self.done += 1
        r = self.res
        r.phase.append(label)
        r.backward.append(backward)
        r.forward.append(forward)
        r.time.append(self.elapsed)
        r.loss.append(loss)
        if self.evaluate and (self.done % self.settings.eval_every == 0 or self.finished):
            self._eval()

    def result(self) -> ModeResult:
        if self.trainer is not None:
            self.res.trainer_stats = self.trainer.get_stats().to_dict()
        return self.res


def run_training(
    settings: TrainSettings,
    modes: Sequence[str] = MODES,
    *,
    on_step: Callable[[str, int], None] | None = None,
    machine: str = "",
) -> RunResult:
    """Train every mode of ``modes`` (``baseline`` always runs: it defines the target) and time it.

    The modes advance in turns of ``settings.interleave`` steps (round robin),
    so that a change in the machine's load during the run slows every mode
    alike; each mode's clock runs only during its own steps.  Before timing,
    every mode runs :data:`WARMUP_STEPS` untimed steps on a throwaway copy
    (compiled kernels loaded, caches warm).

    Parameters
    ----------
    settings : TrainSettings
    modes : sequence of str
        Some of :data:`MODES`.
    on_step : callable(mode, steps_done), optional
        Called after every training step (the CLI's progress bar).
    machine : str
        Stored in the result (where the times were measured).

    Returns
    -------
    RunResult

    Examples
    --------
    >>> s = TrainSettings(steps=30, hidden=(16,), batch_size=32, eval_every=10, backend="numpy")
    >>> run = run_training(s, ["phase", "skip"])
    >>> list(run.modes), run.modes["phase"].steps
    (['baseline', 'phase', 'skip'], 30)
    >>> run.modes["skip"].backward_passes == run.modes["phase"].backward_passes   # the control skips as often
    True
    """
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ConfigError(f"modes: expected some of {', '.join(MODES)}, got {unknown}")
    if settings.threads:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=settings.threads, user_api="blas"):
            return _run_all(settings, modes, on_step, machine)
    return _run_all(settings, modes, on_step, machine)


def _run_all(settings: TrainSettings, modes: Sequence[str], on_step: Any, machine: str) -> RunResult:
    chosen = [m for m in MODES if m == "baseline" or m in modes]
    be = resolve_backend(None if settings.backend == "auto" else settings.backend)
    data = load_dataset(settings.dataset, seed=settings.seed, backend=be)
    init = MLP([data.n_features, *settings.hidden, data.n_classes], seed=settings.seed, backend=be).copy_params()
    batches = batch_schedule(int(data.x_train.shape[0]), settings.batch_size, settings.steps, settings.seed)
    count = round(nominal_predict_share(settings.phase_config, settings.steps) * settings.steps)
    skip_mask = _skip_steps(settings.steps, count, settings.seed)
    masks = {m: (skip_mask if m == "skip" else None) for m in chosen}
    warm = min(WARMUP_STEPS, settings.steps)
    for mode in chosen:
        mask = masks[mode]
        w = _ModeRun(mode, settings, data, init, batches[:warm], None if mask is None else mask[:warm], be, evaluate=False)
        while not w.finished:
            w.step()
    runs = [_ModeRun(m, settings, data, init, batches, masks[m], be) for m in chosen]
    turn = settings.interleave or settings.steps
    while not all(r.finished for r in runs):
        for r in runs:
            for _ in range(turn):
                if r.finished:
                    break
                r.step()
                if on_step is not None:
                    on_step(r.mode, r.done)
    return RunResult(settings.to_dict(), machine, {r.mode: r.result() for r in runs})
