"""Phase-training benchmarks: the trainers' own PREDICT and FULL steps at a real model size, framework-free.

Every figure is set against the copy bandwidth ``bw`` measured in the same run
(``vsaopt bench``'s bandwidth section): a step's "passes" are its time over the
time of one copy of the parameter vector at ``bw`` (``8 * params / bw``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import get_backend, to_device
from ..phase import DeterministicPhase, DeterministicPhaseConfig, DeterministicPhaseTrainer, PhaseConfig, PhaseTrainer, TrainingPhase
from .kernels import device_sync
from .timing import BenchRow, best_time

#: Parameters of the modelled network (10 M), split like a small transformer block stack.
MODEL_PARAMS = 10_000_000
#: Most copy passes a phase trainer's FULL step may cost (issue goal).
FULL_PASSES_GOAL = 2.0
#: Steps a measurement may take to meet its phase ``repeat + 1`` times.
MAX_STEPS = 1000
#: Least fraction of the copy bandwidth a PREDICT step should reach (issue goal).
PREDICT_BANDWIDTH_GOAL = 0.8


def _layer_shapes(total: int) -> list[tuple[str, tuple[int, ...]]]:
    """Weight matrices of 768 columns plus one remainder vector, ``total`` elements in all."""
    rows = total // 768
    shapes = [(f"layer{i}.weight", (min(1024, rows - i * 1024), 768)) for i in range(-(-rows // 1024))]
    rest = total - rows * 768
    return shapes + ([("head.bias", (rest,))] if rest else [])


def _phase_times(trainer: Any, grads: dict, phase: Any, step: Callable[[Any], None], repeat: int) -> float:
    """Fastest of ``repeat`` timed calls of ``step(trainer)`` in steps of ``phase`` (after one untimed one).

    Other steps record ``grads`` (backward phases; a least-squares record's fit computed at once,
    :func:`settle_fit`) or predict into a scratch buffer.
    """
    be = trainer.backend
    sync = device_sync(be)
    scratch = be.xp.empty(sum(int(np.prod(s)) for _, s in trainer.param_shapes), dtype=be.xp.float32)
    times: list[float] = []
    for _ in range(MAX_STEPS):
        if len(times) > repeat:
            return min(times[1:])
        info = trainer.begin_step()
        if info.phase == phase:
            t0 = time.perf_counter()
            step(trainer)
            if sync is not None:
                sync()
            times.append(time.perf_counter() - t0)
        elif info.needs_backward:
            _record_and_fit(trainer, grads)
        else:
            trainer.predict_gradients_into(scratch)
        trainer.end_step(1.0)
    raise RuntimeError(f"{type(trainer).__name__}: fewer than {repeat + 1} {phase} steps in {MAX_STEPS} steps")


def settle_fit(trainer: Any) -> None:
    """For the least-squares trainer, compute the fit its last record made pending (it is computed when first read).

    The fit is the record's own cost wherever it is paid (the next
    prediction or measurement); benchmarks call this inside a record's timing.
    """
    if isinstance(trainer, DeterministicPhaseTrainer):
        trainer._predictor._settle_fit()


def _record_and_fit(trainer: Any, grads: dict) -> None:
    """Record ``grads`` and compute the fit that makes pending (:func:`settle_fit`)."""
    trainer.record_full_gradients(grads)
    settle_fit(trainer)


def predict_step(params: int, bandwidth: float, backend: str = "numba", repeat: int = 5) -> list[BenchRow]:
    """The prediction kernel, the trainers' PREDICT steps and their FULL steps on ``params`` elements, vs ``bandwidth``."""
    be = get_backend(backend)
    ref = get_backend("numpy")
    rng = np.random.default_rng(5)
    b, v, r = (rng.standard_normal(params, dtype=np.float32) for _ in range(3))
    db, dv, dr = (to_device(be, a) for a in (b, v, r))
    t_kernel = best_time(be.predict_linear, db, dv, dr, 3.0, 0.5, repeat=repeat, sync=device_sync(be))
    t_ref = best_time(ref.predict_linear, b, v, r, 3.0, 0.5, repeat=repeat)
    copy_time = 8 * params / bandwidth

    def bw_row(name: str, seconds: float, nbytes: float, note: str, **extra: Any) -> BenchRow:
        return BenchRow("predict step", name, backend, params, seconds, nbytes, nbytes * params / seconds / bandwidth, note=note, **extra)

    rows = [bw_row("predict_linear kernel", t_kernel, 16,
                   f"(b + v*dt) + r*w, float32; speedup vs numpy reference; goal >= {PREDICT_BANDWIDTH_GOAL} of bw", speedup=t_ref / t_kernel)]
    shapes = _layer_shapes(params)
    grads = {name: to_device(be, rng.standard_normal(shape, dtype=np.float32)) for name, shape in shapes}
    out = be.xp.empty(params, dtype=be.xp.float32)
    det_cfg = DeterministicPhaseConfig(warmup_steps=2, full_steps=2, predict_steps=20, correct_every=50, history_window=4)
    pred = DeterministicPhase.PREDICT
    t_map = _phase_times(DeterministicPhaseTrainer(shapes, det_cfg, backend=be), grads, pred, lambda t: t.get_predicted_gradients(), repeat)
    t_into = _phase_times(DeterministicPhaseTrainer(shapes, det_cfg, backend=be), grads, pred, lambda t: t.predict_gradients_into(out), repeat)
    rows += [
        bw_row("DeterministicPhaseTrainer.get_predicted_gradients", t_map, 16, f"{len(shapes)} tensors; a new array and its mapping; incl. Python"),
        bw_row("DeterministicPhaseTrainer.predict_gradients_into", t_into, 16,
               f"into the caller's buffer, one pass; incl. Python; goal >= {PREDICT_BANDWIDTH_GOAL} of bw"),
    ]
    # fixed presets, so that every phase recurs (a gated deterministic schedule alternates PREDICT and CORRECT
    # once it opens); their predictors are the recommended ones (last gradient; window-2 fit)
    real = [
        ("PhaseTrainer.record_full_gradients (FULL)", PhaseTrainer, PhaseConfig.risky_fixed(), TrainingPhase.FULL, 12,
         f"reads g and the previous g, writes the history row; goal <= {FULL_PASSES_GOAL:g} passes"),
        ("DeterministicPhaseTrainer.record_full_gradients (FULL)", DeterministicPhaseTrainer, DeterministicPhaseConfig.risky_fixed(),
         DeterministicPhase.FULL, 56, "window 2: gather into the ring's spare row with the fit's prediction, refit over 4 rows in place (timed here, though computed when first read)"),
        ("DeterministicPhaseTrainer.record_full_gradients (CORRECT)", DeterministicPhaseTrainer, DeterministicPhaseConfig.risky_fixed(),
         DeterministicPhase.CORRECT, 88, "as FULL, plus the residual update and its per-parameter error and maximum"),
    ]
    for name, cls, cfg, phase, nbytes, note in real:
        t = _phase_times(cls(shapes, cfg, backend=be), grads, phase, lambda tr: _record_and_fit(tr, grads), repeat)
        rows.append(bw_row(name, t, nbytes, f"{t / copy_time:.2f} copy passes; {note}"))
    return rows
