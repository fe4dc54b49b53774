"""Phase-training benchmarks: the cost of one PREDICT step."""

from __future__ import annotations

import time

import numpy as np

from ..backend import get_backend, to_device
from ..phase import DeterministicPhase, DeterministicPhaseConfig, DeterministicPhaseTrainer
from .kernels import device_sync
from .timing import BenchRow, best_time

#: Parameters of the modelled network (10 M), split like a small transformer block stack.
MODEL_PARAMS = 10_000_000


def _layer_shapes(total: int) -> list[tuple[str, tuple[int, ...]]]:
    """Weight matrices of 768 columns plus one remainder vector, ``total`` elements in all."""
    rows = total // 768
    shapes = [(f"layer{i}.weight", (min(1024, rows - i * 1024), 768)) for i in range(-(-rows // 1024))]
    rest = total - rows * 768
    return shapes + ([("head.bias", (rest,))] if rest else [])


def predict_step(params: int, bandwidth: float, backend: str = "numba", repeat: int = 5) -> list[BenchRow]:
    """The fused prediction kernel on ``params`` elements, and a whole trainer PREDICT step, vs ``bandwidth``."""
    be = get_backend(backend)
    ref = get_backend("numpy")
    rng = np.random.default_rng(5)
    b, v, r = (rng.standard_normal(params, dtype=np.float32) for _ in range(3))
    db, dv, dr = (to_device(be, a) for a in (b, v, r))
    t_kernel = best_time(be.predict_linear, db, dv, dr, 3.0, 0.5, repeat=repeat, sync=device_sync(be))
    t_ref = best_time(ref.predict_linear, b, v, r, 3.0, 0.5, repeat=repeat)
    rows = [
        BenchRow("predict step", "predict_linear kernel", backend, params, t_kernel, 16, 16 * params / t_kernel / bandwidth,
                 speedup=t_ref / t_kernel, note="(b + v*dt) + r*w, float32; speedup vs numpy reference; goal >= 0.8 of bw"),
    ]
    shapes = _layer_shapes(params)
    cfg = DeterministicPhaseConfig(warmup_steps=2, full_steps=2, predict_steps=20, correct_every=50, history_window=4)
    trainer = DeterministicPhaseTrainer(shapes, cfg, backend=be)
    grads = {name: to_device(be, rng.standard_normal(shape, dtype=np.float32)) for name, shape in shapes}
    sync = device_sync(be)
    predict_times: list[float] = []
    while len(predict_times) < repeat + 1:  # the first PREDICT step is a warm-up
        info = trainer.begin_step()
        if info.phase == DeterministicPhase.PREDICT:
            t0 = time.perf_counter()
            trainer.get_predicted_gradients()
            if sync is not None:
                sync()
            predict_times.append(time.perf_counter() - t0)
        else:
            trainer.record_full_gradients(grads)
        trainer.end_step(1.0)
    t_step = min(predict_times[1:])
    rows.append(BenchRow("predict step", "DeterministicPhaseTrainer.get_predicted_gradients", backend, params, t_step, 16,
                         16 * params / t_step / bandwidth, note=f"{len(shapes)} tensors; whole step incl. Python"))
    return rows
