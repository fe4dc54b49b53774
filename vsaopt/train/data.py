"""Small classification data sets bundled with scikit-learn (no download): a fixed, seeded split, standardized.

The split is stratified (each class keeps its share in train and test) and
depends only on the data set and the seed.  Features are standardized with the
*training* set's mean and standard deviation (features constant in the training
set are only centred), then stored as float32 on the requested backend.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..backend import resolve_backend
from ..errors import ConfigError

__all__ = ["DATASETS", "Dataset", "load_dataset"]

#: Data set name -> scikit-learn loader name (all ship with scikit-learn; nothing is downloaded).
DATASETS: dict[str, str] = {
    "digits": "load_digits",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
}


@dataclasses.dataclass(frozen=True, repr=False)
class Dataset:
    """A standardized train/test split.

    Attributes
    ----------
    name : str
        Key of :data:`DATASETS`.
    x_train, x_test : array (n, features) float32
        Standardized features on the backend's array namespace.
    y_train, y_test : array (n,) int64
        Class labels ``0 .. n_classes - 1``.
    n_classes : int
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

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={self.x_train.shape[0]}, test={self.x_test.shape[0]}, "
            f"features={self.n_features}, classes={self.n_classes}, seed={self.seed})"
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


def load_dataset(name: str = "digits", seed: int = 0, test_fraction: float = 0.2, backend: Any = None) -> Dataset:
    """Load a bundled scikit-learn data set, split it (stratified, seeded) and standardize it.

    Parameters
    ----------
    name : {"digits", "wine", "breast_cancer"}
    seed : int
        Seed of the split (the same seed gives the same split everywhere).
    test_fraction : float in (0, 1)
        Share of each class held out for testing.
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
    """
    if name not in DATASETS:
        raise ConfigError(f"dataset: expected one of {', '.join(DATASETS)}, got {name!r}")
    if not (0.0 < float(test_fraction) < 1.0):
        raise ConfigError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    be = resolve_backend(backend)
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, DATASETS[name])()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    train, test = _split(y, float(test_fraction), int(seed))
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std[std == 0] = 1.0
    z = ((x - mean) / std).astype(np.float32)
    xp = be.xp
    return Dataset(
        name=name,
        x_train=xp.asarray(z[train]),
        y_train=xp.asarray(y[train]),
        x_test=xp.asarray(z[test]),
        y_test=xp.asarray(y[test]),
        n_classes=int(y.max()) + 1,
        seed=int(seed),
    )
