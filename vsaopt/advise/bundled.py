"""Advice for the training harness's MLP on a bundled data set (what ``vsaopt advise`` runs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import resolve_backend
from ..errors import ConfigError
from .measure import advise
from .result import Advice

__all__ = ["advise_bundled"]


def advise_bundled(dataset: str = "digits", batch_size: int | None = 256, hidden: tuple[int, ...] = (256, 256), *,
                   lr: float = 0.02, momentum: float = 0.9, seed: int = 0, backend: Any = None,
                   matmul: str = "ordered", threads: int = 1, on_progress: Callable[[int, int], None] | None = None,
                   **options: Any) -> Advice:
    """:func:`~vsaopt.advise.advise` for :class:`~vsaopt.train.MLP` on a bundled data set, trained with SGD momentum.

    The model, its initial weights, the split and the optimizer are those of
    ``vsaopt train`` with the same seed; the measurement trains its own copy.

    Parameters
    ----------
    dataset : str
        A key of :data:`vsaopt.train.DATASETS`.
    batch_size : int or None
        None: full batch (the training split).
    hidden : tuple of int
        Hidden layer widths.
    lr, momentum : float
        The SGD step of the measurement's training steps (as in the run advised on).
    seed : int
        Seed of the split, the weights and every draw.
    backend : None, str or Backend
    matmul : {"ordered", "blas"}
        As in :class:`~vsaopt.train.MLP`.
    threads : int
        BLAS threads during the measurement (0: leave as they are); one by
        default, as in :class:`~vsaopt.train.TrainSettings` (these matrices are
        small, and a second thread on a busy machine slows every call).
    on_progress : callable(done, total), optional
    **options
        Passed to :func:`~vsaopt.advise.advise` (``rounds``, ``measure_steps``, ``run_steps``, ...).

    Returns
    -------
    Advice

    Examples
    --------
    >>> advice = advise_bundled("iris", 16, (8,), lr=0.01, rounds=2, measure_steps=20, run_steps=50, backend="numpy")
    >>> advice.rows[-1].batch_size, advice.measurement["training_steps"]
    (120, 20)
    """
    from ..train import MLP, SGDMomentum, load_dataset

    be = resolve_backend(backend)
    data = load_dataset(dataset, seed=seed, backend=be)
    n = int(data.x_train.shape[0])
    batch = n if batch_size is None else batch_size
    if not isinstance(hidden, tuple) or not hidden:
        raise ConfigError(f"hidden: expected a non-empty tuple of positive ints, got {hidden!r}")
    model = MLP([data.n_features, *hidden, data.n_outputs], seed=seed, backend=be,
                loss="mse" if data.is_regression else "cross_entropy", matmul=matmul)
    opt = SGDMomentum(model.params, lr=lr, momentum=momentum)
    xp = be.xp

    def loss_and_gradients(idx: np.ndarray) -> tuple[float, dict]:
        rows = xp.asarray(idx)
        return model.loss_and_gradients(data.x_train[rows], data.y_train[rows])

    def measure() -> Advice:
        return advise(loss_and_gradients, model.param_shapes(), n, batch, update=opt.step, seed=seed,
                      on_progress=on_progress, **options)

    if not threads:
        return measure()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        return measure()
