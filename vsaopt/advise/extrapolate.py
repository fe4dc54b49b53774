"""The advised share at the measured batch: what the presets skipped over the measured steps, the rest of the run extrapolated.

The measurement's first ``M`` training steps are the start of the run advised
on (:mod:`vsaopt.advise.shadow`): their skips are counted.  The remaining
``T = run_steps - M`` steps are extrapolated from the gate's mechanics.  With
``L`` the preset's longest PREDICT run, ``cap = L / (L + 1)`` is the most it
can skip, and ``p`` (*persistence*, at most ``cap``) the share it skipped over
the last third of the measured steps: the state the gate ended in.

The measured count ``K``:

- is exact for the preset that drove the measurement's training at full batch
  (the run advised on, step for step);
- below full batch depends on the order of the mini-batches, which the
  measurement cannot know: with ``R`` runs of skipped steps of mean length
  ``l`` (``L`` when there was none), it lies in ``l`` times the 80 % interval
  of a Poisson mean given ``R`` events (Garwood);
- for the preset that did not drive the training (the least-squares one),
  measured on the other preset's weights, reaches up to at least what the
  driving preset skipped, and down to what it skipped before its gate first
  closed at full batch (its own run may shut for good there), to 0 below
  full batch (on the driving preset's weights, whose reused steps make
  consecutive gradients more alike, it skipped more than in its own runs in
  the development settings).

The tail's share:

- at full batch only the drift acts (no sampling noise), and it slows as
  training settles: from ``p`` less the 80 % Poisson margin of the skips the
  last third missed against ``cap`` (occasional closures), to ``cap``;
  estimate: the midpoint of ``p`` and ``cap``;
- below full batch the noise scale grows as the loss falls and closes the
  gate: from 0 to ``max(p, u)``, ``u`` the *ceiling* given by the caller (the
  noise-and-drift model at the optimistic end of the last rounds'
  estimates); estimate ``p``;
- the least-squares preset may shut for good at any time (its residual,
  updated only at CORRECT steps, goes stale while the gradient shrinks, and
  the cosine its gate reads only falls from there): its tail's low end is 0,
  and its tail is 0 where it has shut already (*trapped*).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from .result import ShareBand

__all__ = ["TailEvidence", "measured_share", "skip_runs", "poisson_interval", "first_stretch", "COUNT_LEVEL"]

#: Coverage of the Poisson intervals of the counts (as the noise scale's interval).
COUNT_LEVEL = 0.8


@dataclasses.dataclass(frozen=True)
class TailEvidence:
    """What the extrapolation reads beside the measured skips.

    Attributes
    ----------
    ceiling : float
        ``u``: the most the tail may skip below full batch (0..1; unused at full batch).
    full_batch : bool
        Whether the batch is the whole data set (no sampling noise: only the drift acts).
    drives : bool
        Whether this preset's choices trained the measurement's model.
    can_trap : bool
        Whether the preset may shut for good (the least-squares preset).
    trapped : bool
        Whether it has shut for good already.
    longest_run : int >= 1
        ``L``, the preset's longest PREDICT run.
    driving_count : int
        Steps the driving preset skipped over the same measured steps.
    """

    ceiling: float
    full_batch: bool
    drives: bool = True
    can_trap: bool = False
    trapped: bool = False
    longest_run: int = 4
    driving_count: int = 0


def skip_runs(skipped: Sequence[bool]) -> list[int]:
    """Lengths of the runs of consecutive skipped steps.

    Examples
    --------
    >>> skip_runs([False, True, True, False, True, False, False])
    [2, 1]
    """
    runs: list[int] = []
    previous = False
    for s in skipped:
        if s and previous:
            runs[-1] += 1
        elif s:
            runs.append(1)
        previous = bool(s)
    return runs


def first_stretch(skipped: Sequence[bool]) -> int:
    """Steps skipped before the gate first closed after opening (two real steps in a row after the first skip).

    Examples
    --------
    >>> first_stretch([False, False, True, False, True, True, False, False, True])
    3
    """
    count, opened, previous_real = 0, False, False
    for s in skipped:
        if s:
            count, opened, previous_real = count + 1, True, False
        elif opened and previous_real:
            break
        else:
            previous_real = True
    return count


def _poisson_cdf(k: int, mean: float) -> float:
    """``P(X <= k)`` for ``X ~ Poisson(mean)``."""
    if mean <= 0.0:
        return 1.0
    term = total = math.exp(-mean)
    for i in range(1, k + 1):
        term *= mean / i
        total += term
    return min(1.0, total)


def _solve_mean(k: int, target: float) -> float:
    """The Poisson mean at which ``P(X <= k) = target`` (bisection; it falls as the mean grows)."""
    lo, hi = 0.0, k + 10.0 + 10.0 * math.sqrt(k + 1)
    for _ in range(100):
        mid = (lo + hi) / 2
        if _poisson_cdf(k, mid) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def poisson_interval(k: int, level: float = COUNT_LEVEL) -> tuple[float, float]:
    """Garwood's interval of a Poisson mean given ``k`` events, with coverage ``level``.

    Examples
    --------
    >>> [tuple(round(x, 2) for x in poisson_interval(k)) for k in (0, 1, 5)]
    [(0.0, 2.3), (0.11, 3.89), (2.43, 9.27)]
    """
    tail = (1.0 - level) / 2
    low = 0.0 if k == 0 else _solve_mean(k - 1, 1.0 - tail)
    return low, _solve_mean(k, tail)


def _count_band(steps: list[bool], evidence: TailEvidence, cap: float) -> tuple[float, float]:
    """The measured count's interval (see the module)."""
    count = sum(steps)
    if evidence.drives and evidence.full_batch:
        return float(count), float(count)
    runs = skip_runs(steps)
    length = sum(runs) / len(runs) if runs else float(evidence.longest_run)
    r_lo, r_hi = poisson_interval(len(runs))
    low = min(count, math.floor(r_lo * length))  # whole steps
    high = min(max(count, math.ceil(r_hi * length)), math.floor(cap * len(steps)))
    if not evidence.drives:
        low = min(low, first_stretch(steps)) if evidence.full_batch else 0
        high = max(high, min(evidence.driving_count, math.floor(cap * len(steps))))
    return float(low), float(high)


def _tail_band(p: float, n3: int, evidence: TailEvidence, cap: float) -> tuple[float, float, float]:
    """The tail's share: low end, estimate, high end (see the module)."""
    if evidence.trapped:
        return 0.0, 0.0, 0.0
    if evidence.full_batch and not evidence.can_trap:
        missed = (cap - p) * n3
        _, missed_hi = poisson_interval(int(round(missed)))
        return max(0.0, p - max(0.0, missed_hi - missed) / n3), (p + cap) / 2, cap
    high = max(p, cap if evidence.full_batch else min(cap, evidence.ceiling))
    return 0.0, p, high


def measured_share(skipped: Sequence[bool], run_steps: int, evidence: TailEvidence) -> tuple[ShareBand, dict]:
    """The advised share over ``run_steps`` steps from the measured steps' skips and the extrapolation of the rest.

    Parameters
    ----------
    skipped : sequence of bool
        Per measured training step (at least one), whether the preset skipped its backward pass.
    run_steps : int
        Length of the run advised on (only its first ``len(skipped)`` steps count when shorter).
    evidence : TailEvidence

    Returns
    -------
    ShareBand, dict
        The band, and how it was formed (measured steps and skips, the
        count's interval, ``p``, the tail's interval), JSON-ready.

    Examples
    --------
    A full-batch run at its cap over 30 measured steps (4 of 5 skipped), 30 more to go:

    >>> ev = TailEvidence(ceiling=0.0, full_batch=True)
    >>> band, how = measured_share([False, True, True, True, True] * 6, 60, ev)
    >>> str(band), how["tail_share"][0] < 0.8       # 10 steps at the cap leave room for closures
    ('80 % (68-80)', True)

    No skip in 30 mini-batch steps, the noise's ceiling 0:

    >>> band, _ = measured_share([False] * 30, 60, TailEvidence(ceiling=0.0, full_batch=False))
    >>> str(band)                                   # up to 2.3 runs of 4 steps may have been missed
    '0 % (0-17)'
    """
    m = min(len(skipped), run_steps)
    if m < 1:
        raise ValueError("skipped: expected at least one measured step")
    steps = [bool(s) for s in skipped[:m]]
    length = max(1, int(evidence.longest_run))
    cap = length / (length + 1)
    count = sum(steps)
    last = steps[m - max(1, m // 3):]
    p = min(cap, sum(last) / len(last))
    tail = run_steps - m
    count_lo, count_hi = _count_band(steps, evidence, cap)
    tail_lo, tail_est, tail_hi = _tail_band(p, len(last), evidence, cap)
    value = (count + tail * tail_est) / run_steps
    low = (count_lo + tail * tail_lo) / run_steps
    high = (count_hi + tail * tail_hi) / run_steps
    how = {"measured_steps": m, "measured_skipped": count, "count_interval": [count_lo, count_hi], "persistence": p,
           "ceiling": evidence.ceiling, "tail_steps": tail, "tail_share": [tail_lo, tail_est, tail_hi],
           "trapped": evidence.trapped}
    return ShareBand(value, min(low, value), max(high, value)), how
