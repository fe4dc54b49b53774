"""Timing primitives and the result row of every benchmark."""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass
class BenchRow:
    """One measured figure.

    Attributes
    ----------
    section : which table it belongs to
    name : what was measured
    backend : backend name, or ``"numpy (plain)"`` for a non-vsaopt baseline
    elements : elements processed per call
    seconds : best (or median, for latency) seconds per call
    bytes_per_element : bytes the operation must move per element (0: not bandwidth-bound)
    fraction_of_bandwidth : achieved bytes/s over the copy bandwidth of the same run
    speedup : time of the comparison baseline over this time
    note : free text (goal, what the baseline is)
    """

    section: str
    name: str
    backend: str
    elements: int
    seconds: float
    bytes_per_element: float = 0.0
    fraction_of_bandwidth: float | None = None
    speedup: float | None = None
    note: str = ""

    @property
    def gelem_per_s(self) -> float:
        """Throughput in 10^9 elements per second."""
        return self.elements / self.seconds / 1e9 if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, throughput included."""
        return {**dataclasses.asdict(self), "gelem_per_s": self.gelem_per_s}


def best_time(
    fn: Callable[..., Any], *args: Any, repeat: int = 3, warmup: int = 1, sync: Callable[[], Any] | None = None
) -> float:
    """Fastest of ``repeat`` calls of ``fn(*args)`` after ``warmup`` calls (seconds).

    ``sync`` (e.g. a GPU device synchronize) runs after each call, inside the timing.
    """
    for _ in range(warmup):
        fn(*args)
    if sync is not None:
        sync()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        if sync is not None:
            sync()
        best = min(best, time.perf_counter() - t0)
    return best


def latency_after_idle(
    fn: Callable[..., Any], *args: Any, gap: float = 0.05, calls: int = 7, sync: Callable[[], Any] | None = None
) -> float:
    """Median seconds of single calls, each after ``gap`` seconds idle (one call per training step)."""
    fn(*args)
    if sync is not None:
        sync()
    times = []
    for _ in range(calls):
        time.sleep(gap)
        t0 = time.perf_counter()
        fn(*args)
        if sync is not None:
            sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
