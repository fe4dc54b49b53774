"""Small data sets bundled with scikit-learn (no download): a fixed, seeded split, standardized.

Four classification sets (``digits``, ``wine``, ``breast_cancer``, ``iris``)
and one regression (``diabetes``).  A classification split is stratified
(each class keeps its share in train and test); a regression split is one
seeded permutation.  Either depends only on the data set and the seed.
Features are standardized with the *training* set's mean and standard
deviation (features constant in the training set are only centred), then
stored as float32 on the requested backend; a regression target is
standardized the same way (training mean and standard deviation), so a test
MSE of 1.0 is the error of always predicting the training mean.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..backend import resolve_backend
from ..errors import ConfigError

__all__ = ["DATASETS", "REGRESSION_DATASETS", "Dataset", "load_dataset", "holdout"]

#: Data set name -> scikit-learn loader name (all ship with scikit-learn; nothing is downloaded).
DATASETS: dict[str, str] = {
    "digits": "load_digits",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "iris": "load_iris",
    "diabetes": "load_diabetes",
}

#: The data sets whose target is a real number (MSE loss); the others are classifications.
REGRESSION_DATASETS: frozenset[str] = frozenset({"diabetes"})


@dataclasses.dataclass(frozen=True, repr=False)
class Dataset:
    """A standardized train/test split.

    Attributes
    ----------
    name : str
        Key of :data:`DATASETS`.
    x_train, x_test : array (n, features) float32
        Standardized features on the backend's array namespace.
    y_train, y_test : array (n,)
        Class labels ``0 .. n_classes - 1`` (int64), or for a regression the
        standardized target (float32).
    n_classes : int
        Classes (0 for a regression).
    seed : int
        Seed of the split.
    """

    name: str
    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any
    n_classes: int
    seed: int

    @property
    def n_features(self) -> int:
        """Features per sample."""
        return int(self.x_train.shape[1])

    @property
    def is_regression(self) -> bool:
        """Whether the target is a real number (MSE loss, metric test MSE) rather than a class."""
        return self.n_classes == 0

    @property
    def n_outputs(self) -> int:
        """Width of the model's output layer: the classes, or 1 for a regression."""
        return 1 if self.is_regression else self.n_classes

    def __repr__(self) -> str:
        target = "regression" if self.is_regression else f"classes={self.n_classes}"
        return (
            f"Dataset(name={self.name!r}, train={self.x_train.shape[0]}, test={self.x_test.shape[0]}, "
            f"features={self.n_features}, {target}, seed={self.seed})"
        )


def _split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: per class, a seeded permutation; the first round(k * test_fraction) go to test."""
    rng = np.random.default_rng(seed)
    test, train = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(idx.size)]
        k = int(round(idx.size * test_fraction))
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _random_split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unstratified split (a regression): one seeded permutation; the first round(n * test_fraction) go to test."""
    order = np.random.default_rng(seed).permutation(n)
    k = int(round(n * test_fraction))
    return np.sort(order[k:]), np.sort(order[:k])


def _standardize(values: np.ndarray, train: np.ndarray) -> np.ndarray:
    """``values`` standardized with the mean and standard deviation of its ``train`` rows, as float32."""
    mean = values[train].mean(axis=0)
    std = values[train].std(axis=0)
    std = np.where(std == 0, 1.0, std)
    return ((values - mean) / std).astype(np.float32)


def load_dataset(name: str = "digits", seed: int = 0, test_fraction: float = 0.2, backend: Any = None) -> Dataset:
    """Load a bundled scikit-learn data set, split it (seeded; stratified for classes) and standardize it.

    Parameters
    ----------
    name : {"digits", "wine", "breast_cancer", "iris", "diabetes"}
    seed : int
        Seed of the split (the same seed gives the same split everywhere).
    test_fraction : float in (0, 1)
        Share held out for testing (of each class, for a classification).
    backend : None, a backend name or a backend object
        Where the arrays live (``backend.xp``).

    Returns
    -------
    Dataset

    Raises
    ------
    ConfigError
        Unknown data set name, or a test fraction outside (0, 1).
    ImportError
        scikit-learn is not installed (``pip install vsaopt[train]``).

    Examples
    --------
    >>> ds = load_dataset("digits", seed=0, backend="numpy")
    >>> ds
    Dataset(name='digits', train=1438, test=359, features=64, classes=10, seed=0)
    >>> str(ds.x_train.dtype), round(float(abs(ds.x_train.mean(axis=0)).max()), 4)
    ('float32', 0.0)
    >>> load_dataset("diabetes", backend="numpy")
    Dataset(name='diabetes', train=354, test=88, features=10, regression, seed=0)
    """
    if name not in DATASETS:
        raise ConfigError(f"dataset: expected one of {', '.join(DATASETS)}, got {name!r}")
    if not (0.0 < float(test_fraction) < 1.0):
        raise ConfigError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    be = resolve_backend(backend)
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, DATASETS[name])()
    x = np.asarray(bunch.data, dtype=np.float64)
    if name in REGRESSION_DATASETS:
        train, test = _random_split(x.shape[0], float(test_fraction), int(seed))
        y = _standardize(np.asarray(bunch.target, dtype=np.float64), train)
        n_classes = 0
    else:
        y = np.asarray(bunch.target, dtype=np.int64)
        train, test = _split(y, float(test_fraction), int(seed))
        n_classes = int(y.max()) + 1
    z = _standardize(x, train)
    xp = be.xp
    return Dataset(
        name=name,
        x_train=xp.asarray(z[train]),
        y_train=xp.asarray(y[train]),
        x_test=xp.asarray(z[test]),
        y_test=xp.asarray(y[test]),
        n_classes=n_classes,
        seed=int(seed),
    )


def holdout(data: Dataset, fraction: float = 0.2, seed: int = 0, backend: Any = None) -> Dataset:
    """A validation split of ``data``'s *training* rows: the returned set's test part is held out of its training part.

    Split as :func:`load_dataset` splits (stratified for classes, else one
    seeded permutation); the features stay as they are (standardized with the
    whole training split's statistics).  The test rows of ``data`` are not
    used, so choices made on this split (a learning rate) never see them.

    Parameters
    ----------
    data : Dataset
    fraction : float in (0, 1)
        Share of the training rows held out.
    seed : int
    backend : None, a backend name or a backend object
        Where ``data``'s arrays live.

    Returns
    -------
    Dataset
        Named like ``data``; ``x_test``/``y_test`` are the held-out rows.

    Examples
    --------
    >>> ds = load_dataset("iris", backend="numpy")
    >>> holdout(ds, 0.2, seed=0, backend="numpy")
    Dataset(name='iris', train=96, test=24, features=4, classes=3, seed=0)
    """
    if not (0.0 < float(fraction) < 1.0):
        raise ConfigError(f"fraction: expected a number in (0, 1), got {fraction!r}")
    be = resolve_backend(backend)
    y = be.to_host(data.y_train)
    split_seed = int(np.random.default_rng([int(seed), 3]).integers(2**31))  # not the test split's permutation
    if data.is_regression:
        train, test = _random_split(y.shape[0], float(fraction), split_seed)
    else:
        train, test = _split(y, float(fraction), split_seed)
    rows_train, rows_test = be.xp.asarray(train), be.xp.asarray(test)
    return Dataset(
        name=data.name,
        x_train=data.x_train[rows_train],
        y_train=data.y_train[rows_train],
        x_test=data.x_train[rows_test],
        y_test=data.y_train[rows_test],
        n_classes=data.n_classes,
        seed=int(seed),
    )
