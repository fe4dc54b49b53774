"""Predictor memory: state bytes per parameter of each preset with each history compression, and what compression costs in prediction cosine.

The gradient sequence is real: mini-batch gradients (batch :data:`BATCH`)
of a small :class:`~vsaopt.train.MLP` trained by plain SGD on the bundled
digits data.
Each preset's trainer runs over that fixed sequence (the backward steps
record the sequence's gradient of that step; PREDICT steps predict it), once
with a float32 history and once per compression, side by side.  At the
steps where both predicted, the compressed prediction is compared with the
float32-history prediction and each with the real gradient of that step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..backend import get_backend, to_host
from ..phase import DeterministicPhaseConfig, DeterministicPhaseTrainer, PhaseConfig, PhaseTrainer
from ..phase.configs import PredictionConfig
from ..phase.history_codec import COMPRESSIONS
from ..train.data import load_dataset
from ..train.model import MLP

__all__ = ["PRESETS", "MemoryRow", "digits_gradients", "predictor_memory_rows"]

#: Preset name -> config factory, looked up when the bench runs (so presets changed meanwhile are measured as they are).
PRESETS: dict[str, Callable[[], Any]] = {
    "PhaseConfig()": lambda: PhaseConfig(),
    "PhaseConfig.recommended()": lambda: PhaseConfig.recommended(),
    "DeterministicPhaseConfig()": lambda: DeterministicPhaseConfig(),
    "DeterministicPhaseConfig.recommended()": lambda: DeterministicPhaseConfig.recommended(),
}
#: Layer widths of the MLP whose gradients are replayed (64 digits features, 10 classes).
MLP_SIZES = (64, 128, 10)
#: Mini-batch size: large against the gradient noise of digits, so the gated presets predict too.
BATCH = 1024


@dataclasses.dataclass(frozen=True)
class MemoryRow:
    """One preset with one history compression.

    Attributes
    ----------
    preset, compression : str
    params : int
        Parameter elements.
    held_bytes_per_param : float
        Most predictor state bytes held at once over the run (the live object), per parameter.
    state_dict_bytes_per_param : float
        Bytes of the predictor's arrays in ``state_dict()`` at the end of the run, per parameter.
    compared : int
        Steps at which this run and the float32-history run both predicted.
    cosine_vs_float32 : float
        Mean cosine of this run's prediction with the float32-history prediction (1 for "none").
    cosine_vs_actual : float
        Mean cosine of this run's prediction with the real gradient of that step.
    float32_cosine_vs_actual : float
        The same for the float32-history run (at the same steps).
    """

    preset: str
    compression: str
    params: int
    held_bytes_per_param: float
    state_dict_bytes_per_param: float
    compared: int
    cosine_vs_float32: float
    cosine_vs_actual: float
    float32_cosine_vs_actual: float

    @property
    def held_x_fp32(self) -> float:
        """Held state over the float32 parameter bytes (4 per parameter)."""
        return self.held_bytes_per_param / 4.0

    @property
    def state_dict_x_fp32(self) -> float:
        """``state_dict`` predictor bytes over the float32 parameter bytes."""
        return self.state_dict_bytes_per_param / 4.0

    def to_dict(self) -> dict:
        """JSON-ready dict, the ratios to float32 parameter bytes included."""
        return {**dataclasses.asdict(self), "held_x_fp32": self.held_x_fp32, "state_dict_x_fp32": self.state_dict_x_fp32}


def digits_gradients(steps: int, batch: int = BATCH, lr: float = 0.05, seed: int = 0) -> tuple[list[tuple[str, tuple[int, ...]]], list[dict]]:
    """``(param_shapes, gradients)``: the mini-batch gradients of ``steps`` plain SGD steps of an MLP on digits (host float32)."""
    data = load_dataset("digits", seed=seed, backend="numpy")
    net = MLP(MLP_SIZES, seed=seed, backend="numpy")
    order = np.random.default_rng(seed).integers(0, data.x_train.shape[0], (steps, batch))
    grads = []
    for idx in order:
        _, g = net.loss_and_gradients(data.x_train[idx], data.y_train[idx])
        grads.append({k: np.array(v, np.float32) for k, v in g.items()})
        for k, p in net.params.items():
            p -= np.float32(lr) * g[k]
    return net.param_shapes(), grads


def _with_compression(config: Any, compression: str) -> Any:
    if isinstance(config, PhaseConfig):
        pc = PredictionConfig.from_dict({**config.prediction_config.to_dict(), "history_compression": compression})
        return dataclasses.replace(config, prediction_config=pc)
    return dataclasses.replace(config, history_compression=compression)


def _trainer(config: Any, shapes: list, backend: str) -> Any:
    cls = PhaseTrainer if isinstance(config, PhaseConfig) else DeterministicPhaseTrainer
    return cls(shapes, config, backend=backend)


def _run(trainer: Any, grads: list[dict], be: Any) -> Iterator[tuple[int, np.ndarray | None, int]]:
    """Drive ``trainer`` over ``grads``: per step ``(step, flat prediction or None, predictor bytes held)``."""
    names = [k for k, _ in trainer.param_shapes]
    for step, g in enumerate(grads):
        info = trainer.begin_step()
        pred = None
        if info.needs_backward:
            trainer.record_full_gradients({k: be.xp.asarray(v) for k, v in g.items()})
        else:
            out = trainer.get_predicted_gradients()
            pred = np.concatenate([to_host(out[k]).reshape(-1) for k in names])
        trainer.end_step(1.0)  # a flat loss: the schedules run as configured
        yield step, pred, trainer.predictor_state_bytes


def _mean(xs: list[float]) -> float:
    return float(np.mean(xs)) if xs else float("nan")


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    na, nb = float(np.linalg.norm(a64)), float(np.linalg.norm(b64))
    return float(np.dot(a64, b64) / (na * nb)) if na and nb else 0.0


def predictor_memory_rows(steps: int = 200, backend: str = "numba", presets: tuple[str, ...] = tuple(PRESETS)) -> list[MemoryRow]:
    """One :class:`MemoryRow` per preset and compression (see the module docstring)."""
    be = get_backend(backend)
    shapes, grads = digits_gradients(steps)
    flat_grads = [np.concatenate([g[k].reshape(-1) for k, _ in shapes]) for g in grads]
    n = sum(int(np.prod(s)) for _, s in shapes)
    rows = []
    for name in presets:
        base = PRESETS[name]()
        runs = {}
        for comp in COMPRESSIONS:
            trainer = _trainer(_with_compression(base, comp), shapes, backend)
            trace = list(_run(trainer, grads, be))
            arrays = trainer.state_dict()["arrays"]
            sd = sum(a.nbytes for k, a in arrays.items() if k.startswith("predictor."))
            runs[comp] = (trace, max(b for _, _, b in trace), sd)
        exact = runs["none"][0]
        for comp in COMPRESSIONS:
            trace, held, sd = runs[comp]
            both = [(p, e, flat_grads[s]) for (s, p, _), (_, e, _) in zip(trace, exact) if p is not None and e is not None]
            rows.append(MemoryRow(
                name, comp, n, held / n, sd / n, len(both),
                _mean([_cos(p, e) for p, e, _ in both]),
                _mean([_cos(p, g) for p, _, g in both]),
                _mean([_cos(e, g) for _, e, g in both]),
            ))
    return rows
