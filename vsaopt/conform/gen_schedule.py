"""Conform strategies of the schedule family: both trainers, the momentum predictor, the prediction kernels, the gate."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .gen_common import f32_vectors, f64, mostly, rarely

__all__ = ["STRATEGIES"]

_FLOATS = [0.0, 0.5, 0.9, 1.0, 0.95, 0.1, 2.0, float(np.float32(0.95) ** 3)]


def _finite(x: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(x), x, np.float32(1.0)).astype(np.float32)


@st.composite
def _gate(draw: Any) -> dict:
    return {"enabled": draw(st.booleans()), "safety": draw(mostly([1.0, 2.0, 4.0], [0.0], 30)),
            "ema_decay": draw(mostly([0.8, 0.0, 0.5], [1.0], 30)), "min_samples": draw(mostly([1, 2, 3], [0], 30)),
            "dormant_after": draw(mostly([0, 1, 2, 3], [-1], 30)), "dormant_max_gap": draw(mostly([1, 2, 5, 64], [0], 30))}


@st.composite
def _prediction(draw: Any) -> dict:
    return {"history_size": draw(mostly([1, 2, 3, 5], [0], 30)), "prediction_steps": draw(st.integers(1, 6)),
            "momentum": draw(st.sampled_from([0.9, 0.5, 0.0, 1.0])), "correction_weight": draw(st.sampled_from([0.5, 1.0, 0.0])),
            "min_correlation": draw(st.sampled_from([0.8, 0.0, 0.99])),
            "history_compression": draw(st.sampled_from(["none", "none", "bfloat16", "ternary"]))}


@st.composite
def _losses_grads(draw: Any, max_steps: int = 30) -> tuple[np.ndarray, np.ndarray]:
    steps, n = draw(st.integers(1, max_steps)), draw(st.integers(1, 6))
    i = np.arange(steps, dtype=np.float64)
    kind = draw(st.sampled_from(["flat", "rising", "falling", "drawn"]))
    if kind == "drawn":
        losses = np.clip(_finite(draw(f32_vectors(length=steps))), -1e6, 1e6).astype(np.float32)
    else:
        losses = {"flat": np.ones(steps), "rising": 1.0 + 0.02 * i, "falling": 2.0 * 0.98**i}[kind].astype(np.float32)
    base = np.clip(_finite(draw(f32_vectors(length=n))), -4.0, 4.0)
    slope = np.float32(draw(st.sampled_from([0.0, 0.01, 0.1])))
    noise = np.float32(draw(st.sampled_from([0.0, 0.05, 1.0])))
    jitter = draw(hnp.arrays(np.float32, (steps, n), elements=st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0])))
    grads = (base[None, :] + slope * i[:, None].astype(np.float32) + noise * jitter).astype(np.float32)
    return losses, grads


@st.composite
def _phase_trainer_run(draw: Any) -> dict:
    config = {"full_steps": draw(st.integers(0, 4)), "predict_steps": draw(st.integers(0, 8)),
              "correct_every": draw(mostly([1, 2, 3, 4], [0], 20)), "prediction_config": draw(_prediction()),
              "ternary_config": {"accumulation_steps": 8, "ternary_threshold": 0.5, "scale_learning_rate": 0.01,
                                 "use_stochastic_rounding": True, "seed": 0},
              "vsa_config": {"dimension": 8192, "compression_ratio": 0.1, "use_ternary": True, "seed": 42},
              "gradient_accumulation": 1, "max_grad_norm": 1.0, "adaptive_phases": draw(st.booleans()),
              "loss_threshold": draw(st.sampled_from([0.1, 0.0, 0.5])), "gate": draw(_gate())}
    _gated_consistent(draw, config)
    losses, grads = draw(_losses_grads())
    return {"config": config, "losses": losses, "grads": grads}


def _gated_consistent(draw: Any, config: dict) -> None:
    """Mostly a valid gated config: the gate replaces the adaptive rule and needs real steps."""
    if config["gate"]["enabled"] and not draw(rarely(20)):
        config["adaptive_phases"] = False
        config["full_steps"] = max(1, config["full_steps"])


@st.composite
def _deterministic_trainer_run(draw: Any) -> dict:
    config = {"warmup_steps": draw(st.integers(0, 6)), "full_steps": draw(st.integers(0, 4)),
              "predict_steps": draw(st.integers(0, 8)), "correct_every": draw(mostly([1, 2, 3, 4], [0], 20)),
              "history_window": draw(st.integers(0, 4)), "adaptive_phases": draw(st.booleans()),
              "loss_threshold": draw(st.sampled_from([0.1, 0.0])), "max_grad_norm": 1.0,
              "track_loss_history": draw(st.booleans()),
              "loss_history_config": {"max_history": draw(st.sampled_from([1000, 16, 2])), "rolling_window": 20,
                                      "spike_threshold": 3.0, "divergence_threshold": 1.2, "convergence_window": 50,
                                      "convergence_threshold": 0.01},
              "history_decay": draw(st.sampled_from([0.95, 1.0, 0.5, 0.0])),
              "residual_threshold": draw(st.sampled_from([0.5, 0.05, 0.0])), "gate": draw(_gate()),
              "history_compression": draw(st.sampled_from(["none", "bfloat16", "ternary"]))}
    _gated_consistent(draw, config)
    losses, grads = draw(_losses_grads())
    return {"config": config, "losses": losses, "grads": grads}


@st.composite
def _momentum_predictor_run(draw: Any) -> dict:
    actions = draw(st.lists(st.sampled_from(["record", "record", "record_correct", "predict", "correct", "apply"]),
                            min_size=1, max_size=14))
    _, grads = draw(_losses_grads())
    reps = -(-len(actions) // grads.shape[0])
    return {"config": draw(_prediction()), "grads": np.tile(grads, (reps, 1))[: len(actions)].copy(), "actions": actions}


@st.composite
def _vectors(draw: Any, count: int, finite: bool = False) -> list:
    n = draw(st.integers(0, 40))
    out = [draw(f32_vectors(length=n)) for _ in range(count)]
    return [_finite(v) for v in out] if finite else out


def _scalar(values: list) -> st.SearchStrategy[np.float64]:
    return st.sampled_from(values).map(f64)


@st.composite
def _predict_linear(draw: Any) -> dict:
    b, v, r = draw(_vectors(3))
    return {"baseline": b, "velocity": v, "residual": r, "dt": draw(_scalar([0.0, 1.0, 2.0, 3.0, 4.0])),
            "w": draw(_scalar(_FLOATS))}


@st.composite
def _momentum_extrapolate(draw: Any) -> dict:
    p, c = draw(_vectors(2))
    return {"prev": p, "curr": c, "momentum": draw(_scalar([0.9, -1.5, 0.0, 1.0, 0.5]))}


@st.composite
def _axpy(draw: Any) -> dict:
    x, y = draw(_vectors(2))
    return {"x": x, "a": draw(_scalar([0.5, -1.0, 0.0, 3.0, 1e-40])), "y": y}


@st.composite
def _residual_update(draw: Any) -> dict:
    r, a, b, v = draw(_vectors(4))
    return {"residual": r, "actual": a, "baseline": b, "velocity": v, "dt": draw(_scalar([1.0, 4.0, 0.0])),
            "decay": draw(_scalar([0.95, 0.5, 0.0, 1.0]))}


@st.composite
def _residual_stats(draw: Any) -> dict:
    r, a, b, v = draw(_vectors(4, finite=True))
    n = r.shape[0]
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
    bounds = np.array([0, *cuts, n], dtype=np.int64)
    if draw(rarely(10)) and bounds.size > 2:
        bounds[1], bounds[2] = bounds[2] + 1, bounds[1]  # a decreasing bound: rejected
    return {"residual": r, "actual": a, "baseline": b, "velocity": v, "dt": draw(_scalar([1.0, 4.0])),
            "w": draw(_scalar([1.0, 0.5, float(np.float32(0.95) ** 2)])), "decay": draw(_scalar([0.95, 0.5])), "bounds": bounds}


@st.composite
def _wls_fit(draw: Any) -> dict:
    k, m = draw(st.integers(2, 8)), draw(st.integers(0, 20))
    steps = np.cumsum(draw(hnp.arrays(np.int64, (k,), elements=st.integers(1, 5)))) - 1
    history = np.clip(_finite(draw(f32_vectors(length=k * m))), -1e6, 1e6).astype(np.float32).reshape(k, m)
    return {"history": history, "steps": steps.astype(np.int64), "decay": draw(_scalar([0.95, 0.9, 1.0, 0.5]))}


@st.composite
def _cosine(draw: Any) -> dict:
    a, b = draw(_vectors(2))
    if draw(st.booleans()):
        b = (a * np.float32(draw(st.sampled_from([2.0, -1.0, 0.5])))).astype(np.float32)  # parallel: cosine exactly +-1
    return {"a": a, "b": b}


@st.composite
def _gate_budget(draw: Any) -> dict:
    quality = draw(st.sampled_from([0.5, float(np.float32(2 / 3)), 0.95, 1.0, -0.2, 0.0, 0.9, 0.75, 0.8]))
    return {"config": {**draw(_gate()), "enabled": True}, "quality": f64(quality),
            "last": f64(draw(st.sampled_from([0.9, 0.8, 0.99, 1.0, 0.5, quality]))),
            "samples": draw(st.integers(0, 6)), "cap": draw(st.integers(0, 10))}


STRATEGIES = {
    "schedule.phase_trainer_run": _phase_trainer_run(),
    "schedule.deterministic_trainer_run": _deterministic_trainer_run(),
    "schedule.momentum_predictor_run": _momentum_predictor_run(),
    "schedule.predict_linear": _predict_linear(),
    "schedule.momentum_extrapolate": _momentum_extrapolate(),
    "schedule.axpy": _axpy(),
    "schedule.residual_update": _residual_update(),
    "schedule.residual_stats": _residual_stats(),
    "schedule.wls_fit": _wls_fit(),
    "schedule.cosine": _cosine(),
    "schedule.gate_budget": _gate_budget(),
}
