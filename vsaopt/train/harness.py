"""The training harness: one timed step loop, shared by every framework, that records a :class:`ModeResult` per mode.

A *learner* (:class:`Learner`) is one mode's model, optimizer and gradient
source: it says whether a step needs a backward pass, runs it, or takes the
predicted (or reused) gradient instead, and updates the weights.  The
harness owns everything else: the clock (training steps only), which steps
without a backward pass measure their loss, the untimed test evaluations and
diagnostics, the untimed warm-up, and the interleaving of modes.  The numpy
MLP (:mod:`vsaopt.train.run`) and the PyTorch MLP
(:mod:`vsaopt.torch.learner`) are two learners on this one loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from .results import ModeResult

__all__ = ["WARMUP_STEPS", "Learner", "ModeRun", "run_interleaved"]

#: Steps of an untimed warm-up run per mode (loads compiled kernels, warms caches).
WARMUP_STEPS = 60


class Learner(Protocol):
    """One mode's model, optimizer and gradient source, driven step by step by :class:`ModeRun`."""

    def begin_step(self, step: int) -> tuple[bool, str]:
        """Start step ``step``: whether it runs a backward pass, and its phase label."""

    def backward_step(self, step: int) -> float:
        """Forward and backward pass on the step's mini-batch (gradients to the trainer); the loss."""

    def predicted_step(self, step: int, measure_loss: bool) -> float | None:
        """Take the predicted (or reused) gradient; the mini-batch loss (forward only) when ``measure_loss``."""

    def finish_step(self, loss: float | None) -> None:
        """Optimizer update and the end of the trainer's step."""

    def evaluate(self) -> tuple[float | None, float]:
        """Test-set accuracy (None for a regression, whose metric is the loss) and loss of the current weights."""

    def diagnose(self, step: int) -> tuple[float, float, float]:
        """Cosines of (used, real mini-batch), (used, full training set) and (real mini-batch, full) gradients."""

    def trainer_stats(self) -> dict:
        """The trainer's statistics (empty without a trainer)."""


class ModeRun:
    """One mode's learner and records; :meth:`step` takes one timed training step.

    Parameters
    ----------
    mode : str
    learner : Learner
    steps : int
        Steps to take.
    eval_every : int
        Steps between test evaluations (there is one before the first step and
        one after the last).
    loss_every : int
        Measure the loss on every ``loss_every``-th step without a backward pass (0: never).
    diagnose : bool
        Record :meth:`Learner.diagnose` on steps without a backward pass (untimed).
    evaluate : bool
        Run the test evaluations (a warm-up run does not).
    """

    def __init__(self, mode: str, learner: Learner, steps: int, *, eval_every: int, loss_every: int = 0,
                 diagnose: bool = False, evaluate: bool = True) -> None:
        self.mode, self.learner, self.steps = mode, learner, steps
        self.eval_every, self.loss_every, self.diagnose, self.evaluate = eval_every, loss_every, diagnose, evaluate
        self.res = ModeResult(mode, [], [], [], [], [], [], [], [], [])
        self.elapsed = 0.0
        self.done = 0
        self._light = 0  # steps without a backward pass so far
        if evaluate:
            self._eval()

    @property
    def finished(self) -> bool:
        """Whether every step has been taken."""
        return self.done >= self.steps

    def _eval(self) -> None:
        accuracy, loss = self.learner.evaluate()
        r = self.res
        r.eval_step.append(self.done)
        r.eval_time.append(self.elapsed)
        if accuracy is not None:
            r.eval_accuracy.append(accuracy)
        r.eval_loss.append(loss)

    def step(self) -> None:
        """One training step; its time (without evaluations and diagnostics) is added to the clock."""
        step, learner, r = self.done, self.learner, self.res
        clock = time.perf_counter
        t0 = clock()
        backward, label = learner.begin_step(step)
        if backward:
            loss: float | None = learner.backward_step(step)
            forward = True
        else:
            self._light += 1
            forward = bool(self.loss_every) and self._light % self.loss_every == 0
            loss = learner.predicted_step(step, forward)
        if self.diagnose:
            pause = clock()
            cosines = (None, None, None) if backward else learner.diagnose(step)
            for lst, c in zip((r.pred_cosine, r.pred_full_cosine, r.batch_full_cosine), cosines):
                lst.append(c)
            t0 += clock() - pause
        learner.finish_step(loss)
        self.elapsed += clock() - t0
        self.done += 1
        r.phase.append(label)
        r.backward.append(backward)
        r.forward.append(forward)
        r.time.append(self.elapsed)
        r.loss.append(loss)
        if self.evaluate and (self.done % self.eval_every == 0 or self.finished):
            self._eval()

    def result(self) -> ModeResult:
        """The records, with the trainer's statistics."""
        self.res.trainer_stats = self.learner.trainer_stats()
        return self.res


def run_interleaved(
    make_learner: Callable[[str, int], Learner],
    modes: Sequence[str],
    steps: int,
    *,
    eval_every: int,
    loss_every: int = 0,
    interleave: int = 0,
    warmup_steps: int = 0,
    diagnose: Callable[[str], bool] | None = None,
    on_step: Callable[[str, int], None] | None = None,
) -> dict[str, ModeResult]:
    """Train every mode from a fresh learner, in turns of ``interleave`` steps, and return its records.

    The modes advance round robin, so that a change in the machine's load
    during the run slows every mode alike; each mode's clock runs only during
    its own steps.  Before timing, every mode runs ``warmup_steps`` untimed
    steps on a throwaway learner (compiled kernels loaded, caches warm).

    Parameters
    ----------
    make_learner : callable(mode, steps) -> Learner
        A fresh learner of ``mode`` for a run of ``steps`` steps (the first ``steps`` of the schedule).
    modes : sequence of str
        In the order they take turns.
    steps : int
    eval_every, loss_every : int
        As in :class:`ModeRun`.
    interleave : int
        Steps per turn (0: one mode after the other).
    warmup_steps : int
    diagnose : callable(mode) -> bool, optional
        Which modes record diagnostics.
    on_step : callable(mode, steps_done), optional
        Called after every timed step (a progress bar).

    Returns
    -------
    dict of str to ModeResult
        In the order of ``modes``.
    """
    warm = min(warmup_steps, steps)
    for mode in modes if warm else ():
        w = ModeRun(mode, make_learner(mode, warm), warm, eval_every=eval_every, loss_every=loss_every, evaluate=False)
        while not w.finished:
            w.step()
    runs = [ModeRun(m, make_learner(m, steps), steps, eval_every=eval_every, loss_every=loss_every,
                    diagnose=diagnose is not None and diagnose(m)) for m in modes]
    turn = interleave or steps
    while not all(r.finished for r in runs):
        for r in runs:
            for _ in range(turn):
                if r.finished:
                    break
                r.step()
                if on_step is not None:
                    on_step(r.mode, r.done)
    return {r.mode: r.result() for r in runs}
