"""Dormant measurement: which real steps a gated trainer records while its gate stays closed (spec/schedule.md, section 11).

Measuring every real step buys nothing while the gate's budget stays 0.  After
``dormant_after`` measurements in a row with budget 0, the trainer leaves a
run of real steps unrecorded (``dormant_after`` long, then twice as long after
every sample that still gives budget 0, at most ``dormant_max_gap``), then
records a *sample*: ``primes`` consecutive real steps that refill the history
the prediction reads, and one more that is measured, which restarts the
telemetry's ``rho`` (the steps before it went unmeasured).  A measurement
that opens the gate, or whose prediction cosine alone would, ends the
dormancy: every real step is measured again, and the gate's average recovers
as it would without dormancy.
"""

from __future__ import annotations

from collections.abc import Callable

from ..checkpoint import Fields
from .configs import GateConfig

__all__ = ["DormantSampler"]


class DormantSampler:
    """The dormancy state: closed measurements in a row, the current gap, the steps left unrecorded and the primes left.

    Parameters
    ----------
    config : GateConfig
        ``dormant_after`` (0: never dormant) and ``dormant_max_gap``.
    primes : int >= 1
        Records a prediction reads (its predictor's window): the sample's unmeasured records.

    Examples
    --------
    >>> s = DormantSampler(GateConfig(enabled=True, dormant_after=2, dormant_max_gap=3), primes=1)
    >>> s.after_measurement(False); s.after_measurement(False)
    >>> [s.records] + [s.skipped() or s.records for _ in range(2)], s.priming
    ([False, False, True], True)
    >>> s.primed(); s.priming, s.records
    (False, True)
    >>> s.after_measurement(False); s.gap              # 2 * 2, at most 3
    3
    >>> s.after_measurement(True); s.gap, s.records    # awake
    (0, True)
    """

    def __init__(self, config: GateConfig, primes: int) -> None:
        self.after = int(config.dormant_after) if config.enabled else 0
        self.max_gap = int(config.dormant_max_gap)
        self.primes = primes
        self.reset()

    def reset(self) -> None:
        """Awake, with no closed measurement counted."""
        self.zeros = 0  # measurements in a row with budget 0 (at most ``after``)
        self.gap = 0  # the last run of unrecorded steps (0: awake)
        self.left = 0  # unrecorded real steps left before the next sample
        self.prime = 0  # unmeasured records left in the current sample

    @property
    def records(self) -> bool:
        """Whether the next real step records its gradients."""
        return self.left == 0

    @property
    def priming(self) -> bool:
        """Whether the next record only refills the history (it is not measured)."""
        return self.left == 0 and self.prime > 0

    def skipped(self) -> None:
        """An unrecorded real step ended."""
        self.left -= 1

    def primed(self) -> None:
        """A priming record was taken."""
        self.prime -= 1

    def after_measurement(self, wake: bool) -> None:
        """Update after a measurement of a prediction; ``wake``: its budget, or the one its cosine alone would give, is > 0."""
        if self.after == 0:
            return
        if wake:
            self.reset()
            return
        self.zeros = min(self.zeros + 1, self.after)
        if self.zeros == self.after:
            self.gap = min(self.after if self.gap == 0 else 2 * self.gap, self.max_gap)
            self.left, self.prime = self.gap, self.primes

    # --- state -----------------------------------------------------------------

    def export_state(self) -> dict:
        """The four counters."""
        return {"zeros": self.zeros, "gap": self.gap, "left": self.left, "prime": self.prime}

    def import_state(self, f: Fields) -> Callable[[], None]:
        """Validate the counters of :meth:`export_state`; the returned function installs them."""
        zeros = f.integer("zeros", 0, self.after)
        gap = f.integer("gap", 0, self.max_gap if self.after else 0)
        left = f.integer("left", 0, gap)
        prime = f.integer("prime", 0, self.primes if gap else 0)
        f.require((gap > 0) == (self.after > 0 and zeros == self.after),
                  "a dormancy gap exists exactly after dormant_after closed measurements")

        def install() -> None:
            self.zeros, self.gap, self.left, self.prime = zeros, gap, left, prime

        return install
