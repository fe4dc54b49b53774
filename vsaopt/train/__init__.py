"""Train a small model on a bundled data set with and without phase training, and time it.

The engine behind ``vsaopt train``: :func:`load_dataset` (scikit-learn's
bundled data sets, four classifications and a regression, a fixed seeded
split), :class:`MLP` (hand-written forward and backward passes on the
backend's array namespace, softmax cross-entropy or MSE head),
:class:`SGDMomentum`, and :func:`run_training`, which trains the modes
``baseline``, ``phase``, ``deterministic`` and the controls ``skip``,
``reuse`` and ``small_batch`` (:mod:`vsaopt.train.controls`, matched to
``phase``'s realized schedule) from the same start and records every step
(:mod:`vsaopt.train.harness`, the loop that ``vsaopt train --framework torch``
also runs on; :mod:`vsaopt.train.results`, the records, the pass-unit cost
and the targets).  :func:`vsaopt.train.suite.run_suite` runs the evaluation
matrix (:mod:`vsaopt.train.suite_matrix`) against baselines whose learning
rate is tuned on a validation split (:mod:`vsaopt.train.lr_tuning`).
Needs scikit-learn (``pip install vsaopt[train]``).
"""

from .data import DATASETS, Dataset, load_dataset
from .model import MLP
from .optim import SGDMomentum
from .results import MSE_TARGET_FACTOR, TARGET_MARGIN, ModeResult, RunResult, TrainSettings
from .run import CONTROL_MODES, METHOD_MODES, MODES, QUICK_MODES, batch_schedule, run_training

__all__ = [
    "DATASETS",
    "Dataset",
    "load_dataset",
    "MLP",
    "SGDMomentum",
    "MODES",
    "METHOD_MODES",
    "CONTROL_MODES",
    "QUICK_MODES",
    "TARGET_MARGIN",
    "MSE_TARGET_FACTOR",
    "TrainSettings",
    "ModeResult",
    "RunResult",
    "run_training",
    "batch_schedule",
]
