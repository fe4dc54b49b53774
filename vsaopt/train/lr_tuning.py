"""Tune the baseline's learning rate on a validation split of the training data (never the test set).

Per setting, plain backprop (SGD with momentum, the run's batch size, steps
and data order) trains once per learning rate of a small log-spaced grid on
80 % of the training split; the rate with the best *validation* metric wins
(accuracy: highest, MSE: lowest; ties go to the lower validation loss, then to
the smaller rate).  A run whose loss is not finite has diverged and scores worst.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend import resolve_backend
from ..errors import ConfigError
from .data import Dataset, holdout
from .model import MLP
from .optim import SGDMomentum
from .run import batch_schedule

__all__ = ["VALIDATION_FRACTION", "LrScore", "pick_learning_rate", "validation_score", "tune_learning_rate"]

#: Share of the training split held out to judge learning rates.
VALIDATION_FRACTION = 0.2


@dataclasses.dataclass(frozen=True)
class LrScore:
    """The validation result of one learning rate.

    Attributes
    ----------
    lr : float
    metric : float or None
        Validation accuracy, or MSE for a regression (None: the run diverged).
    loss : float or None
        Validation loss (None: the run diverged).
    """

    lr: float
    metric: float | None
    loss: float | None

    @property
    def diverged(self) -> bool:
        """Whether the run's loss stopped being finite."""
        return self.metric is None or self.loss is None

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LrScore:
        """Inverse of :meth:`to_dict`."""
        return cls(float(data["lr"]), *(None if data[k] is None else float(data[k]) for k in ("metric", "loss")))


def pick_learning_rate(scores: Sequence[LrScore], higher_is_better: bool) -> float:
    """The learning rate with the best validation metric; ties: lower validation loss, then the smaller rate.

    Parameters
    ----------
    scores : sequence of LrScore
    higher_is_better : bool
        True for accuracy, False for MSE.

    Returns
    -------
    float

    Raises
    ------
    ConfigError
        No scores.

    Examples
    --------
    >>> pick_learning_rate([LrScore(0.01, 0.90, 0.3), LrScore(0.1, 0.95, 0.2), LrScore(1.0, None, None)], True)
    0.1
    >>> pick_learning_rate([LrScore(0.01, 0.40, 0.40), LrScore(0.1, 0.55, 0.55)], higher_is_better=False)
    0.01
    """
    if not scores:
        raise ConfigError("scores: expected at least one learning rate")

    def key(s: LrScore) -> tuple[float, float, float]:
        if s.metric is None or s.loss is None:
            return math.inf, math.inf, s.lr
        return (-s.metric if higher_is_better else s.metric), s.loss, s.lr

    return min(scores, key=key).lr


def validation_score(data: Dataset, hidden: Sequence[int], lr: float, *, steps: int, batch_size: int | None,
                     seed: int, momentum: float = 0.9, backend: Any = None, matmul: str = "ordered") -> LrScore:
    """Train plain backprop on ``data``'s training rows and score it on its test rows (pass a :func:`holdout` split).

    Parameters
    ----------
    data : Dataset
        A validation split (its test part is the held-out validation rows).
    hidden : sequence of int
    lr : float
    steps : int
    batch_size : int or None
        None: full batch (every training row).
    seed : int
        Seed of the initial weights and the batch order.
    momentum : float
    backend : None, a backend name or a backend object
    matmul : {"ordered", "blas"}
        The model's matrix products (:class:`~vsaopt.train.model.MLP`).

    Returns
    -------
    LrScore

    Examples
    --------
    >>> from vsaopt.train.data import load_dataset
    >>> val = holdout(load_dataset("iris", backend="numpy"), backend="numpy")
    >>> s = validation_score(val, (8,), 0.1, steps=40, batch_size=16, seed=0, backend="numpy")
    >>> s.lr, 0.5 < s.metric <= 1.0
    (0.1, True)
    """
    be = resolve_backend(backend)
    n = int(data.x_train.shape[0])
    model = MLP([data.n_features, *hidden, data.n_outputs], seed=seed, backend=be,
                loss="mse" if data.is_regression else "cross_entropy", matmul=matmul)
    opt = SGDMomentum(model.params, lr=lr, momentum=momentum)
    rows = be.xp.asarray(batch_schedule(n, n if batch_size is None else min(batch_size, n), steps, seed))
    with np.errstate(all="ignore"):  # a diverging rate overflows; it scores NaN
        for idx in rows:
            loss, grads = model.loss_and_gradients(data.x_train[idx], data.y_train[idx])
            if not math.isfinite(loss):
                return LrScore(float(lr), None, None)
            opt.step(grads)
        val_loss = model.loss(data.x_test, data.y_test)
        metric = val_loss if data.is_regression else model.accuracy(data.x_test, data.y_test)
    if not (math.isfinite(val_loss) and math.isfinite(metric)):
        return LrScore(float(lr), None, None)
    return LrScore(float(lr), float(metric), float(val_loss))


def tune_learning_rate(data: Dataset, hidden: Sequence[int], grid: Sequence[float], *, steps: int,
                       batch_size: int | None, seed: int, momentum: float = 0.9,
                       backend: Any = None, matmul: str = "ordered") -> tuple[float, list[LrScore]]:
    """Score every rate of ``grid`` on a validation split of ``data``'s training rows and pick the best.

    Parameters
    ----------
    data : Dataset
        The run's data set (its test rows are not used).
    hidden : sequence of int
    grid : sequence of float
    steps : int
    batch_size : int or None
        None: full batch (every row of the validation split's training part).
    seed : int
        Seed of the validation split, the initial weights and the batch order.
    momentum : float
    backend : None, a backend name or a backend object
    matmul : {"ordered", "blas"}
        The model's matrix products (:class:`~vsaopt.train.model.MLP`).

    Returns
    -------
    lr : float
        :func:`pick_learning_rate` of the scores.
    scores : list of LrScore
        In the order of ``grid``.

    Examples
    --------
    >>> from vsaopt.train.data import load_dataset
    >>> lr, scores = tune_learning_rate(load_dataset("iris", backend="numpy"), (8,), [1e-5, 0.1], steps=40,
    ...                                 batch_size=16, seed=0, backend="numpy")
    >>> lr, [s.lr for s in scores]
    (0.1, [1e-05, 0.1])
    """
    be = resolve_backend(backend)
    val = holdout(data, VALIDATION_FRACTION, seed=seed, backend=be)
    scores = [validation_score(val, hidden, float(lr), steps=steps, batch_size=batch_size, seed=seed,
                               momentum=momentum, backend=be, matmul=matmul) for lr in grid]
    return pick_learning_rate(scores, higher_is_better=not data.is_regression), scores
