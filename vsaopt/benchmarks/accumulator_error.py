"""Error of the ternary accumulator's mean against the number of micro-batches.

:func:`accumulator_error` feeds the same micro-batch gradients to a
:class:`~vsaopt.accumulator.TernaryGradientAccumulator` (stochastic mode) with
8-bit and 4-bit counts and reads the mean after 1, 2, 4, ... micro-batches.
Each reading is set against the exact float64 mean of the gradients fed, as
the relative L2 error ``||mean - exact|| / ||exact||``.  Beside it:

- ``"ideal"``: the same stochastic ternary rounding (the same running
  power-of-two scale) with unbounded integer counts, computed in numpy: the
  error of the rounding alone, with nothing lost to the count width;
- ``"worst_case"`` (optional): the rescaling rule of spec versions up to 6,
  which halved the counts whenever a worst-case bound growing by 1 per step
  would pass the count maximum, whatever the real counts were.

The gradients are ``"constant"`` (every element 1.0, every step) or
``"gaussian"`` (``1 + N(0, 1)`` per element and step: a nonzero mean under
noise).  The CLI formats and plots the rows; nothing here prints.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .._arrays import check_int, check_seed
from ..accumulator import COUNT_MAX, TernaryGradientAccumulator
from ..backend import resolve_backend, to_host
from ..config import TernaryConfig
from ..errors import ConfigError, NonFiniteError

__all__ = [
    "GRADIENT_KINDS",
    "RULES",
    "DEFAULT_MICRO_BATCHES",
    "MAX_MICRO_BATCHES",
    "MAX_ELEMENTS",
    "AccumulatorErrorRow",
    "micro_batch_gradients",
    "accumulator_error",
]

#: Micro-batch gradient kinds.
GRADIENT_KINDS = ("constant", "gaussian")
#: Rescaling rules measured: the accumulator's, the pre-version-7 worst case, and unbounded counts.
RULES = ("measured", "worst_case", "ideal")
#: Numbers of micro-batches at which the mean is read: 1, 2, 4, ..., 4096.
DEFAULT_MICRO_BATCHES = tuple(2**k for k in range(13))
#: Largest number of micro-batches one run reads at (each is a real accumulate call).
MAX_MICRO_BATCHES = 2**20
#: Largest gradient length measured.
MAX_ELEMENTS = 2**24
#: Parameter name of the measured tensor.
_NAME = "g"


@dataclass(frozen=True)
class AccumulatorErrorRow:
    """The relative error of one accumulated mean.

    Attributes
    ----------
    gradients : str
        One of :data:`GRADIENT_KINDS`.
    rule : str
        One of :data:`RULES`.
    count_bits : int or None
        Count width (None for ``"ideal"``: unbounded).
    micro_batches : int
        Micro-batches accumulated before the mean was read.
    relative_error : float
        ``||mean - exact|| / ||exact||`` over the tensor's elements.
    exponent : int or None
        The tensor's scale exponent ``E`` when the mean was read (None for ``"ideal"``).
    raised : str or None
        Name of the error an earlier :meth:`accumulate` raised (the run stopped
        there; ``relative_error`` is NaN), else None.
    """

    gradients: str
    rule: str
    count_bits: int | None
    micro_batches: int
    relative_error: float
    exponent: int | None
    raised: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (JSON-ready)."""
        return asdict(self)


def micro_batch_gradients(kind: str, elements: int, seed: int = 0) -> Iterator[np.ndarray]:
    """An endless sequence of float32 micro-batch gradients of ``elements`` values.

    Parameters
    ----------
    kind : {"constant", "gaussian"}
        ``"constant"``: every value 1.0.  ``"gaussian"``: ``1 + N(0, 1)``, drawn
        from numpy's PCG64 keyed by ``seed``.
    elements : int
        Values per gradient.
    seed : int
        Seed of the Gaussian draws.

    Examples
    --------
    >>> g = micro_batch_gradients("constant", 3)
    >>> next(g).tolist(), next(g).dtype
    ([1.0, 1.0, 1.0], dtype('float32'))
    """
    if kind not in GRADIENT_KINDS:
        raise ConfigError(f"gradients: expected one of {', '.join(GRADIENT_KINDS)}, got {kind!r}")
    elements = check_int(elements, "elements", 0, MAX_ELEMENTS)
    rng = np.random.Generator(np.random.PCG64(check_seed(seed)))
    while True:
        if kind == "constant":
            yield np.ones(elements, np.float32)
        else:
            yield (1.0 + rng.standard_normal(elements)).astype(np.float32)


def _relative_error(mean: np.ndarray, exact: np.ndarray) -> float:
    return float(np.linalg.norm(mean.astype(np.float64) - exact) / np.linalg.norm(exact))


def _ceil_exponent(m: float) -> int:
    """Smallest ``e`` with ``2**e >= m`` (``m > 0``)."""
    mant, e = np.frexp(m)
    return int(e) - 1 if mant == 0.5 else int(e)


class _WorstCaseAccumulator(TernaryGradientAccumulator):
    """The accumulator with the rescaling rule of spec version 6: the worst-case bound is never measured."""

    def _measured_bound(self, counts: Any, bound: int) -> int:
        return bound


def _accumulator_run(cls: type, kind: str, count_bits: int, elements: int, checkpoints: Sequence[int],
                     seed: int, backend: Any) -> list[tuple[int, float, int | None, str | None]]:
    """``(micro-batches, relative error, exponent, error raised)`` at each checkpoint; a run that raises stops."""
    acc = cls([(_NAME, (elements,))], TernaryConfig(seed=seed), backend=backend, count_bits=count_bits)
    total = np.zeros(elements, np.float64)
    grads = micro_batch_gradients(kind, elements, seed)
    out: list[tuple[int, float, int | None, str | None]] = []
    for k in range(1, max(checkpoints) + 1):
        g = next(grads)
        total += g
        try:
            acc.accumulate({_NAME: acc.backend.xp.asarray(g)})
        except NonFiniteError as exc:
            return out + [(c, float("nan"), None, type(exc).__name__) for c in checkpoints if c >= k]
        if k in checkpoints:
            mean = to_host(acc.get_accumulated()[_NAME])
            exp = int(acc.state_dict()["arrays"]["exp"][0])
            out.append((k, _relative_error(mean, total / k), exp, None))
    return out


def _ideal_run(kind: str, elements: int, checkpoints: Sequence[int], seed: int) -> list[tuple[int, float]]:
    """Stochastic ternary rounding at the running power-of-two scale, summed exactly (no count width)."""
    rng = np.random.Generator(np.random.PCG64(seed + 1))
    grads = micro_batch_gradients(kind, elements, seed)
    total = np.zeros(elements, np.float64)
    represented = np.zeros(elements, np.float64)
    exp = None
    out = []
    for k in range(1, max(checkpoints) + 1):
        g = next(grads).astype(np.float64)
        total += g
        eg = _ceil_exponent(float(np.abs(g).max()))
        exp = eg if exp is None else max(exp, eg)
        scale = 2.0**exp
        keep = rng.random(elements) < np.abs(g) / scale
        represented += scale * np.sign(g) * keep
        if k in checkpoints:
            out.append((k, _relative_error(represented / k, total / k)))
    return out


def _names(values: Any, name: str, allowed: Sequence[Any]) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ConfigError(f"{name}: expected a sequence of {', '.join(map(str, allowed))}, got {values!r}")
    for v in values:
        if isinstance(v, bool) or v not in allowed:
            raise ConfigError(f"{name}: expected values from {', '.join(map(str, allowed))}, got {v!r}")
    return list(values)


def _checked_arguments(micro_batches: Any, elements: Any, count_bits: Any, gradients: Any, rules: Any,
                       seed: Any) -> tuple[list[int], int, int]:
    """Every argument of :func:`accumulator_error` checked before anything runs."""
    if isinstance(micro_batches, (str, bytes)) or not isinstance(micro_batches, Sequence) or not micro_batches:
        raise ConfigError(f"micro_batches: expected a non-empty sequence of integers >= 1, got {micro_batches!r}")
    checkpoints = sorted({check_int(k, "micro_batches", 1, MAX_MICRO_BATCHES) for k in micro_batches})
    _names(count_bits, "count_bits", tuple(COUNT_MAX))
    _names(gradients, "gradients", GRADIENT_KINDS)
    _names(rules, "rules", RULES)
    return checkpoints, check_int(elements, "elements", 1, MAX_ELEMENTS), check_seed(seed)


def accumulator_error(
    micro_batches: Sequence[int] = DEFAULT_MICRO_BATCHES,
    *,
    elements: int = 1024,
    count_bits: Sequence[int] = (8, 4),
    gradients: Sequence[str] = GRADIENT_KINDS,
    rules: Sequence[str] = ("measured", "ideal"),
    seed: int = 0,
    backend: Any = "numpy",
) -> list[AccumulatorErrorRow]:
    """Relative error of the accumulated mean after each of ``micro_batches`` micro-batches.

    Parameters
    ----------
    micro_batches : sequence of int in [1, MAX_MICRO_BATCHES]
        When to read the mean (one run per width and kind reads at each).
    elements : int in [1, MAX_ELEMENTS]
        Values per gradient.
    count_bits : sequence of {8, 4}
        Count widths measured.
    gradients : sequence of str
        Gradient kinds (:data:`GRADIENT_KINDS`).
    rules : sequence of str
        Which of :data:`RULES` to measure.
    seed : int
        Accumulator seed and Gaussian seed.
    backend : backend, name or None
        Where the accumulators run.

    Returns
    -------
    list of AccumulatorErrorRow
        Ordered by kind, rule, width, then micro-batches.

    Raises
    ------
    ConfigError, DTypeError
        An argument out of range or of the wrong type (checked before anything runs).

    Examples
    --------
    >>> rows = accumulator_error((64,), elements=64, count_bits=(4,), gradients=("constant",),
    ...                          rules=("measured", "worst_case"))
    >>> [(r.rule, r.micro_batches, r.exponent, r.relative_error < 1.0) for r in rows]
    [('measured', 64, 5, True), ('worst_case', 64, 19, False)]
    """
    checkpoints, elements, seed = _checked_arguments(micro_batches, elements, count_bits, gradients, rules, seed)
    be = resolve_backend(backend)
    classes = {"measured": TernaryGradientAccumulator, "worst_case": _WorstCaseAccumulator}
    rows = []
    for kind in gradients:
        for rule in rules:
            if rule == "ideal":
                rows += [AccumulatorErrorRow(kind, rule, None, k, err, None)
                         for k, err in _ideal_run(kind, int(elements), checkpoints, seed)]
                continue
            for bits in count_bits:
                run = _accumulator_run(classes[rule], kind, int(bits), int(elements), checkpoints, seed, be)
                rows += [AccumulatorErrorRow(kind, rule, int(bits), k, err, exp, raised) for k, err, exp, raised in run]
    return rows
