"""The PyTorch adapter's own cost per phase, as a share of a plain torch training step.

:func:`adapter_cost` trains each model of :mod:`~vsaopt.benchmarks.torch_models`
twice side by side on one thread: plain torch (forward, backward, SGD with
momentum) and the same loop driven by :class:`~vsaopt.torch.PhaseAccelerator`,
the two interleaved step by step so both see the same machine state.  The
adapter's cost of a step is the time spent in its calls (``begin_step``,
``record_gradients`` or ``apply_predicted_gradients``, ``end_step``); each row
sets the median of a phase's steps against the median plain step.  The
least-squares trainer computes the fit a record makes when it is first read;
it is timed with the record.  Importing this module imports torch.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch

from ..errors import ConfigError
from ..phase import DeterministicPhaseConfig, PhaseConfig
from ..torch.accelerator import PhaseAccelerator
from .prediction import settle_fit
from .torch_models import MODEL_NAMES, ModelSpec, model_specs

__all__ = ["AdapterCostRow", "adapter_cost", "TARGETS"]

#: Targets for the adapter's share of a plain step, per (trainer, phase).
TARGETS = {("phase", "PREDICT"): 0.05, ("phase", "FULL"): 0.10, ("deterministic", "FULL"): 0.30, ("deterministic", "CORRECT"): 0.30}


@dataclasses.dataclass(frozen=True)
class AdapterCostRow:
    """The adapter's median cost in one phase of one model, against the median plain torch step.

    Attributes
    ----------
    model : str
    parameters : int
        Trainable parameters.
    trainer : str
        ``"phase"`` or ``"deterministic"``.
    phase : str
        The trainer's phase (``"FULL"``, ``"PREDICT"``, ...).
    steps : int
        Steps of that phase measured.
    plain_seconds : float
        Median plain step (forward + backward + SGD), measured interleaved with the adapter run.
    adapter_seconds : float
        Median time inside the adapter's calls in that phase.
    target : float or None
        The share aimed at, where one is set (:data:`TARGETS`).
    """

    model: str
    parameters: int
    trainer: str
    phase: str
    steps: int
    plain_seconds: float
    adapter_seconds: float
    target: float | None

    @property
    def share(self) -> float:
        """``adapter_seconds / plain_seconds``."""
        return self.adapter_seconds / self.plain_seconds if self.plain_seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, the share included."""
        return {**dataclasses.asdict(self), "share": self.share}


def _presets() -> dict[str, Any]:
    """Fixed-length schedules with short cycles, so every phase recurs often (the costs do not depend on the lengths)."""
    return {"phase": PhaseConfig.risky_fixed(), "deterministic": DeterministicPhaseConfig.risky_fixed()}


def _plain_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, set_to_none: bool) -> float:
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=set_to_none)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    return time.perf_counter() - t0


def _adapter_step(model: torch.nn.Module, opt: torch.optim.Optimizer, accel: PhaseAccelerator, x: torch.Tensor,
                  y: torch.Tensor, set_to_none: bool = True) -> tuple[str, float]:
    """One step of the documented loop; returns its phase and the seconds spent in the adapter's calls."""
    t0 = time.perf_counter()
    info = accel.begin_step()
    spent = time.perf_counter() - t0
    opt.zero_grad(set_to_none=set_to_none)
    loss = None
    if info.needs_backward:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        t0 = time.perf_counter()
        accel.record_gradients()
        settle_fit(accel.trainer)  # a least-squares record's fit, timed with it though computed when first read
        spent += time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        accel.apply_predicted_gradients()
        spent += time.perf_counter() - t0
    opt.step()
    t0 = time.perf_counter()
    accel.end_step(loss)
    spent += time.perf_counter() - t0
    return str(info.phase), spent


def _measure(spec: ModelSpec, trainer: str, config: Any, steps: int, warmup: int, backend: str | None,
             set_to_none: bool) -> list[AdapterCostRow]:
    x, y = spec.batch(1)
    plain, model = spec.model(0), spec.model(0)
    opt_plain = torch.optim.SGD(plain.parameters(), lr=1e-3, momentum=0.9)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    accel = PhaseAccelerator(model, config, trainer=trainer, backend=backend)
    plain_times: list[float] = []
    by_phase: dict[str, list[float]] = {}
    for step in range(warmup + steps):
        tp = _plain_step(plain, opt_plain, x, y, set_to_none)
        phase, ta = _adapter_step(model, opt, accel, x, y, set_to_none)
        if step >= warmup:
            plain_times.append(tp)
            by_phase.setdefault(phase, []).append(ta)
    base = statistics.median(plain_times)
    params = sum(p.numel() for _, p in accel._params)
    return [AdapterCostRow(spec.name, params, trainer, phase, len(ts), base, statistics.median(ts), TARGETS.get((trainer, phase)))
            for phase, ts in by_phase.items()]


def adapter_cost(models: Sequence[str] = MODEL_NAMES, trainers: Sequence[str] = ("phase", "deterministic"), *,
                 quick: bool = False, steps: int | None = None, backend: str | None = None,
                 threads: int = 1, set_to_none: bool = True) -> list[AdapterCostRow]:
    """The adapter's cost per phase as a share of a plain torch step, for each model and trainer.

    Parameters
    ----------
    models : sequence of str
        Names of :func:`~vsaopt.benchmarks.torch_models.model_specs`.
    trainers : sequence of {"phase", "deterministic"}
    quick : bool
        Tiny models and few steps: a smoke run (the rows' shape, not figures to report).
    steps : int, optional
        Measured steps per model and trainer (after a warmup that compiles and
        allocates); 60 by default, 12 with ``quick``.
    backend : str, optional
        vsaopt backend (None: numba, else numpy).
    threads : int
        torch intra-op threads during the run (restored afterwards).
    set_to_none : bool
        ``optimizer.zero_grad(set_to_none=...)`` in both loops.  False lets
        backward accumulate straight into the adapter's buffer (no copy in
        backward steps); the plain loop then zeroes its gradients too.

    Returns
    -------
    list of AdapterCostRow
        Per model, trainer and phase met.

    Raises
    ------
    ConfigError
        An unknown model or trainer name, or ``steps``/``threads`` below 1.
    """
    specs = model_specs(quick)
    unknown = sorted(set(models) - set(specs)) + sorted(set(trainers) - {"phase", "deterministic"})
    if unknown:
        raise ConfigError(f"adapter_cost: unknown models or trainers {unknown}")
    steps = (12 if quick else 60) if steps is None else steps
    if steps < 1 or threads < 1:
        raise ConfigError(f"adapter_cost: steps and threads must be >= 1, got {steps} and {threads}")
    presets = _presets()
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rows: list[AdapterCostRow] = []
        for name in models:
            for trainer in trainers:
                rows += _measure(specs[name], trainer, presets[trainer], steps, 4 if quick else 10, backend, set_to_none)
        return rows
    finally:
        torch.set_num_threads(saved)
