"""The PyTorch adapter's own cost while the gate stays closed, as a share of a plain torch step.

:func:`gate_closed_cost` trains each model twice side by side on one thread,
interleaved step by step: plain torch (closure: zero the gradients, forward,
backward; then SGD with momentum) and the same closure through
:meth:`~vsaopt.torch.PhaseAccelerator.step` with a ``recommended()`` preset.
Every step draws a new batch with random labels, so consecutive gradients are
unpredictable and the gate stays closed: everything the accelerator does is
measurement, and with dormant measurement (``GateConfig.dormant_after``) most
steps do none.  The adapter's own time of a step is the wall time of
``step(closure)`` less the time inside the closure and the optimizer's step.
Each row gives the mean over the whole run (its first, fully measured steps
included) against the mean plain step.  A few steps before the run, then
forgotten, load the kernels (numba reads each from its disk cache on first
use, tens of milliseconds once per process).  Importing this module imports torch.
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
from .torch_models import DIGITS_CNN, MODEL_NAMES, ModelSpec, model_specs

__all__ = ["GateClosedRow", "gate_closed_cost", "TARGET", "MODELS"]

#: The share of a plain step the adapter may cost while the gate is closed.
TARGET = 0.01
#: Steps run before the measured run, then forgotten (``reset``): numba loads each kernel on its first call.
WARM_STEPS = 16
#: Models measured by default: the digits CNN, then those of the adapter section.
MODELS = ("digits_cnn", *MODEL_NAMES)


@dataclasses.dataclass(frozen=True)
class GateClosedRow:
    """The adapter's mean own cost per step over a run with the gate closed.

    Attributes
    ----------
    model : str
    parameters : int
    trainer : str
        ``"phase"`` or ``"deterministic"`` (their ``recommended()`` presets).
    steps : int
        Steps in the run.
    recorded : int
        Steps whose gradients the trainer recorded (the rest were dormant).
    plain_seconds : float
        Mean plain torch step.
    adapter_seconds : float
        Mean time per step inside the adapter (``step`` less the closure and the optimizer).
    dormant_seconds : float
        Median adapter time of a dormant step.
    """

    model: str
    parameters: int
    trainer: str
    steps: int
    recorded: int
    plain_seconds: float
    adapter_seconds: float
    dormant_seconds: float

    @property
    def target(self) -> float:
        """The share aimed at (:data:`TARGET`)."""
        return TARGET

    @property
    def share(self) -> float:
        """``adapter_seconds / plain_seconds``."""
        return self.adapter_seconds / self.plain_seconds if self.plain_seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, the share included."""
        return {**dataclasses.asdict(self), "share": self.share, "target": self.target}


class _Timed:
    """Seconds spent inside the closure and the optimizer's whole ``step`` (wrapped on the instance) in the current step."""

    def __init__(self, opt: torch.optim.Optimizer) -> None:
        self.inside = 0.0
        step = opt.step

        def timed_step(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return step(*args, **kwargs)
            finally:
                self.inside += time.perf_counter() - t0

        opt.step = timed_step  # type: ignore[method-assign]


def _closure(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, timed: _Timed | None) -> Any:
    def closure() -> torch.Tensor:
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if timed is not None:
            timed.inside += time.perf_counter() - t0
        return loss

    return closure


def _measure(spec: ModelSpec, trainer: str, steps: int, backend: str | None) -> GateClosedRow:
    plain, model = spec.model(0), spec.model(0)
    opt_plain = torch.optim.SGD(plain.parameters(), lr=1e-3, momentum=0.9)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    config = PhaseConfig.recommended() if trainer == "phase" else DeterministicPhaseConfig.recommended()
    accel = PhaseAccelerator(model, config, backend=backend, optimizer=opt)
    timed = _Timed(opt)
    for k in range(WARM_STEPS):  # loads the kernels and touches the history outside the run, then starts afresh
        accel.step(_closure(model, opt, *spec.batch(10**6 + k), None))
    accel.trainer.reset()
    plain_times, own, dormant, recorded = [], [], [], 0
    for step in range(steps):
        x, y = spec.batch(step)
        t0 = time.perf_counter()
        loss = _closure(plain, opt_plain, x, y, None)()
        opt_plain.step()
        del loss
        plain_times.append(time.perf_counter() - t0)
        timed.inside = 0.0
        is_dormant, passes = accel.trainer.next_step_dormant, accel.backward_passes()
        t0 = time.perf_counter()
        loss = accel.step(_closure(model, opt, x, y, timed))
        spent = time.perf_counter() - t0 - timed.inside
        del loss  # freeing the step's tensors is the training loop's cost, as in the plain loop, not the adapter's
        own.append(spent)
        if is_dormant:
            dormant.append(spent)
        else:
            recorded += accel.backward_passes() - passes
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return GateClosedRow(spec.name, params, trainer, steps, recorded, statistics.fmean(plain_times), statistics.fmean(own),
                         statistics.median(dormant) if dormant else float("nan"))


def gate_closed_cost(models: Sequence[str] = MODELS, trainers: Sequence[str] = ("phase", "deterministic"), *,
                     quick: bool = False, steps: int | None = None, backend: str | None = None,
                     threads: int = 1) -> list[GateClosedRow]:
    """The adapter's mean cost per step with the gate closed, as a share of a plain torch step, per model and trainer.

    Parameters
    ----------
    models : sequence of str
        ``"digits_cnn"`` (the 9,802-parameter CNN of the time-to-accuracy
        section, batch 32) and names of :func:`~vsaopt.benchmarks.torch_models.model_specs`.
    trainers : sequence of {"phase", "deterministic"}
    quick : bool
        Tiny models and few steps: a smoke run (the rows' shape, not figures to report).
    steps : int, optional
        Steps per run; 400 by default, 30 with ``quick``.
    backend : str, optional
        vsaopt backend (None: numba, else numpy).
    threads : int
        torch intra-op threads during the run (restored afterwards).

    Raises
    ------
    ConfigError
        An unknown model or trainer, or ``steps``/``threads`` below 1.
    """
    specs = {"digits_cnn": DIGITS_CNN, **model_specs(quick)}
    unknown = sorted(set(models) - set(specs)) + sorted(set(trainers) - {"phase", "deterministic"})
    if unknown:
        raise ConfigError(f"gate_closed_cost: unknown models or trainers {unknown}")
    steps = (30 if quick else 400) if steps is None else steps
    if steps < 1 or threads < 1:
        raise ConfigError(f"gate_closed_cost: steps and threads must be >= 1, got {steps} and {threads}")
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return [_measure(specs[name], trainer, steps, backend) for name in models for trainer in trainers]
    finally:
        torch.set_num_threads(saved)
