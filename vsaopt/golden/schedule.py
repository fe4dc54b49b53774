"""Golden family "schedule": phase sequences of both trainers and the prediction kernels.

Trainer ops run the canonical training loop for ``len(losses)`` steps over one
parameter ``"g"`` of ``grads.shape[1]`` elements: ``begin_step``; in a backward
phase ``record_full_gradients({"g": grads[step]})`` (PhaseTrainer, CORRECT:
then ``apply_correction`` on a copy of ``grads[step]``, kept as ``corrected``);
in PREDICT ``get_predicted_gradients()`` (kept as ``predictions``);
``end_step(losses[step])``.  Configs are JSON objects listing every field
(floats as float64 scalars, as everywhere in the vector files).

``momentum_predictor_run`` drives a bare momentum predictor through a list of
actions, one gradient row each, to pin what the trainer loop never exercises.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import to_host
from . import cosine_midpoint_pair

__all__ = ["OPS", "cases"]


def _run(be: Any, trainer: Any, losses: np.ndarray, grads: np.ndarray, correct: bool) -> dict:
    xp = be.xp
    steps = losses.shape[0]
    phases, phase_steps, cycles, changed, records = [], [], [], [], []
    predictions, corrected = [], []
    telemetry: list[Any] = []  # after each real step
    for step in range(steps):
        info = trainer.begin_step()
        phases.append(info.phase.value)
        phase_steps.append(info.phase_step)
        cycles.append(info.cycle)
        changed.append(info.phase_changed)
        records.append(info.records)
        if info.needs_backward:
            g = xp.asarray(grads[step])
            trainer.record_full_gradients({"g": g})
            telemetry.append(trainer.telemetry)
            if correct and str(info.phase) == "CORRECT":
                c = xp.array(grads[step], dtype=xp.float32)
                trainer.apply_correction({"g": c})
                corrected.append(to_host(c))
        else:
            predictions.append(to_host(trainer.get_predicted_gradients()["g"]))
        trainer.end_step(float(losses[step]))
    n = grads.shape[1]
    return {
        "phases": np.array(phases, dtype=np.int8),
        "phase_steps": np.array(phase_steps, dtype=np.int64),
        "cycles": np.array(cycles, dtype=np.int64),
        "phase_changed": np.array(changed, dtype=np.uint8),
        "records": np.array(records, dtype=np.uint8),
        "predictions": np.array(predictions, dtype=np.float32).reshape(-1, n),
        "corrected": np.array(corrected, dtype=np.float32).reshape(-1, n),
        "speedup": np.float32(trainer.speedup_ratio),
        "current_full_steps": trainer.current_full_steps,
        "current_predict_steps": trainer.current_predict_steps,
        **_telemetry_arrays(telemetry),
    }


def _telemetry_arrays(records: list) -> dict:
    """Telemetry after each real step: float32 values (NaN where not measured) and the PREDICT budgets."""

    def f32s(name: str) -> np.ndarray:
        return np.array([np.nan if getattr(t, name) is None else getattr(t, name) for t in records], dtype=np.float32)

    return {
        "prediction_cosine": f32s("prediction_cosine"),
        "norm_ratio": f32s("norm_ratio"),
        "consecutive_cosine": f32s("consecutive_cosine"),
        "rho": f32s("rho"),
        "quality": f32s("quality"),
        "predict_budget": np.array([t.predict_budget for t in records], dtype=np.int64),
    }


def _plain(value: Any) -> Any:
    """A decoded config object with its float64 scalars as Python floats (what ``from_dict`` takes)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.floating):
        return float(value)
    return value


def phase_trainer_run(be: Any, config: dict, losses: np.ndarray, grads: np.ndarray) -> dict:
    """Run a PhaseTrainer (momentum prediction) over a loss series and gradient rows."""
    from ..phase import PhaseConfig, PhaseTrainer

    trainer = PhaseTrainer([("g", (grads.shape[1],))], PhaseConfig.from_dict(_plain(config)), backend=be)
    out = _run(be, trainer, losses, grads, correct=True)
    stats = trainer.get_stats()
    out.update(full_steps=stats.full_steps, predict_steps=stats.predict_steps, correct_steps=stats.correct_steps)
    return out


def deterministic_trainer_run(be: Any, config: dict, losses: np.ndarray, grads: np.ndarray) -> dict:
    """Run a DeterministicPhaseTrainer (least-squares prediction) over a loss series and gradient rows."""
    from ..phase import DeterministicPhaseConfig, DeterministicPhaseTrainer

    trainer = DeterministicPhaseTrainer([("g", (grads.shape[1],))], DeterministicPhaseConfig.from_dict(_plain(config)), backend=be)
    out = _run(be, trainer, losses, grads, correct=False)
    stats = trainer.get_stats()
    arrays = trainer.state_dict()["arrays"]
    out.update(
        warmup_steps=stats.warmup_steps,
        full_steps=stats.full_steps,
        predict_steps=stats.predict_steps,
        correct_steps=stats.correct_steps,
        mean_prediction_error=np.float32(stats.mean_prediction_error),
        residual=arrays["predictor.residual"],
    )
    return out


def momentum_predictor_run(be: Any, config: dict, grads: np.ndarray, actions: list) -> dict:
    """Drive a GradientPredictor over one parameter ``"g"``: action ``k`` uses gradient row ``grads[k]``.

    Actions: ``"record"`` (a FULL record), ``"record_correct"`` (a CORRECT record:
    record, then correct against the stored prediction), ``"predict"``,
    ``"correct"`` (``compute_correction``) and ``"apply"`` (``apply_correction`` on
    a copy of the row).
    """
    from ..phase import GradientPredictor, PredictionConfig

    xp = be.xp
    n = grads.shape[1]
    pred = GradientPredictor([("g", (n,))], PredictionConfig.from_dict(_plain(config)), backend=be)
    predictions, corrections, made, applied = [], [], [], []
    for k, action in enumerate(actions):
        row = xp.asarray(grads[k])
        if action == "record":
            pred.record_flat(row)
        elif action == "record_correct":
            pred.record_flat(row, correct=True)
        elif action == "predict":
            predictions.append(to_host(pred.predict_gradient()["g"]))
        elif action == "correct":
            corr = pred.compute_correction({"g": row})
            made.append(bool(corr))
            if corr:
                corrections.append(to_host(corr["g"]))
        elif action == "apply":
            c = xp.array(grads[k], dtype=xp.float32)
            pred.apply_correction({"g": c})
            applied.append(to_host(c))
        else:
            raise ValueError(f"unknown action {action!r}")
    stats = pred.get_stats()
    return {
        "predictions": np.array(predictions, dtype=np.float32).reshape(-1, n),
        "corrections": np.array(corrections, dtype=np.float32).reshape(-1, n),
        "correction_made": np.array(made, dtype=np.uint8),
        "applied": np.array(applied, dtype=np.float32).reshape(-1, n),
        "mean_error": np.float32(stats.mean_error),
        "recent_error": np.float32(stats.recent_error),
        "total_steps": pred.total_steps,
        "should_compute_full": bool(pred.should_compute_full()),
    }


def cosine(be: Any, a: np.ndarray, b: np.ndarray) -> dict:
    """The telemetry's cosine of two float32 vectors (spec'd sums, float64 division)."""
    from ..phase.telemetry import flat_cosine

    ad, bd = _dev(be, a, b)
    return {"cosine": flat_cosine(be, ad, bd)}


def gate_budget(be: Any, config: dict, quality: Any, last: Any, samples: int, cap: int) -> dict:
    """The gate's rule on one measurement (host arithmetic; ``be`` unused)."""
    from ..phase import GateConfig
    from ..phase.telemetry import gate_budget as rule

    cfg = GateConfig.from_dict(_plain(config))
    return {"budget": rule(np.float32(_scalar(quality)), np.float32(_scalar(last)), samples, cfg, cap)}


def _scalar(x: Any) -> float:
    """A float input (a float64 array of one element after decoding)."""
    return float(np.asarray(x, dtype=np.float64).reshape(-1)[0])


def _dev(be: Any, *arrays: np.ndarray) -> list:
    return [be.xp.ascontiguousarray(be.xp.asarray(a)) for a in arrays]


def predict_linear(be: Any, baseline: np.ndarray, velocity: np.ndarray, residual: np.ndarray, dt: Any, w: Any) -> dict:
    """Kernel ``predict_linear`` (``dt`` and ``w`` are float32 scalars given as float64)."""
    b, v, r = _dev(be, baseline, velocity, residual)
    return {"out": be.predict_linear(b, v, r, np.float32(_scalar(dt)), np.float32(_scalar(w)))}


def momentum_extrapolate(be: Any, prev: np.ndarray, curr: np.ndarray, momentum: Any) -> dict:
    """Kernel ``momentum_extrapolate``."""
    p, c = _dev(be, prev, curr)
    return {"out": be.momentum_extrapolate(p, c, np.float32(_scalar(momentum)))}


def axpy(be: Any, x: np.ndarray, a: Any, y: np.ndarray) -> dict:
    """Kernel ``axpy``."""
    xd, yd = _dev(be, x, y)
    return {"out": be.axpy(xd, np.float32(_scalar(a)), yd)}


def residual_update(
    be: Any, residual: np.ndarray, actual: np.ndarray, baseline: np.ndarray, velocity: np.ndarray, dt: Any, decay: Any
) -> dict:
    """Kernel ``residual_update`` with ``one_minus_decay = f32(1 - decay)``."""
    r, g, b, v = _dev(be, residual, actual, baseline, velocity)
    d = np.float32(_scalar(decay))
    new, err = be.residual_update(r, g, b, v, np.float32(_scalar(dt)), d, np.float32(1.0 - float(d)))
    return {"residual": new, "deviation": err}


def residual_stats(
    be: Any, residual: np.ndarray, actual: np.ndarray, baseline: np.ndarray, velocity: np.ndarray, dt: Any, w: Any, decay: Any,
    bounds: np.ndarray,
) -> dict:
    """Kernel ``residual_stats`` with ``one_minus_decay = f32(1 - decay)``; the bit maxima as float32 values."""
    r, g, b, v = _dev(be, residual.copy(), actual, baseline, velocity)  # the kernel writes the residual in place
    d = np.float32(_scalar(decay))
    dot_pred, sumsq_pred, err_abs, bits = be.residual_stats(r, g, b, v, np.float32(_scalar(dt)), np.float32(_scalar(w)), d,
                                                            np.float32(1.0 - float(d)), bounds)
    return {"residual": r, "dot_pred": dot_pred, "sumsq_pred": sumsq_pred, "err_abs_sum": np.asarray(err_abs, dtype=np.float64),
            "residual_abs_max": np.asarray(bits, dtype=np.uint32).view(np.float32)}


def wls_fit(be: Any, history: np.ndarray, steps: np.ndarray, decay: Any) -> dict:
    """Least-squares fit of history rows (oldest first) recorded at ``steps``, through the predictor's weights."""
    from ..phase._scalar import powi

    k = history.shape[0]
    (hist,) = _dev(be, history)
    d = float(np.float32(_scalar(decay)))
    w = np.array([powi(d, k - 1 - i) for i in range(k)])
    t = (steps - steps[-1]).astype(np.float64)
    wt = w * t
    sw = swt = swt2 = 0.0
    for i in range(k):
        sw, swt, swt2 = sw + w[i], swt + wt[i], swt2 + wt[i] * t[i]
    det = sw * swt2 - swt * swt
    rows, wd, wtd = _dev(be, np.arange(k, dtype=np.int64), w, wt)
    base, vel = be.wls_fit(hist, rows, wd, wtd, sw, swt, swt2, 1.0 / det)
    return {"baseline": base, "velocity": vel}


OPS = {
    "phase_trainer_run": phase_trainer_run,
    "deterministic_trainer_run": deterministic_trainer_run,
    "momentum_predictor_run": momentum_predictor_run,
    "predict_linear": predict_linear,
    "momentum_extrapolate": momentum_extrapolate,
    "axpy": axpy,
    "residual_update": residual_update,
    "residual_stats": residual_stats,
    "wls_fit": wls_fit,
    "cosine": cosine,
    "gate_budget": gate_budget,
}


def _series(kind: str, steps: int) -> np.ndarray:
    i = np.arange(steps, dtype=np.float64)
    if kind == "flat":
        return np.full(steps, 1.0, dtype=np.float32)
    if kind == "rising":
        return (1.0 + 0.02 * i).astype(np.float32)
    if kind == "falling":
        return (2.0 * 0.98**i).astype(np.float32)
    if kind == "noisy":
        rng = np.random.default_rng(7)
        return (1.0 + 0.3 * rng.random(steps)).astype(np.float32)
    raise ValueError(kind)


def _linear_grads(steps: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n)
    b = 0.01 * rng.standard_normal(n)
    return (a[None, :] + b[None, :] * np.arange(steps)[:, None]).astype(np.float32)


def _noisy_grads(steps: int, n: int, seed: int, scale: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (_linear_grads(steps, n, seed).astype(np.float64) + scale * rng.standard_normal((steps, n))).astype(np.float32)


def _switching_grads(steps: int, n: int, seed: int, switch: int, quiet: float, loud: float) -> np.ndarray:
    """One direction plus noise of scale ``quiet`` before step ``switch`` and ``loud`` from it on."""
    rng = np.random.default_rng(seed)
    scale = np.where(np.arange(steps) < switch, quiet, loud)[:, None]
    return (rng.standard_normal(n)[None, :] + scale * rng.standard_normal((steps, n))).astype(np.float32)


def cases() -> list[dict]:
    """The golden cases of this family."""
    from ..phase import DeterministicPhaseConfig, GateConfig, LossHistoryConfig, PhaseConfig, PredictionConfig

    out: list[dict] = []

    def pt(comment: str, config: Any, losses: np.ndarray, grads: np.ndarray) -> None:
        obj = config if isinstance(config, dict) else config.to_dict()
        out.append({"op": "phase_trainer_run", "comment": comment, "inputs": {"config": obj, "losses": losses, "grads": grads}})

    def dt(comment: str, config: Any, losses: np.ndarray, grads: np.ndarray) -> None:
        obj = config if isinstance(config, dict) else config.to_dict()
        out.append({"op": "deterministic_trainer_run", "comment": comment, "inputs": {"config": obj, "losses": losses, "grads": grads}})

    n = 5
    pt("crate test_phase_transitions: full=2 predict=4 correct_every=2", PhaseConfig(full_steps=2, predict_steps=4, correct_every=2), _series("flat", 12), _linear_grads(12, n, 1))
    pt("crate test_speedup_calculation: full=1 predict=3 correct_every=10, speedup 4.0", PhaseConfig(full_steps=1, predict_steps=3, correct_every=10), _series("flat", 4), _linear_grads(4, n, 2))
    pt("defaults, flat loss: no adaptive change", PhaseConfig(), _series("flat", 160), _linear_grads(160, n, 3))
    pt("defaults, rising loss: full +5 (max 50), predict -10 (min 10) per cycle", PhaseConfig(), _series("rising", 220), _noisy_grads(220, n, 4, 0.05))
    pt("defaults, falling loss: full -2 (min 5), predict +5 (max 100) per cycle", PhaseConfig(), _series("falling", 220), _noisy_grads(220, n, 5, 0.05))
    pt("rising loss with adaptive_phases=False: lengths unchanged", PhaseConfig(adaptive_phases=False), _series("rising", 150), _linear_grads(150, n, 6))
    pt("short phases full=3 predict=7 correct_every=3, noisy loss", PhaseConfig(full_steps=3, predict_steps=7, correct_every=3), _series("noisy", 90), _noisy_grads(90, n, 7, 0.2))
    pt("degenerate lengths full=0 predict=0 correct_every=1", PhaseConfig(full_steps=0, predict_steps=0, correct_every=1), _series("flat", 20), _linear_grads(20, n, 8))
    pt("momentum predictor with history_size=1 and momentum 0.5", PhaseConfig(full_steps=2, predict_steps=5, correct_every=2, prediction_config=PredictionConfig(history_size=1, momentum=0.5)), _series("flat", 30), _noisy_grads(30, n, 9, 0.1))
    pt("correct_every=0 is a ConfigError (the crate panics)", {**PhaseConfig().to_dict(), "correct_every": 0}, _series("flat", 3), _linear_grads(3, n, 10))

    dt("defaults, flat loss, linear gradients: 43 backward passes in 100 steps", DeterministicPhaseConfig(), _series("flat", 100), _linear_grads(100, n, 11))
    dt("crate test_full_cycle: warmup=3 full=2 predict=4 correct_every=2", DeterministicPhaseConfig(warmup_steps=3, full_steps=2, predict_steps=4, correct_every=2), (1.0 / np.arange(1, 21)).astype(np.float32), _linear_grads(20, n, 12))
    dt("defaults, rising loss: full +2 (max 30), predict -5 (min 5)", DeterministicPhaseConfig(), _series("rising", 200), _noisy_grads(200, n, 13, 0.05))
    dt("defaults, falling loss: full -1 (min 3), predict +3 (max 50)", DeterministicPhaseConfig(), _series("falling", 200), _noisy_grads(200, n, 14, 0.05))
    dt("noisy gradients, residual_threshold 0.05: residual-triggered corrections", DeterministicPhaseConfig(residual_threshold=0.05, warmup_steps=4, full_steps=2, predict_steps=12, correct_every=6), _series("noisy", 80), _noisy_grads(80, n, 15, 0.3))
    dt("warmup_steps=15 > history_window+2=6 ends after 15 records (the crate never ends it)", DeterministicPhaseConfig(warmup_steps=15, history_window=4, loss_history_config=LossHistoryConfig(max_history=16)), _series("flat", 40), _linear_grads(40, n, 16))
    dt("history_decay=1.0 (unweighted) and window 0 (two points)", DeterministicPhaseConfig(history_decay=1.0, history_window=0, warmup_steps=2, track_loss_history=False), _series("noisy", 50), _noisy_grads(50, n, 17, 0.1))
    dt("warmup_steps=0 behaves as 1", DeterministicPhaseConfig(warmup_steps=0, full_steps=1, predict_steps=3, correct_every=2), _series("flat", 15), _linear_grads(15, n, 18))

    n_gate = 16
    pt("gated recommended preset: predictable gradients open the gate (budget up to 4), noise from step 40 closes it",
       PhaseConfig.recommended(), _series("flat", 70), _switching_grads(70, n_gate, 23, 40, 0.05, 3.0))
    pt("gated, correct_every=2, predict_steps=6, momentum 0.5: CORRECT steps re-measure and restart the run",
       PhaseConfig(full_steps=2, predict_steps=6, correct_every=2, adaptive_phases=False,
                   prediction_config=PredictionConfig(history_size=3, momentum=0.5), gate=GateConfig(enabled=True, min_samples=2)),
       _series("noisy", 60), _switching_grads(60, n_gate, 24, 30, 0.1, 1.0))
    pt("gated, safety 4 and ema_decay 0: budget from the last cosine alone, four noise scales of margin",
       PhaseConfig(full_steps=1, predict_steps=8, correct_every=9, adaptive_phases=False,
                   prediction_config=PredictionConfig(history_size=1, momentum=0.0),
                   gate=GateConfig(enabled=True, safety=4.0, ema_decay=0.0, min_samples=1)),
       _series("flat", 50), _switching_grads(50, n_gate, 25, 25, 0.02, 0.5))
    dt("gated recommended preset: the fit's prediction quality opens and closes the gate",
       DeterministicPhaseConfig.recommended(), _series("flat", 70), _switching_grads(70, n_gate, 26, 40, 0.05, 3.0))
    dt("gated, linear gradients: exact predictions keep the budget at predict_steps; the horizon places CORRECT steps",
       DeterministicPhaseConfig(warmup_steps=3, full_steps=1, predict_steps=5, correct_every=9, history_window=2, adaptive_phases=False,
                                gate=GateConfig(enabled=True, min_samples=2)), _series("flat", 40), _linear_grads(40, n_gate, 27))

    rng = np.random.default_rng(99)
    m = 37

    def f(*shape: int) -> np.ndarray:
        return np.asarray(rng.standard_normal(shape), dtype=np.float32)

    edge = np.array([0.0, -0.0, 1e-45, -1e-45, 1.1754944e-38, 3.0e38, -3.0e38, 1.0, -1.0, 0.5, 7.0], dtype=np.float32)
    out.append({"op": "predict_linear", "comment": "random values, dt=3, w=0.95**3", "inputs": {"baseline": f(m), "velocity": f(m), "residual": f(m), "dt": 3.0, "w": float(np.float32(0.95**3))}})
    out.append({"op": "predict_linear", "comment": "signed zeros, subnormals, huge values (overflow to inf)", "inputs": {"baseline": edge, "velocity": edge[::-1].copy(), "residual": edge, "dt": 2.0, "w": 0.5}})
    out.append({"op": "momentum_extrapolate", "comment": "random values, momentum 0.9", "inputs": {"prev": f(m), "curr": f(m), "momentum": 0.9}})
    out.append({"op": "momentum_extrapolate", "comment": "edge values, momentum -1.5", "inputs": {"prev": edge, "curr": edge[::-1].copy(), "momentum": -1.5}})
    out.append({"op": "axpy", "comment": "random values, a=0.5", "inputs": {"x": f(m), "a": 0.5, "y": f(m)}})
    out.append({"op": "axpy", "comment": "a=-1: exact difference; signed zeros", "inputs": {"x": edge, "a": -1.0, "y": edge}})
    out.append({"op": "residual_update", "comment": "random values, dt=4, decay 0.95", "inputs": {"residual": f(m), "actual": f(m), "baseline": f(m), "velocity": f(m), "dt": 4.0, "decay": 0.95}})
    steps = np.array([0, 1, 2, 4, 5, 9, 10], dtype=np.int64)
    out.append({"op": "wls_fit", "comment": "seven rows at irregular steps, decay 0.95", "inputs": {"history": f(7, m), "steps": steps, "decay": 0.95}})
    lin = np.asarray(1.0 + 0.25 * steps[:, None] * np.ones((1, m)), dtype=np.float32)
    out.append({"op": "wls_fit", "comment": "exactly linear rows: baseline 3.5, velocity 0.25", "inputs": {"history": lin, "steps": steps, "decay": 0.9}})
    big = np.array([3.0e38, -3.0e38, 1.0], dtype=np.float32)
    for comment, a, b in (
        ("random vectors", f(m), f(m)),
        ("parallel: cosine 1", np.arange(1, 8, dtype=np.float32), 2 * np.arange(1, 8, dtype=np.float32)),
        ("opposite: cosine -1", np.arange(1, 8, dtype=np.float32), -np.arange(1, 8, dtype=np.float32)),
        ("a zero vector: cosine 0", np.zeros(5, np.float32), f(5)),
        ("subnormal entries", np.array([1e-45, 2e-45, -1e-45], np.float32), np.array([1e-45, 1e-45, 1e-45], np.float32)),
        ("huge entries: float64 sums stay finite", big, big[::-1].copy()),
        ("an infinite entry: cosine 0", np.array([np.inf, 1.0], np.float32), np.array([1.0, 1.0], np.float32)),
    ):
        out.append({"op": "cosine", "comment": comment, "inputs": {"a": a, "b": b}})
    gate_on = GateConfig(enabled=True).to_dict()
    for comment, cfg, q, last, samples, cap in (
        ("q = 0.5: k = floor(1) - 1 = 0", gate_on, 0.5, 0.9, 5, 4),
        ("q = f32(2/3) = 0.6666667: x = 2.0000002, k = 1", gate_on, float(np.float32(2 / 3)), 0.9, 5, 4),
        ("q = min(quality, last): the last cosine 0.8 limits k to 3", gate_on, 0.95, 0.8, 5, 8),
        ("q = 0.95, cap 4: k = min(18, 4)", gate_on, 0.95, 0.99, 5, 4),
        ("fewer than min_samples measurements: 0", gate_on, 0.99, 0.99, 2, 4),
        ("q <= 0: 0", gate_on, -0.2, 0.5, 5, 4),
        ("q = 1: the cap", gate_on, 1.0, 1.0, 5, 6),
        ("safety 2: q = 0.9 gives floor(4.5) - 1 = 3", GateConfig(enabled=True, safety=2.0).to_dict(), 0.9, 0.9, 5, 8),
    ):
        out.append({"op": "gate_budget", "comment": comment,
                    "inputs": {"config": cfg, "quality": q, "last": last, "samples": samples, "cap": cap}})

    def mp(comment: str, config: PredictionConfig, actions: list[str], grads: np.ndarray) -> None:
        out.append({"op": "momentum_predictor_run", "comment": comment,
                    "inputs": {"config": config.to_dict(), "grads": grads, "actions": actions}})

    mp("two corrections against one prediction: the stored prediction is kept after a correction", PredictionConfig(),
       ["record", "record", "predict", "correct", "correct", "apply"], _noisy_grads(6, n, 19, 0.2))
    mp("a CORRECT record: record, then correct; a second apply changes nothing", PredictionConfig(history_size=2, momentum=0.5),
       ["record", "record", "predict", "record_correct", "apply", "apply", "predict", "record_correct", "record_correct", "apply"],
       _noisy_grads(10, n, 20, 0.2))
    mp("no prediction yet: a correction is empty; one record predicts a copy", PredictionConfig(),
       ["correct", "record_correct", "predict", "correct", "apply"], _linear_grads(5, n, 21))
    mp("ten corrections: recent error over the last ten, newest first", PredictionConfig(prediction_steps=20),
       ["record", "record", "predict"] + ["correct"] * 11, _noisy_grads(14, n, 22, 1.0))
    n_rs = 2 * 8192 + 300
    rs_rng = np.random.default_rng(101)  # its own draws: the cases above keep theirs
    rs = dict(zip(("residual", "actual", "baseline", "velocity"), rs_rng.standard_normal((4, n_rs)).astype(np.float32)))
    rs["actual"] *= np.float32(1e3)
    rs["actual"][::97] *= np.float32(1e20)  # sums whose float64 value depends on the order
    out.append({"op": "residual_stats", "comment": "segments cut off lane rows and across both block boundaries (an empty one too); dt=4, w=0.95**2",
                "inputs": {**rs, "dt": 4.0, "w": float(np.float32(0.95**2)), "decay": 0.95,
                           "bounds": np.array([0, 5, 8191, 8200, 8200, 16390, n_rs], dtype=np.int64)}})
    out.append({"op": "residual_stats", "comment": "edge values: signed zeros, subnormals, overflow to inf in the error and the residual",
                "inputs": {"residual": edge, "actual": edge[::-1].copy(), "baseline": edge, "velocity": edge, "dt": 1.0, "w": 1.0,
                           "decay": 0.5, "bounds": np.array([0, 4, edge.shape[0]], dtype=np.int64)}})
    empty = np.zeros(0, dtype=np.float32)
    out.append({"op": "residual_stats", "comment": "empty: no segment has an element; sums 0",
                "inputs": {"residual": empty, "actual": empty, "baseline": empty, "velocity": empty, "dt": 2.0, "w": 0.5, "decay": 0.9,
                           "bounds": np.array([0, 0], dtype=np.int64)}})
    out.append({"op": "residual_stats", "comment": "a decreasing bound (a segment of negative length) is rejected",
                "inputs": {**{k: a[:40] for k, a in rs.items()}, "dt": 1.0, "w": 1.0, "decay": 0.5,
                           "bounds": np.array([0, 30, 20, 40], dtype=np.int64)}})
    out.extend(_v7_cases())
    out.extend(_v8_cases())
    return out


# --- spec v7: planted boundaries, float32/float64 gaps and the paths no case above reaches ------------------------

def _trend_window(early: list[float], late: list[float]) -> np.ndarray:
    """Twenty float32 losses (the oldest ten, then the newest ten) and one more for the step that reads them."""
    return np.array(early + late + [1.0], dtype=np.float32)


def _mean_of_ten(x: np.float32) -> np.float32:
    """The adaptive rule's mean of ten equal float32 losses (sequential float32 sum, divided by 10)."""
    acc = np.float32(0.0)
    for _ in range(10):
        acc = np.float32(acc + x)
    return np.float32(acc / np.float32(10.0))


def _planted(early: float, factor: float) -> float:
    """A late loss exactly at ``f32(early * factor)`` (ten of them average to it; checked)."""
    x = np.float32(np.float32(early) * np.float32(factor))
    if _mean_of_ten(x) != x:
        raise ValueError(f"ten losses of {x} do not average to it")
    return float(x)


def _trend_cases() -> list[tuple[str, float, np.ndarray]]:
    """``(comment, loss_threshold, 21 losses)``: the rule reads the first twenty when step 20 enters FULL."""
    f32 = np.float32
    tiny = [1.0] + [2.0**-24] * 9  # float32 sum 1.0 (each 2**-24 lost); float64 sum 1 + 9 * 2**-24
    tiny_mean = float(f32(f32(1.0) / f32(10.0)))
    up = float(np.nextafter(f32(f32(tiny_mean) * f32(1.25)), f32(np.inf)))
    down = f32(f32(tiny_mean) * f32(0.95))
    for _ in range(3):
        down = np.nextafter(down, f32(np.inf))
    return [
        ("exactly 20 losses, late mean 2 > early mean 1 * 1.1: rising already at 20 (the rule needs >= 20, not > 20)",
         0.1, _trend_window([1.0] * 10, [2.0] * 10)),
        ("late mean exactly early * (1 + 0.25) = 1.25: not rising (> is strict)", 0.25, _trend_window([1.0] * 10, [1.25] * 10)),
        ("late mean 19 exactly f32(early 20 * f32(0.95)) = 19: not falling (< is strict)", 0.1, _trend_window([20.0] * 10, [19.0] * 10)),
        ("late mean exactly f32(1.125 * f32(1 + 0.1)): not rising; early * (1 + threshold) in float64 is below it",
         0.1, _trend_window([1.125] * 10, [_planted(1.125, 1.1)] * 10)),
        ("late mean exactly f32(1.625 * f32(0.95)): not falling; early * 0.95 in float64 is above it",
         0.1, _trend_window([1.625] * 10, [_planted(1.625, 0.95)] * 10)),
        ("early losses 1 and nine 2**-24: the float32 sum drops each 2**-24 (mean f32(0.1)); late one float32 above "
         "f32(0.1 * 1.25): rising (a float64 sum of the early losses is larger and hides it)", 0.25, _trend_window(tiny, [up] * 10)),
        ("early losses 1 and nine 2**-24, late three float32 steps above f32(f32(0.1) * 0.95): not falling "
         "(float64 sums or means of the early losses make it falling)", 0.25, _trend_window(tiny, [float(down)] * 10)),
    ]


def _v7_cases() -> list[dict]:
    """Spec v7 schedule cases (appended after the v6 ones, whose tcIds they keep)."""
    from ..phase import DeterministicPhaseConfig, GateConfig, PhaseConfig, PredictionConfig

    out: list[dict] = []
    n = 2

    def run(op: str, comment: str, config: Any, losses: np.ndarray, grads: np.ndarray) -> None:
        out.append({"op": op, "comment": comment, "inputs": {"config": config.to_dict(), "losses": losses, "grads": grads}})

    for comment, threshold, losses in _trend_cases():
        steps = losses.shape[0]
        run("phase_trainer_run", f"adaptive rule at step 20: {comment}",
            PhaseConfig(full_steps=1, predict_steps=3, correct_every=10, loss_threshold=threshold), losses, _linear_grads(steps, n, 40))
        run("deterministic_trainer_run", f"adaptive rule at step 20: {comment}",
            DeterministicPhaseConfig(warmup_steps=4, full_steps=1, predict_steps=3, correct_every=10, history_window=2,
                                     loss_threshold=threshold, residual_threshold=1e30), losses, _linear_grads(steps, n, 41))
    dropped = np.ones(103, dtype=np.float32)
    dropped[1] = 11.0  # the oldest of the 100 losses the rule reads at step 101: early mean 2, late 1 (falling)
    run("phase_trainer_run", "101 losses: the window keeps the newest 100, so loss 1 (11, the rest 1) makes the early mean 2: "
        "falling at step 101 (a window of 99 drops it)", PhaseConfig(full_steps=1, predict_steps=100, correct_every=200),
        dropped, _linear_grads(103, n, 42))
    run("deterministic_trainer_run", "101 losses: the window keeps the newest 100, so loss 1 (11, the rest 1) makes the early "
        "mean 2: falling when step 101 enters FULL (a window of 99 drops it)",
        DeterministicPhaseConfig(warmup_steps=1, full_steps=1, predict_steps=100, correct_every=200, history_window=2,
                                 residual_threshold=1e30), dropped, _linear_grads(103, n, 43))
    run("phase_trainer_run", "full_steps 55 above the maximum 50, rising loss: the rule caps full at min(55 + 5, 50) = 50",
        PhaseConfig(full_steps=55, predict_steps=3, correct_every=10), _series("rising", 62), _linear_grads(62, n, 44))
    run("phase_trainer_run", "predict_steps 99, falling loss: the rule caps predict at min(99 + 5, 100) = 100",
        PhaseConfig(full_steps=1, predict_steps=99, correct_every=200), _series("falling", 102), _linear_grads(102, n, 45))
    run("deterministic_trainer_run", "full_steps 29, rising loss: full min(29 + 2, 30) = 30; predict_steps 49, falling "
        "later: predict min(49 + 3, 50) = 50", DeterministicPhaseConfig(warmup_steps=2, full_steps=29, predict_steps=49,
                                                                      correct_every=100, residual_threshold=1e30),
        np.concatenate([_series("rising", 60), _series("falling", 100)]), _linear_grads(160, n, 46))
    run("deterministic_trainer_run", "history_decay 0.3: 1 - decay is inexact in float32 (the residual's (1 - decay) * error "
        "is a float32 product with f32(1 - f32(0.3)))", DeterministicPhaseConfig(history_decay=0.3, warmup_steps=3, full_steps=2,
                                                                               predict_steps=6, correct_every=3, residual_threshold=1e30),
        _series("flat", 30), _noisy_grads(30, 8, 47, 0.3))
    spike = np.zeros((90, 16), dtype=np.float32)
    spike[46] = _noisy_grads(1, 16, 48, 1.0)[0]  # only the CORRECT step's row is nonzero: the residual is, the fit is 0
    run("deterministic_trainer_run", "history_decay f32(0.9592975), 40 PREDICT steps: after the CORRECT at step 46 the "
        "two-point fit is 0 and step 87 predicts f32(residual * f32(decay**37)), decay**k by binary exponentiation (the "
        "library pow and 37 successive products round f32(decay**37) one step higher)",
        DeterministicPhaseConfig(history_decay=0.9592975378036499, warmup_steps=3, full_steps=3, predict_steps=40,
                                 correct_every=100, history_window=0, residual_threshold=1e30, adaptive_phases=False),
        _series("flat", 90), spike)
    out.extend(_residual_threshold_cases(run))
    for compression in ("bfloat16", "ternary"):
        run("phase_trainer_run", f"history_compression {compression!r}: predictions and corrections from decoded rows",
            PhaseConfig(full_steps=3, predict_steps=4, correct_every=2, adaptive_phases=False,
                        prediction_config=PredictionConfig(history_size=3, momentum=0.5, history_compression=compression)),
            _series("flat", 20), _noisy_grads(20, 6, 49, 0.2))
        run("deterministic_trainer_run", f"history_compression {compression!r}: the fit reads decoded rows; residual and "
            "telemetry from them", DeterministicPhaseConfig(warmup_steps=4, full_steps=2, predict_steps=5, correct_every=3,
                                                            history_window=3, history_compression=compression, adaptive_phases=False,
                                                            gate=GateConfig(enabled=True, min_samples=1)),
            _series("flat", 24), _noisy_grads(24, 6, 50, 0.2))
    out.extend(_kernel_cases())
    out.extend(_residual_threshold_cases(run, data_seed=33, n=5))
    low = np.ones(103, dtype=np.float32)
    low[1] = 0.0  # the oldest of the 100 losses read at step 101: early mean 0.9, late 1 (rising)
    run("phase_trainer_run", "101 losses: the window keeps the newest 100, so loss 1 (0, the rest 1) makes the early mean "
        "0.9: rising at step 101 (a window of 99 drops it and sees a flat loss)",
        PhaseConfig(full_steps=1, predict_steps=100, correct_every=200), low, _linear_grads(103, n, 51))
    return out


def _residual_threshold_cases(run: Any, data_seed: int = 31, n: int = 3) -> list[dict]:
    """A residual_threshold equal to the largest residual the run reaches: never exceeded, so never a trigger."""
    from ..phase import DeterministicPhaseConfig, DeterministicPhaseTrainer

    grads, losses = _noisy_grads(40, n, data_seed, 0.3), _series("flat", 40)
    base: dict[str, Any] = dict(warmup_steps=4, full_steps=2, predict_steps=12, correct_every=6, adaptive_phases=False)
    probe = DeterministicPhaseTrainer([("g", (n,))], DeterministicPhaseConfig(residual_threshold=1e30, **base), backend="numpy")
    peak = 0.0
    for step in range(40):
        info = probe.begin_step()
        if info.needs_backward:
            probe.record_full_gradients({"g": grads[step]})
        else:
            probe.get_predicted_gradients()
        probe.end_step(float(losses[step]))
        peak = max(peak, float(np.float32(np.max(np.abs(probe.state_dict()["arrays"]["predictor.residual"])))))
    out: list[dict] = []
    run("deterministic_trainer_run", f"residual_threshold {peak!r}, exactly the largest |residual| the run reaches: no "
        "residual-triggered CORRECT (the trigger is > threshold, not >=)", DeterministicPhaseConfig(residual_threshold=peak, **base),
        losses, grads)
    return out


def _kernel_cases() -> list[dict]:
    """Kernel cases with inexact multipliers and planted float64 midpoints."""
    rng = np.random.default_rng(2025)
    m = 41

    def f(*shape: int) -> np.ndarray:
        return np.asarray(rng.standard_normal(shape), dtype=np.float32)

    out: list[dict] = []
    for a in (0.1, 1 / 3):
        out.append({"op": "axpy", "comment": f"a = f32({a:.4g}), inexact: x + a*y rounds the product, then the sum (no fused multiply-add)",
                    "inputs": {"x": f(m), "a": float(np.float32(a)), "y": f(m)}})
    for decay in (0.3, 0.1):
        out.append({"op": "residual_update", "comment": f"decay {decay}: 1 - f32(decay) is not a float32; the kernel takes "
                    "f32(1 - decay) and multiplies in float32", "inputs": {"residual": f(m), "actual": f(m), "baseline": f(m),
                                                                           "velocity": f(m), "dt": 3.0, "decay": decay}})
    out.append({"op": "wls_fit", "comment": "rows at steps 0, 1, 3, decay 1: det 14, so 1/det is inexact; baselines a hair below "
                "float32 midpoints: the sums times the float64 reciprocal of det (not divided by det)", "inputs": {"history": _midpoint_rows(), "steps": np.array([0, 1, 3], dtype=np.int64),
                                                         "decay": 1.0}})
    cfg = {"enabled": True, "safety": 1.1, "ema_decay": 0.8, "min_samples": 3}
    out.append({"op": "gate_budget", "comment": "safety 1.1 is f32(1.1) = 1.1000000238: q = 0.6875 gives x = 1.99999996, "
                "k = 0 (with a float64 safety x = 2 exactly and k = 1)",
                "inputs": {"config": cfg, "quality": 0.6875, "last": 0.6875, "samples": 5, "cap": 8}})
    out.append({"op": "gate_budget", "comment": "safety 1.1 is f32(1.1): q = f32(0.97237569) gives k = 30 (with a float64 "
                "safety 31)", "inputs": {"config": cfg, "quality": 0.9723756909370422, "last": 0.99, "samples": 5, "cap": 40}})
    for decay in (0.2, 0.4):
        out.append({"op": "residual_update", "comment": f"decay {decay}: 1 - f32(decay) is not a float32 (decay below "
                    "1/2); the kernel multiplies the error by f32(1 - decay) in float32, not by the float64 difference", "inputs": {"residual": f(m), "actual": f(m),
                                                                                   "baseline": f(m), "velocity": f(m),
                                                                                   "dt": 2.0, "decay": decay}})
    out.append({"op": "wls_fit", "comment": "rows at steps 0, 1, 3, decay 1, baselines a hair below the float32 midpoints "
                "1 + odd * 2**-24 for odd from 161: the sums times the float64 reciprocal of det 14",
                "inputs": {"history": _midpoint_rows(161), "steps": np.array([0, 1, 3], dtype=np.int64), "decay": 1.0}})
    for i, j in ((0, 2), (1, 3)):
        u, v = cosine_midpoint_pair(i, j)
        out.append({"op": "cosine", "comment": f"|a|^2 = |b|^2 = 2 and a.b / 2 an odd multiple of 2**-25 "
                    f"(b: entries {i}, {j} of a swapped): the exact cosine is a float32 midpoint; dot / (sqrt(A) * "
                    "sqrt(B)) rounds below it (sqrt(A * B) would be exact and round the tie to even, up)",
                    "inputs": {"a": u, "b": v}})
    return out


def _midpoint_rows(first: int = 1) -> np.ndarray:
    """Three history rows (steps 0, 1, 3; weights 1): baselines ``(-2 g0 + 3 g1 + 13 g2) / 14`` a hair below a float32 midpoint.

    ``g2 = 1``, ``g0 = -2**-53`` and ``g1 = f32((14 m - 13 + 2 g0) / 3)`` for the midpoints ``m = 1 + odd * 2**-24``
    (80 odd numbers from ``first``):
    the float64 value of the baseline sits within an ulp of ``m``, where the product with the float64 reciprocal of
    ``det`` and a division by ``det`` round to different sides of the tie.
    """
    g0 = -(2.0**-53)
    cols = []
    for j in range(first, first + 159, 2):
        m = 1.0 + j * 2.0**-24
        cols.append((g0, float(np.float32((14 * m - 13 + 2 * g0) / 3)), 1.0))
    return np.array(cols, dtype=np.float32).T.copy()


# --- spec v8: dormant measurement (section 11) ------------------------------------------------------------------------

def _stretch_grads(n: int, seed: int, stretches: list[tuple[int, float]]) -> np.ndarray:
    """One fixed direction plus noise: ``stretches`` of ``(steps, noise scale)`` in order (loud: the gate closes)."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(n)
    scale = np.concatenate([np.full(k, s) for k, s in stretches])[:, None]
    return (base[None, :] + scale * rng.standard_normal((scale.shape[0], n))).astype(np.float32)


def _measured_steps(config: Any, grads: np.ndarray) -> list[int]:
    """The steps whose record the reference measures (recorded real steps that are not a dormant sample's primes)."""
    from ..backend import get_backend
    from ..phase import PhaseTrainer

    trainer = PhaseTrainer([("g", (grads.shape[1],))], config, backend=get_backend("numpy"))
    out = []
    for step in range(grads.shape[0]):
        info = trainer.begin_step()
        if info.needs_backward:
            measured = info.records and not trainer._monitor.dormancy.priming
            trainer.record_full_gradients({"g": grads[step]})
            if measured:
                out.append(step)
        else:
            trainer.get_predicted_gradients()
        trainer.end_step(1.0)
    return out


def _v8_cases() -> list[dict]:
    """Spec v8 schedule cases: dormant measurement while the gate stays closed."""
    from ..phase import DeterministicPhaseConfig, GateConfig, PhaseConfig, PredictionConfig

    out: list[dict] = []
    n = 16

    def run(op: str, comment: str, config: Any, grads: np.ndarray) -> None:
        obj = config if isinstance(config, dict) else config.to_dict()
        losses = _series("flat", grads.shape[0])
        out.append({"op": op, "comment": comment, "inputs": {"config": obj, "losses": losses, "grads": grads}})

    loud_then_quiet = _stretch_grads(n, 60, [(150, 3.0), (110, 0.02)])
    run("phase_trainer_run", "recommended preset, 150 noisy steps then predictable ones: dormant after 8 closed measurements, "
        "gaps 8, 16, 32, 64, 64 (one priming record each, history_size 1); the first sample on the predictable "
        "gradients wakes it (its cosine alone would open the gate), and the gate opens as the average recovers", PhaseConfig.recommended(), loud_then_quiet)
    run("deterministic_trainer_run", "recommended preset, 150 noisy steps then predictable ones: samples of 4 priming "
        "records (history_window + 2) and one measured", DeterministicPhaseConfig.recommended(), loud_then_quiet)
    gate = GateConfig(enabled=True, min_samples=2, dormant_after=3, dormant_max_gap=5)
    run("phase_trainer_run", "history_size 3, momentum 0.5: 2 priming records (min(history_size, 2)); dormant_after 3, gaps "
        "3, 5, 5 (capped by dormant_max_gap); CORRECT steps measure too; open, closed, open, closed",
        PhaseConfig(full_steps=2, predict_steps=6, correct_every=2, adaptive_phases=False,
                    prediction_config=PredictionConfig(history_size=3, momentum=0.5), gate=gate),
        _stretch_grads(n, 61, [(30, 0.05), (50, 3.0), (30, 0.05), (40, 3.0)]))
    run("deterministic_trainer_run", "warmup_steps 10 > dormant_after 1: warmup records measure no prediction and do not "
        "count; dormant_max_gap 1: every other real step recorded in samples of history_window + 2 = 3 primes and one measured",
        DeterministicPhaseConfig(warmup_steps=10, full_steps=1, predict_steps=4, correct_every=5, history_window=1,
                                 adaptive_phases=False, gate=GateConfig(enabled=True, min_samples=1, dormant_after=1,
                                                                        dormant_max_gap=1)),
        _stretch_grads(n, 62, [(60, 3.0), (30, 0.02)]))
    wake = PhaseConfig(full_steps=1, predict_steps=4, correct_every=5, adaptive_phases=False,
                       prediction_config=PredictionConfig(history_size=1, momentum=0.0),
                       gate=GateConfig(enabled=True, safety=2.0, dormant_after=6, dormant_max_gap=4))
    planted = _stretch_grads(n, 63, [(120, 3.0)])
    measured = _measured_steps(wake, planted)
    hit = [t for s, t in zip(measured, measured[1:]) if t - s > 1][1]  # the second dormant sample's measured step
    planted[hit] = planted[hit - 1]  # cosine 1 with the primed record: wakes; the average (about 0.2) keeps the gate closed
    run("phase_trainer_run", f"dormant_after 6 > dormant_max_gap 4: every gap is 4; step {hit} repeats its primed gradient "
        "(cosine 1 alone would open the gate): awake with the gate still closed (the average about 0.2), then 6 more closed "
        "measurements before the next gap; rho restarts at each sample", wake, planted)
    base = PhaseConfig.recommended().to_dict()
    for field, value in (("dormant_after", -1), ("dormant_max_gap", 0)):
        run("phase_trainer_run", f"gate.{field} = {value} is a ConfigError",
            {**base, "gate": {**base["gate"], field: value}}, _stretch_grads(2, 64, [(3, 1.0)]))
    return out
