"""Train a small model on a bundled data set with and without phase training, and time it.

The engine behind ``vsaopt train``: :func:`load_dataset` (scikit-learn's
bundled data sets, a fixed seeded split), :class:`MLP` (hand-written forward
and backward passes on the backend's array namespace), :class:`SGDMomentum`,
and :func:`run_training`, which trains the modes ``baseline``, ``phase``,
``deterministic`` and ``skip`` from the same start and records every step
(:mod:`vsaopt.train.harness`, the loop that ``vsaopt train --framework torch``
also runs on; :mod:`vsaopt.train.results`, the records).
Needs scikit-learn (``pip install vsaopt[train]``).
"""

from .data import DATASETS, Dataset, load_dataset
from .model import MLP
from .optim import SGDMomentum
from .results import TARGET_MARGIN, ModeResult, RunResult, TrainSettings
from .run import CONTROL_MODES, METHOD_MODES, MODES, QUICK_MODES, batch_schedule, run_training

__all__ = [
    "DATASETS",
    "Dataset",
    "load_dataset",
    "MLP",
    "SGDMomentum",
    "MODES",
    "TARGET_MARGIN",
    "TrainSettings",
    "ModeResult",
    "RunResult",
    "run_training",
    "batch_schedule",
]
