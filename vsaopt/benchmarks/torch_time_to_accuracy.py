"""Wall time to a target accuracy with torch: plain backprop, the adapter's recommended presets, and a reuse control.

:func:`time_to_accuracy` trains a small CNN on scikit-learn's bundled digits
(8x8 images) for a few seeds, one thread, in four modes that see the same
batches in the same order:

- ``torch``: plain backprop (SGD with momentum; the learning rate picked from a
  small grid on a validation split of the first seed's training data, half as many epochs);
- ``phase``: :class:`~vsaopt.torch.PhaseAccelerator` with
  ``PhaseConfig.recommended()`` and ``trainer="phase"``;
- ``deterministic``: with ``DeterministicPhaseConfig.recommended()``;
- ``reuse last gradient``: plain torch that skips the backward pass at the
  very steps the ``phase`` run predicted and applies the last real gradient
  again instead (the control the phase trainer must beat).

PREDICT steps run no forward pass (``end_step(None)``).  The target of a seed
is plain torch's final test accuracy minus half a point; the time to it is the
training wall time (evaluation excluded) up to the first epoch end at or above
it.  The four runs of a seed are interleaved epoch by epoch (each mode's
epoch in turn, the order rotating so that no mode always runs first), so a
change in the machine's speed over the seconds of a run falls on every mode
alike.  Each accelerated mode first runs one untimed epoch, so that no timed run
pays the process's one-time loading of the numba kernels (a cost of the
first accelerator in a process, not of each training run).  Needs torch and
scikit-learn.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from ..phase import DeterministicPhaseConfig, PhaseConfig
from ..torch.accelerator import PhaseAccelerator
from .torch_models import DIGITS_CNN

__all__ = ["TimeToAccuracyRow", "time_to_accuracy", "MODES", "TARGET_MARGIN"]

#: Modes, in table order.
MODES = ("torch", "phase", "deterministic", "reuse last gradient")
#: The target is plain torch's final test accuracy minus this.
TARGET_MARGIN = 0.005
#: Learning rates tried for plain torch.
LR_GRID = (0.01, 0.03, 0.1)


@dataclasses.dataclass(frozen=True)
class TimeToAccuracyRow:
    """One mode's figures over the seeds (medians).

    Attributes
    ----------
    mode : str
    seeds : int
    reached : int
        Seeds whose run reached its target.
    seconds_to_target : float or None
        Median training wall time to the target over the seeds that reached it (None: none did).
    backward_to_target : float or None
        Median backward passes up to that point.
    backward_passes : float
        Median backward passes of the whole run.
    steps : int
        Optimizer steps per run.
    final_accuracy : float
        Median final test accuracy.
    target : float
        Median target accuracy.
    lr : float
        The learning rate used (every mode uses plain torch's).
    """

    mode: str
    seeds: int
    reached: int
    seconds_to_target: float | None
    backward_to_target: float | None
    backward_passes: float
    steps: int
    final_accuracy: float
    target: float
    lr: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


def _digits(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x / 16.0, y, test_size=0.25, random_state=seed, stratify=y)

    def images(a: np.ndarray) -> torch.Tensor:
        return torch.tensor(a, dtype=torch.float32).reshape(-1, 1, 8, 8)

    return images(xtr), torch.tensor(ytr), images(xte), torch.tensor(yte)


def _cnn(seed: int) -> torch.nn.Module:
    return DIGITS_CNN.model(seed)


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


def _run(mode: str, seed: int, data: tuple, lr: float, epochs: int, batch: int, schedule: list[bool] | None) -> Iterator[dict[str, Any]]:
    """One training run, an epoch per ``next``; yields its state: per-epoch (seconds, backward passes, accuracy), the backward schedule so far, the steps."""
    xtr, ytr, xte, yte = data
    model = _cnn(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    accel = None
    if mode == "phase":
        accel = PhaseAccelerator(model, PhaseConfig.recommended(), trainer="phase")
    elif mode == "deterministic":
        accel = PhaseAccelerator(model, DeterministicPhaseConfig.recommended(), trainer="deterministic")
    last: list[torch.Tensor] = []
    taken: list[bool] = []
    curve = []
    seconds, backward, step = 0.0, 0, 0
    for epoch in range(epochs):
        order = torch.randperm(len(ytr), generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        t0 = time.perf_counter()
        for lo in range(0, len(order) - batch + 1, batch):
            idx = order[lo : lo + batch]
            opt.zero_grad()
            if accel is not None:
                info = accel.begin_step()
                loss = None
                if info.needs_backward:
                    loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
                    loss.backward()
                    accel.record_gradients(batch_size=batch)
                else:
                    accel.apply_predicted_gradients()
                needs = info.needs_backward
            else:
                needs = True if schedule is None else schedule[step]
                if needs or not last:
                    needs = True
                    torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
                    if schedule is not None:
                        last = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in model.parameters()]
                else:
                    for p, g in zip(model.parameters(), last):
                        p.grad = g.clone()
            opt.step()
            if accel is not None:
                accel.end_step(loss)
            backward += needs
            taken.append(needs)
            step += 1
        seconds += time.perf_counter() - t0
        curve.append((seconds, backward, _accuracy(model, xte, yte)))
        yield {"curve": curve, "schedule": taken, "steps": step}


def _whole(run: Iterator[dict[str, Any]]) -> dict[str, Any]:
    """The state after a run's last epoch."""
    state: dict[str, Any] = {}
    for state in run:
        pass
    return state


def _interleaved(seed: int, data: tuple, lr: float, epochs: int, batch: int) -> dict[str, dict[str, Any]]:
    """The four modes' runs of one seed, epoch by epoch in turn; the reuse control follows the phase run's schedule."""
    runs = {mode: _run(mode, seed, data, lr, epochs, batch, None) for mode in ("torch", "phase", "deterministic")}
    phase_schedule: list[bool] = []  # the phase run's, filled as it goes: the reuse run's epoch e follows the phase run's
    runs["reuse last gradient"] = _run("torch", seed, data, lr, epochs, batch, phase_schedule)
    order = ["torch", "phase", "deterministic"]
    states: dict[str, dict[str, Any]] = {}
    for epoch in range(epochs):
        turn = order[epoch % 3:] + order[: epoch % 3]  # no mode always runs first
        turn.insert(turn.index("phase") + 1, "reuse last gradient")
        for mode in turn:
            states[mode] = next(runs[mode])
            if mode == "phase":
                phase_schedule[:] = states["phase"]["schedule"]
    return states


def _tune_lr(seed: int, data: tuple, epochs: int, batch: int) -> float:
    """The grid rate with the best final accuracy of plain torch on a validation split of the training data."""
    xtr, ytr, _, _ = data
    cut = len(ytr) * 4 // 5
    split = (xtr[:cut], ytr[:cut], xtr[cut:], ytr[cut:])
    scores = [(_whole(_run("torch", seed, split, lr, max(1, epochs // 2), batch, None))["curve"][-1][2], -lr) for lr in LR_GRID]
    return -max(scores)[1]


def time_to_accuracy(seeds: Sequence[int] = (0, 1, 2), *, epochs: int = 10, batch: int = 32, quick: bool = False,
                     threads: int = 1) -> list[TimeToAccuracyRow]:
    """Median wall time to the target accuracy, backward passes and final accuracy per mode (:data:`MODES`).

    Parameters
    ----------
    seeds : sequence of int
        Seeds of the split, the weights and the batch order (at least one).
    epochs, batch : int
        Training length and mini-batch size.
    quick : bool
        One seed, two epochs, no learning-rate grid: a smoke run.
    threads : int
        torch intra-op threads (restored afterwards).

    Raises
    ------
    ConfigError
        No seeds, or ``epochs``, ``batch`` or ``threads`` below 1.
    ImportError
        scikit-learn is missing.
    """
    if quick:
        seeds, epochs = tuple(seeds)[:1], 2
    if not seeds or epochs < 1 or batch < 1 or threads < 1:
        raise ConfigError(f"time_to_accuracy: needs seeds and epochs, batch, threads >= 1, got {seeds}, {epochs}, {batch}, {threads}")
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        datas = {s: _digits(s) for s in seeds}
        lr = 0.03 if quick else _tune_lr(seeds[0], datas[seeds[0]], epochs, batch)
        for mode in ("phase", "deterministic"):  # untimed: loads the kernels this process's first accelerator loads
            _whole(_run(mode, seeds[0], datas[seeds[0]], lr, 1, batch, None))
        runs: dict[str, list[dict]] = {m: [] for m in MODES}
        targets = []
        for s in seeds:
            states = _interleaved(s, datas[s], lr, epochs, batch)
            for mode in MODES:
                runs[mode].append(states[mode])
            targets.append(states["torch"]["curve"][-1][2] - TARGET_MARGIN)
        rows = []
        for mode in MODES:
            hits = []
            for run, target in zip(runs[mode], targets):
                hit = next(((sec, bw) for sec, bw, acc in run["curve"] if acc >= target), None)
                if hit is not None:
                    hits.append(hit)
            rows.append(TimeToAccuracyRow(
                mode, len(seeds), len(hits),
                statistics.median(h[0] for h in hits) if hits else None,
                statistics.median(h[1] for h in hits) if hits else None,
                statistics.median(r["curve"][-1][1] for r in runs[mode]), runs[mode][0]["steps"],
                statistics.median(r["curve"][-1][2] for r in runs[mode]), statistics.median(targets), lr,
            ))
        return rows
    finally:
        torch.set_num_threads(saved)
