"""Loss history: bounded record of (step, loss, phase) with float32 statistics and anomaly checks.

Arithmetic follows vsa-optim-rs 0.1.1 (float32, sums one value at a time in
the stated order) so that results agree with the crate; differences are
listed in spec/schedule.md ("Loss history").
"""

from __future__ import annotations

import dataclasses
import json
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from .._arrays import check_int, check_real
from ..checkpoint import Checkpointable, Fields
from ..errors import ConfigError, DTypeError
from ._scalar import F32, check_loss, sum_f32
from .configs import LossHistoryConfig
from .types import DeterministicPhase

__all__ = ["LossHistory", "LossMeasurement", "LossStatistics", "LossAnomaly", "Spike", "Divergence"]


@dataclasses.dataclass(frozen=True)
class LossMeasurement:
    """One recorded loss: its index among all records, float32 value (as a float) and phase."""

    step: int
    loss: float
    phase: DeterministicPhase

    def to_dict(self) -> dict:
        """JSON-ready dict (the phase by name)."""
        return {"step": self.step, "loss": self.loss, "phase": str(self.phase)}


@dataclasses.dataclass(frozen=True)
class LossStatistics:
    """Summary of a window of losses (float32 values as floats; population variance)."""

    count: int
    mean: float
    variance: float
    std_dev: float
    min: float
    max: float
    median: float

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Spike:
    """The latest loss is ``magnitude`` standard deviations above the window mean."""

    step: int
    magnitude: float


@dataclasses.dataclass(frozen=True)
class Divergence:
    """The last window's mean is ``rate`` times the mean of the window before it."""

    step: int
    rate: float


#: An anomaly reported by :meth:`LossHistory.detect_anomalies`.
LossAnomaly = Spike | Divergence


def _stats(values: list[np.float32]) -> LossStatistics:
    count = len(values)
    n = F32(count)
    mean = F32(sum_f32(values) / n)
    sq = []
    for v in values:
        d = F32(v - mean)
        sq.append(F32(d * d))
    variance = F32(sum_f32(sq) / n)
    std = F32(np.sqrt(variance))
    s = sorted(values)
    if count % 2 == 0:
        median = F32(F32(s[count // 2 - 1] + s[count // 2]) / F32(2.0))
    else:
        median = s[count // 2]
    return LossStatistics(count, float(mean), float(variance), float(std), float(s[0]), float(s[-1]), float(median))


def _window(value: Any, name: str, lo: int) -> int:
    try:
        return check_int(value, name, lo, 2**62)
    except DTypeError as exc:
        raise ConfigError(str(exc)) from None


class LossHistory(Checkpointable):
    """Bounded loss record with statistics, trend and anomaly detection.

    Parameters
    ----------
    config : LossHistoryConfig
        ``max_history`` bounds the measurements kept; thresholds of the checks.

    Examples
    --------
    >>> h = LossHistory(LossHistoryConfig(max_history=3))
    >>> for loss in (1.0, 0.8, 0.6, 0.4):
    ...     h.record(loss, DeterministicPhase.FULL)
    >>> [m.step for m in h.measurements()], h.current_loss()
    ([1, 2, 3], 0.4000000059604645)
    >>> round(h.compute_statistics().mean, 4)
    0.6
    """

    _kind = "LossHistory"
    _config_cls = LossHistoryConfig

    def __init__(self, config: LossHistoryConfig | None = None) -> None:
        if config is None:
            config = LossHistoryConfig()
        if not isinstance(config, LossHistoryConfig):
            raise ConfigError(f"config: expected a LossHistoryConfig, got {type(config).__name__}")
        self.config = config
        self._losses: deque[np.float32] = deque(maxlen=config.max_history)
        self._phases: deque[DeterministicPhase] = deque(maxlen=config.max_history)
        self._next_step = 0

    def __len__(self) -> int:
        return len(self._losses)

    def __repr__(self) -> str:
        return f"LossHistory(len={len(self)}, max_history={self.config.max_history})"

    # --- recording -------------------------------------------------------------

    def record(self, loss: float | np.floating, phase: DeterministicPhase) -> None:
        """Append a loss (rounded to float32, must be finite) recorded in ``phase``."""
        v = check_loss(loss)
        if not isinstance(phase, DeterministicPhase):
            raise DTypeError(f"phase: expected a DeterministicPhase, got {phase!r}")
        self._losses.append(v)
        self._phases.append(phase)
        self._next_step += 1

    def clear(self) -> None:
        """Drop every measurement and restart the step count at 0."""
        self._losses.clear()
        self._phases.clear()
        self._next_step = 0

    # --- access ----------------------------------------------------------------

    def current_loss(self) -> float | None:
        """The latest loss, or None when empty."""
        return float(self._losses[-1]) if self._losses else None

    def measurements(self) -> list[LossMeasurement]:
        """Every kept measurement, oldest first."""
        first = self._next_step - len(self._losses)
        return [LossMeasurement(first + i, float(v), p) for i, (v, p) in enumerate(zip(self._losses, self._phases))]

    def measurements_for_phase(self, phase: DeterministicPhase) -> list[LossMeasurement]:
        """The kept measurements recorded in ``phase``, oldest first."""
        if not isinstance(phase, DeterministicPhase):
            raise DTypeError(f"phase: expected a DeterministicPhase, got {phase!r}")
        return [m for m in self.measurements() if m.phase is phase]

    # --- statistics --------------------------------------------------------------

    def compute_statistics(self, window: int | None = None) -> LossStatistics | None:
        """Statistics of the last ``window`` losses (all when None); None when there are none."""
        if window is not None:
            window = _window(window, "window", 0)
        values = list(self._losses)
        if window is not None:
            values = values[max(0, len(values) - window) :]
        if not values:
            return None
        return _stats(values)

    def rolling_average(self, window: int | None = None) -> float | None:
        """Float32 mean of the last ``window`` losses (default ``config.rolling_window``), summed newest first."""
        w = self.config.rolling_window if window is None else _window(window, "window", 1)
        if len(self._losses) < w:
            return None
        newest_first = [self._losses[-1 - i] for i in range(w)]
        return float(F32(sum_f32(newest_first) / F32(w)))

    def rolling_variance(self, window: int | None = None) -> float | None:
        """Variance of the last ``window`` losses (default ``config.rolling_window``)."""
        w = self.config.rolling_window if window is None else _window(window, "window", 1)
        stats = self.compute_statistics(w)
        return None if stats is None else stats.variance

    def rolling_std_dev(self, window: int | None = None) -> float | None:
        """Standard deviation of the last ``window`` losses (default ``config.rolling_window``)."""
        w = self.config.rolling_window if window is None else _window(window, "window", 1)
        stats = self.compute_statistics(w)
        return None if stats is None else stats.std_dev

    def is_converging(self, window: int | None = None, threshold: float | None = None) -> bool:
        """Whether the newer half of the last ``window`` losses is lower than the older part by more than ``threshold``.

        ``half = window // 2``; ``late`` = float32 mean of the newest ``half`` and
        ``early`` = float32 mean of the older ``window - half`` losses (each summed
        newest first); converging when ``early > late`` and
        ``(early - late) / early > threshold``.  Defaults: ``config.convergence_window``
        and ``config.convergence_threshold``.
        """
        w = self.config.convergence_window if window is None else _window(window, "window", 2)
        if threshold is None:
            thr = F32(self.config.convergence_threshold)
        else:
            try:
                thr = F32(check_real(threshold, "threshold", -3.0e38, 3.0e38))
            except DTypeError as exc:
                raise ConfigError(str(exc)) from None
        if len(self._losses) < w:
            return False
        half = w // 2
        newest_first = [self._losses[-1 - i] for i in range(w)]
        late = F32(sum_f32(newest_first[:half]) / F32(half))
        early = F32(sum_f32(newest_first[half:]) / F32(w - half))
        return bool(early > late and F32(F32(early - late) / early) > thr)

    def detect_anomalies(self, window: int | None = None) -> list[Spike | Divergence]:
        """Spike and divergence checks over the last ``window`` losses (default ``config.rolling_window``).

        Needs ``window + 1`` losses.  Spike: ``(latest - mean) / std_dev`` of the last
        ``window`` losses exceeds ``spike_threshold`` (never when ``std_dev`` is 0).
        Divergence (needs ``2 * window`` losses): the mean of the last ``window``
        (summed newest first) exceeds ``divergence_threshold`` times the mean of the
        ``window`` before it (summed oldest first).
        """
        w = self.config.rolling_window if window is None else _window(window, "window", 1)
        found: list[Spike | Divergence] = []
        n = len(self._losses)
        if n < w + 1:
            return found
        stats = self.compute_statistics(w)
        assert stats is not None
        latest_step = self._next_step - 1
        latest = self._losses[-1]
        std = F32(stats.std_dev)
        if std > 0:
            z = F32(F32(latest - F32(stats.mean)) / std)
            if z > F32(self.config.spike_threshold):
                found.append(Spike(latest_step, float(z)))
        if n >= 2 * w:
            values = list(self._losses)
            early_vals = values[n - 2 * w : n - w]
            late_vals = [values[n - 1 - i] for i in range(w)]
            early = F32(sum_f32(early_vals) / F32(w))
            late = F32(sum_f32(late_vals) / F32(w))
            if late > F32(early * F32(self.config.divergence_threshold)):
                rate = F32(late / early) if early != 0 else F32(np.inf)
                found.append(Divergence(latest_step, float(rate)))
        return found

    def improvement_rate(self, window: int | None = None) -> float | None:
        """``(newest - oldest) / oldest`` over the last ``window`` losses (float32; negative = improving).

        None with fewer than ``window`` losses or when the oldest is 0.
        """
        w = self.config.rolling_window if window is None else _window(window, "window", 1)
        if len(self._losses) < w:
            return None
        first = self._losses[len(self._losses) - w]
        last = self._losses[-1]
        if first == 0:
            return None
        return float(F32(F32(last - first) / first))

    def phase_summary(self) -> list[tuple[DeterministicPhase, LossStatistics]]:
        """Statistics per phase (WARMUP, FULL, PREDICT, CORRECT order), phases without losses left out."""
        out = []
        for phase in DeterministicPhase:
            values = [v for v, p in zip(self._losses, self._phases) if p is phase]
            if values:
                out.append((phase, _stats(values)))
        return out

    def to_json(self) -> str:
        """The measurements as a JSON list of ``{"step", "loss", "phase"}`` (indented, like the crate)."""
        return json.dumps([m.to_dict() for m in self.measurements()], indent=2)

    # --- state ---------------------------------------------------------------------

    def _identity(self) -> dict:
        return {}

    @classmethod
    def _construct(cls, identity: dict, config: Any, backend: Any) -> LossHistory:
        return cls(config)

    def export_state(self) -> tuple[dict, dict]:
        """``(header, arrays)``: the step counter, the losses (float32) and their phase codes (int8)."""
        header = {"next_step": self._next_step}
        arrays = {
            "losses": np.array(list(self._losses), dtype=np.float32),
            "phases": np.array([p.value for p in self._phases], dtype=np.int8),
        }
        return header, arrays

    def import_state(self, f: Fields) -> Callable[[], None]:
        """Validate a state of :meth:`export_state`; the returned function installs it."""
        next_step = f.integer("next_step")
        losses = f.array("losses", np.float32, (-1,))
        phases = f.array("phases", np.int8, losses.shape)
        f.require(losses.shape[0] <= self.config.max_history, "more losses than max_history")
        f.require(losses.shape[0] <= next_step, "more losses than steps recorded")
        f.require(bool(((phases >= 0) & (phases < len(DeterministicPhase))).all()), "unknown phase code")

        def install() -> None:
            self._losses = deque((F32(v) for v in losses), maxlen=self.config.max_history)
            self._phases = deque((DeterministicPhase(int(p)) for p in phases), maxlen=self.config.max_history)
            self._next_step = next_step

        return install
