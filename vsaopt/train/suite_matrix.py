"""The evaluation matrix of ``vsaopt train --suite``: one table of settings.

Each :class:`SuiteSetting` is a data set, a batch size (``None``: full batch,
the whole training split), the hidden widths (one or two layers) and the
training steps.  :data:`SUITE_MATRIX` covers the bundled data sets (a
regression among them), batch sizes from 16 to full batch and both depths;
:data:`QUICK_MATRIX` is a smoke test of the machinery, not an evaluation.
"""

from __future__ import annotations

import dataclasses

from ..errors import ConfigError
from .data import DATASETS

__all__ = ["SuiteSetting", "SUITE_MATRIX", "QUICK_MATRIX", "LR_GRID", "QUICK_LR_GRID"]

#: Baseline learning rates tried per setting: 10**-2.5 .. 10**-0.5, half a decade apart (0.0032 .. 0.32).
LR_GRID: tuple[float, ...] = tuple(10.0 ** (k / 2) for k in range(-5, 0))
#: The learning rates of the smoke matrix.
QUICK_LR_GRID: tuple[float, ...] = (0.01, 0.1)


@dataclasses.dataclass(frozen=True)
class SuiteSetting:
    """One setting of the matrix.

    Attributes
    ----------
    dataset : str
        A key of :data:`vsaopt.train.data.DATASETS`.
    batch_size : int or None
        Samples per step; None: full batch (the whole training split).
    hidden : tuple of int
        Hidden layer widths (the depth is their number).
    steps : int
        Training steps per mode (before the suite's step scale).

    Examples
    --------
    >>> SuiteSetting("iris", None, (64, 64), 300).label
    'iris full h64x2'
    >>> SuiteSetting.from_dict(SuiteSetting("wine", 16, (8,), 20).to_dict())
    SuiteSetting(dataset='wine', batch_size=16, hidden=(8,), steps=20)
    """

    dataset: str
    batch_size: int | None
    hidden: tuple[int, ...]
    steps: int

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ConfigError(f"dataset: expected one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.batch_size is not None and (isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int)
                                            or self.batch_size < 1):
            raise ConfigError(f"batch_size: expected a positive int or None (full batch), got {self.batch_size!r}")
        if not isinstance(self.hidden, tuple) or not self.hidden or any(
                isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ConfigError(f"hidden: expected a non-empty tuple of positive ints, got {self.hidden!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ConfigError(f"steps: expected an integer >= 1, got {self.steps!r}")

    @property
    def depth(self) -> int:
        """Hidden layers."""
        return len(self.hidden)

    @property
    def label(self) -> str:
        """Short name: data set, batch (``full``) and widths."""
        batch = "full" if self.batch_size is None else f"b{self.batch_size}"
        widths = f"h{self.hidden[0]}x{self.depth}" if len(set(self.hidden)) == 1 else "h" + "-".join(map(str, self.hidden))
        return f"{self.dataset} {batch} {widths}"

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"dataset": self.dataset, "batch_size": self.batch_size, "hidden": list(self.hidden), "steps": self.steps}

    @classmethod
    def from_dict(cls, data: dict) -> SuiteSetting:
        """Inverse of :meth:`to_dict`."""
        return cls(data["dataset"], data["batch_size"], tuple(data["hidden"]), data["steps"])


_H1, _H2 = (64,), (64, 64)

#: The evaluation matrix: 5 data sets (diabetes a regression), batches 16 .. full, 1 and 2 hidden layers.
SUITE_MATRIX: tuple[SuiteSetting, ...] = (
    SuiteSetting("digits", 16, _H1, 300),
    SuiteSetting("digits", 128, _H2, 300),
    SuiteSetting("digits", None, _H1, 300),
    SuiteSetting("digits", None, _H2, 300),
    SuiteSetting("wine", 16, _H1, 300),
    SuiteSetting("wine", None, _H2, 300),
    SuiteSetting("breast_cancer", 32, _H1, 300),
    SuiteSetting("breast_cancer", 128, _H2, 300),
    SuiteSetting("breast_cancer", None, _H1, 300),
    SuiteSetting("iris", 16, _H2, 300),
    SuiteSetting("iris", None, _H1, 300),
    SuiteSetting("diabetes", 16, _H1, 300),
    SuiteSetting("diabetes", 64, _H2, 300),
    SuiteSetting("diabetes", None, _H1, 300),
)

#: A smoke matrix for tests: two tiny settings (a classification at batch 16, the regression at full batch).
QUICK_MATRIX: tuple[SuiteSetting, ...] = (
    SuiteSetting("wine", 16, (8,), 24),
    SuiteSetting("diabetes", None, (8, 8), 24),
)
