"""Host scalar arithmetic of phase training, in the exact order of spec/schedule.md.

Losses and the statistics derived from them are float32, summed one value at a
time from +0.0 in a stated order (as the crate's ``iter().sum::<f32>()``).
Decay powers are float64, by binary exponentiation.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import DTypeError, NonFiniteError

F32 = np.float32


def f32(x: Any) -> np.float32:
    """``x`` rounded to float32."""
    return np.float32(x)


#: Magnitudes from which float32 rounding gives Inf: the midpoint between the largest float32 and 2**128.
F32_OVERFLOW = 2.0**128 - 2.0**103
#: The largest finite float32.
F32_MAX = float(np.finfo(np.float32).max)


def check_loss(loss: Any, name: str = "loss") -> np.float32:
    """A loss as a finite float32 (any real number whose float32 rounding is finite)."""
    if isinstance(loss, float) and abs(loss) < F32_OVERFLOW:  # Python and numpy float64 (NaN fails the comparison)
        return F32(loss)
    if type(loss) is np.float32 and abs(loss) <= F32_MAX:  # already a finite float32 (a trainer passing one on)
        return loss
    if isinstance(loss, bool) or not isinstance(loss, (numbers.Real, np.floating, np.integer)):
        if hasattr(loss, "shape") and tuple(getattr(loss, "shape")) == () and hasattr(loss, "item"):
            return check_loss(loss.item(), name)
        raise DTypeError(f"{name}: expected a real number, got {type(loss).__name__}")
    with np.errstate(over="ignore", invalid="ignore"):
        v = np.float32(loss)
    if not np.isfinite(v):
        raise NonFiniteError(f"{name}: expected a finite float32 value, got {loss!r}")
    return v


def sum_f32(values: Iterable[Any]) -> np.float32:
    """Sequential float32 sum from +0.0, in iteration order."""
    acc = F32(0.0)
    for v in values:
        acc = F32(acc + F32(v))
    return acc


def powi(base: float, k: int) -> float:
    """``base ** k`` in float64 by right-to-left binary exponentiation (``k >= 0``).

    ``r = 1; b = base; while k: if k odd: r *= b; b *= b; k >>= 1``, each product rounded.
    """
    r, b = 1.0, float(base)
    while k:
        if k & 1:
            r = r * b
        k >>= 1
        if k:
            b = b * b
    return r


def adaptive_trend(recent: list[np.float32], loss_threshold: float) -> int:
    """The adaptive rule's verdict over the recent-loss window: +1 rising, -1 falling, 0 neither.

    Needs at least 20 losses (else 0).  ``early`` / ``late``: float32 sums of the
    oldest / newest 10 (oldest first) divided by 10; rising when
    ``late > early * (1 + loss_threshold)``, falling when ``late < early * 0.95``
    (all float32).
    """
    if len(recent) < 20:
        return 0
    ten = F32(10.0)
    early = F32(sum_f32(recent[:10]) / ten)
    late = F32(sum_f32(recent[-10:]) / ten)
    up = F32(F32(1.0) + F32(loss_threshold))
    if late > F32(early * up):
        return 1
    if late < F32(early * F32(0.95)):
        return -1
    return 0
