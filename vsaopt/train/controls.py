"""The controls of ``vsaopt train``, derived from the ``phase`` mode's realized schedule.

A gated schedule decides how many steps it predicts while it trains, so the
controls are built after ``phase`` has run, from its per-step record
(:attr:`~vsaopt.train.results.ModeResult.backward`):

``skip``
    as many steps without a backward pass as ``phase`` had, at seeded random
    positions (never step 0); each reuses the last real gradient;
``reuse``
    reuses the last real gradient at exactly the steps ``phase`` predicted;
``small_batch``
    plain backprop every step, at batch ``max(1, round(B / (k + 1)))`` with
    ``k + 1 = steps / backward passes`` of ``phase``: about as many samples
    as ``phase`` processed, spread over every step.

A method that does not beat these is no better than skipping at random,
reusing stale gradients or training on fewer samples per step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

__all__ = ["ControlPlan", "skip_mask", "reuse_mask", "small_batch_size", "plan_controls"]


def skip_mask(steps: int, count: int, seed: int) -> np.ndarray:
    """Which steps the ``skip`` control skips: ``count`` seeded random steps, never step 0.

    Examples
    --------
    >>> m = skip_mask(10, 4, seed=0)
    >>> int(m.sum()), bool(m[0])
    (4, False)
    """
    rng = np.random.default_rng([seed, 2])
    mask = np.zeros(steps, dtype=bool)
    count = max(0, min(count, steps - 1))
    mask[1 + rng.choice(steps - 1, size=count, replace=False)] = True
    return mask


def reuse_mask(backward: Sequence[bool]) -> np.ndarray:
    """Which steps the ``reuse`` control reuses the last real gradient at: those without a backward pass in ``backward``.

    Examples
    --------
    >>> reuse_mask([True, False, False, True]).tolist()
    [False, True, True, False]
    """
    return ~np.asarray(backward, dtype=bool)


def small_batch_size(batch_size: int, steps: int, backward_passes: int) -> int:
    """The ``small_batch`` control's batch: ``max(1, round(batch_size / (k + 1)))``, ``k + 1 = steps / backward_passes``.

    Examples
    --------
    >>> small_batch_size(256, 300, 100), small_batch_size(256, 300, 300), small_batch_size(3, 300, 1)
    (85, 256, 1)
    """
    if backward_passes <= 0:
        return 1
    return max(1, round(batch_size / (steps / backward_passes)))


@dataclasses.dataclass(frozen=True)
class ControlPlan:
    """The three controls matched to one realized ``phase`` schedule.

    Attributes
    ----------
    skip : numpy.ndarray of bool, (steps,)
        Steps the ``skip`` control skips.
    reuse : numpy.ndarray of bool, (steps,)
        Steps the ``reuse`` control reuses the last real gradient at.
    small_batch : int
        Batch size of the ``small_batch`` control.
    """

    skip: np.ndarray
    reuse: np.ndarray
    small_batch: int


def plan_controls(backward: Sequence[bool], batch_size: int, seed: int) -> ControlPlan:
    """The controls of a run whose ``phase`` mode ran a backward pass at the steps flagged in ``backward``.

    Parameters
    ----------
    backward : sequence of bool
        ``phase``'s per-step record.
    batch_size : int
        The run's batch size.
    seed : int
        Seed of the ``skip`` control's positions.

    Returns
    -------
    ControlPlan

    Examples
    --------
    >>> plan = plan_controls([True, False, False] * 4, batch_size=30, seed=0)
    >>> int(plan.skip.sum()), int(plan.reuse.sum()), plan.small_batch
    (8, 8, 10)
    """
    steps = len(backward)
    passes = int(sum(bool(b) for b in backward))
    return ControlPlan(
        skip=skip_mask(steps, steps - passes, seed),
        reuse=reuse_mask(backward),
        small_batch=small_batch_size(batch_size, steps, passes),
    )
