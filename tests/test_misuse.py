"""Misuse survey: bad arguments and wrong call orders across the public API (checkpoint contents aside).

Each case builds a fresh target, snapshots it, makes one bad call and checks that

- the call raises the expected :class:`~vsaopt.errors.OptimError` subclass,
- the message names the argument (or method) at fault,
- the target's snapshot is unchanged (``state_dict()`` where it exists: array bytes and header JSON), and
- the next valid call gives the same result as on a target that never saw the bad call.

The cases are data (:data:`CASES`); add a row to extend the survey.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest

from vsaopt import ternary, vsa
from vsaopt.accumulator import TernaryGradientAccumulator
from vsaopt.backend import get_backend
from vsaopt.compressor import VSAGradientCompressor
from vsaopt.wire import CompressedGradients
from vsaopt.config import TernaryConfig, VSAConfig
from vsaopt.errors import (
    CheckpointError,
    ConfigError,
    DTypeError,
    EncodingError,
    NonFiniteError,
    OptimError,
    PhaseError,
    ShapeError,
)
from vsaopt.phase import (
    DeterministicPhaseConfig,
    DeterministicPhaseTrainer,
    LossHistoryConfig,
    PhaseConfig,
    PhaseTrainer,
)
from vsaopt.vsa import map as vmap

SHAPES = [("w", (3, 4)), ("b", (4,))]


def _grads(seed: int = 0, **override: Any) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    g = {n: rng.standard_normal(s).astype(np.float32) for n, s in SHAPES}
    g.update(override)
    return g


def freeze(value: Any) -> Any:
    """A comparable picture of ``value``: arrays by dtype, shape and bytes; dicts by sorted JSON-able items."""
    if isinstance(value, np.ndarray) or type(value).__module__.split(".")[0] == "cupy":
        a = np.asarray(value.get() if hasattr(value, "get") else value)
        return ("array", a.dtype.str, a.shape, a.tobytes())
    if isinstance(value, dict):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, np.generic):
        return ("scalar", value.dtype.str, value.tobytes())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, freeze(dataclasses.asdict(value)))
    return json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def snapshot(target: Any) -> Any:
    """``state_dict()`` where it exists (header as JSON, arrays as bytes); else the target's own picture."""
    if hasattr(target, "state_dict"):
        sd = target.state_dict()
        if isinstance(sd, dict) and "header" in sd:
            return json.dumps(sd["header"], sort_keys=True), freeze(sd.get("arrays", {}))
        return freeze(sd)
    if hasattr(target, "to_json"):
        return target.to_json()
    return freeze(target)


class Case(NamedTuple):
    """One kind of misuse."""

    id: str
    #: Builds a fresh target (an object, or a dict of the arrays a free function is given).
    build: Callable[[], Any]
    #: The bad call on the target.
    bad: Callable[[Any], Any]
    #: The error class expected.
    error: type[OptimError]
    #: A word the message must contain (the argument or method at fault).
    names: str
    #: The next valid call; its result is compared with the same call on an untouched target.
    good: Callable[[Any], Any]


# --- builders -----------------------------------------------------------------------


def _arrays() -> dict[str, Any]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(37).astype(np.float32)
    trits = vsa.random(2, 64, seed=5, backend="numpy")
    return {"x": x, "trits": trits, "a": trits[0].copy(), "b": trits[1].copy(),
            "fa": rng.standard_normal(16).astype(np.float32), "fb": rng.standard_normal(16).astype(np.float32)}


def _drive(t: Any, steps: int, loss: Callable[[int], float]) -> Any:
    """Run ``steps`` valid steps of trainer ``t`` (real gradients or predictions, losses ``loss(k)``)."""
    for k in range(steps):
        info = t.begin_step()
        if info.needs_backward:
            t.record_full_gradients(_grads(k))
        else:
            t.get_predicted_gradients()
        t.end_step(loss(k))
    return t


def _phase_trainer(steps: int = 0) -> PhaseTrainer:
    t = PhaseTrainer(SHAPES, PhaseConfig(full_steps=2, predict_steps=3, correct_every=2), backend="numpy")
    return _drive(t, steps, lambda k: 1.0 / (k + 1))


def _phase_trainer_in_step(steps: int = 0) -> PhaseTrainer:
    t = _phase_trainer(steps)
    t.begin_step()
    return t


def _phase_trainer_recorded() -> PhaseTrainer:
    """In a FULL step whose gradients are already recorded."""
    t = _phase_trainer_in_step()
    t.record_full_gradients(_grads(3))
    return t


def _det_trainer(steps: int = 0) -> DeterministicPhaseTrainer:
    cfg = DeterministicPhaseConfig(warmup_steps=2, full_steps=1, predict_steps=2, correct_every=4, history_window=1)
    return _drive(DeterministicPhaseTrainer(SHAPES, cfg, backend="numpy"), steps, lambda k: 1.0)


def _det_trainer_in_step(steps: int = 0) -> DeterministicPhaseTrainer:
    t = _det_trainer(steps)
    t.begin_step()
    return t


def _finish_step(t: Any) -> Any:
    """Complete the step in progress validly, run two more, and return the state."""
    for k in range(3):
        if k:
            t.begin_step()
        if t.needs_backward():
            t.record_full_gradients(_grads(10 + k))
            out: Any = None
        else:
            out = t.get_predicted_gradients()
        t.end_step(0.5)
    return out, snapshot(t)


def _accumulator() -> TernaryGradientAccumulator:
    acc = TernaryGradientAccumulator(SHAPES, TernaryConfig(accumulation_steps=4, seed=3), backend="numpy")
    acc.accumulate(_grads(0))
    return acc


def _accumulate_and_read(acc: TernaryGradientAccumulator) -> Any:
    acc.accumulate(_grads(1))
    return acc.get_accumulated()


def _compressor(ef: bool = True) -> VSAGradientCompressor:
    c = VSAGradientCompressor(SHAPES, VSAConfig(dimension=8, seed=2), backend="numpy", mode="per_tensor", error_feedback=ef)
    c.compress(_grads(0))
    return c


def _compress_and_back(c: VSAGradientCompressor) -> Any:
    msg = c.compress(_grads(1))
    return msg.to_json(), c.decompress(msg)


def _tampered_message(c: VSAGradientCompressor, **changes: Any) -> Any:
    msg = c.compress(_grads(5))
    return dataclasses.replace(msg, tensors=tuple(dataclasses.replace(t, **changes) for t in msg.tensors))


def _twin_message(**changes: Any) -> Any:
    """A tampered message of a twin compressor (the target's own counter stays untouched)."""
    return _tampered_message(_compressor(), **changes)


# --- the cases ----------------------------------------------------------------------------


def _replace(field: str, value: Any) -> Callable[[Any], Any]:
    return lambda cfg: dataclasses.replace(cfg, **{field: value})


def _same(target: Any) -> Any:
    """The good call of an immutable target: its own snapshot."""
    return snapshot(target)


_float64_beyond_f32 = np.array([1.0, 1e300, -2.0])

CASES = [
    # configs
    Case("phase-config-negative-steps", PhaseConfig, _replace("full_steps", -1), ConfigError, "full_steps", _same),
    Case("phase-config-correct-every-zero", PhaseConfig, _replace("correct_every", 0), ConfigError, "correct_every", _same),
    Case("phase-config-bool-as-int", PhaseConfig, _replace("predict_steps", True), ConfigError, "predict_steps", _same),
    Case("phase-config-nan-threshold", PhaseConfig, _replace("loss_threshold", float("nan")), ConfigError,
         "loss_threshold", _same),
    Case("phase-config-huge-int", PhaseConfig, _replace("full_steps", 10**5000), ConfigError, "full_steps", _same),
    Case("phase-config-wrong-subconfig", PhaseConfig, _replace("ternary_config", {"seed": 1}), ConfigError,
         "ternary_config", _same),
    Case("ternary-config-negative-seed", TernaryConfig, _replace("seed", -1), ConfigError, "seed", _same),
    Case("vsa-config-zero-ratio", VSAConfig, _replace("compression_ratio", 0.0), ConfigError, "compression_ratio", _same),
    Case("loss-history-config-zero", LossHistoryConfig, _replace("max_history", 0), ConfigError, "max_history", _same),
    Case("phase-config-from-json-none", PhaseConfig, lambda cfg: PhaseConfig.from_json(None), ConfigError,
         "PhaseConfig", _same),
    Case("phase-config-from-json-deep", PhaseConfig, lambda cfg: PhaseConfig.from_json("[" * 100000), ConfigError,
         "PhaseConfig", _same),
    Case("det-config-from-json-string-field", DeterministicPhaseConfig,
         lambda cfg: DeterministicPhaseConfig.from_json('{"history_window": "8"}'), ConfigError, "history_window", _same),
    Case("det-config-from-dict-unknown", DeterministicPhaseConfig,
         lambda cfg: DeterministicPhaseConfig.from_dict({"history_size": 3}), ConfigError, "history_size", _same),
    # ternary.*
    Case("quantize-integer-array", _arrays, lambda d: ternary.quantize_deterministic(np.arange(4), backend="numpy"),
         DTypeError, "x", lambda d: ternary.quantize_deterministic(d["x"], backend="numpy")),
    Case("quantize-nan", _arrays, lambda d: ternary.quantize_deterministic(np.array([1.0, np.nan], np.float32),
                                                                           backend="numpy"),
         NonFiniteError, "x", lambda d: ternary.quantize_deterministic(d["x"], backend="numpy")),
    Case("quantize-float64-beyond-float32", _arrays,
         lambda d: ternary.quantize_deterministic(_float64_beyond_f32, backend="numpy"), NonFiniteError,
         "float32 range", lambda d: ternary.quantize_deterministic(d["x"], backend="numpy")),
    Case("quantize-stochastic-negative-seed", _arrays, lambda d: ternary.quantize_stochastic(d["x"], -1, backend="numpy"),
         ConfigError, "seed", lambda d: ternary.quantize_stochastic(d["x"], 7, backend="numpy")),
    Case("quantize-stochastic-step-beyond-u32", _arrays,
         lambda d: ternary.quantize_stochastic(d["x"], 7, step=2**32, backend="numpy"), ConfigError, "step",
         lambda d: ternary.quantize_stochastic(d["x"], 7, step=3, backend="numpy")),
    Case("pack-trit-out-of-range", _arrays, lambda d: ternary.pack(np.array([0, 2, -1], np.int8), backend="numpy"),
         ConfigError, "trits", lambda d: ternary.pack(d["a"], backend="numpy")),
    Case("pack-unknown-encoding", _arrays, lambda d: ternary.pack(d["a"], "3bit", backend="numpy"), EncodingError,
         "3bit", lambda d: ternary.pack(d["a"], backend="numpy")),
    Case("unpack-negative-length", _arrays, lambda d: ternary.unpack(ternary.pack(d["a"], backend="numpy")[0], -1,
                                                                      backend="numpy"),
         ConfigError, "n", lambda d: ternary.pack(d["a"], backend="numpy")),
    # vsa.*
    Case("vsa-bind-shape-mismatch", _arrays, lambda d: vsa.bind(d["a"], d["b"][:10], backend="numpy"), ShapeError,
         "a, b", lambda d: vsa.bind(d["a"], d["b"], backend="numpy")),
    Case("vsa-bind-float", _arrays, lambda d: vsa.bind(d["fa"], d["fb"], backend="numpy"), DTypeError, "a",
         lambda d: vsa.bind(d["a"], d["b"], backend="numpy")),
    Case("vsa-random-negative-count", _arrays, lambda d: vsa.random(-1, 8, seed=1, backend="numpy"), ConfigError, "n",
         lambda d: vsa.random(2, 8, seed=1, backend="numpy")),
    Case("vsa-permute-float-shift", _arrays, lambda d: vsa.permute(d["a"], 1.5, backend="numpy"), DTypeError, "shifts",
         lambda d: vsa.permute(d["a"], 2, backend="numpy")),
    Case("vsa-unknown-backend", _arrays, lambda d: vsa.bind(d["a"], d["b"], backend="tpu"), ConfigError, "backend",
         lambda d: vsa.bind(d["a"], d["b"], backend="numpy")),
    # vsa.map.*
    Case("map-cosine-nan", _arrays,
         lambda d: vmap.cosine_similarity(d["fa"], np.full(16, np.nan, np.float32), backend="numpy"), NonFiniteError, "b",
         lambda d: vmap.cosine_similarity(d["fa"], d["fb"], backend="numpy")),
    Case("map-dot-float64-beyond-float32", _arrays,
         lambda d: vmap.dot_similarity(np.full(16, 1e300), d["fb"].astype(np.float64), backend="numpy"), NonFiniteError,
         "float32 range", lambda d: vmap.dot_similarity(d["fa"], d["fb"], backend="numpy")),
    Case("map-hard-quantize-inf", _arrays, lambda d: vmap.hard_quantize(np.array([1.0, -np.inf], np.float32),
                                                                        backend="numpy"),
         NonFiniteError, "x", lambda d: vmap.hard_quantize(d["fa"], backend="numpy")),
    Case("map-bind-mixed-dtypes", _arrays, lambda d: vmap.bind(d["fa"], np.ones(16, np.int8), backend="numpy"),
         DTypeError, "a, b", lambda d: vmap.bind(d["fa"], d["fb"], backend="numpy")),
    Case("map-cosine-shape-mismatch", _arrays, lambda d: vmap.cosine_similarity(d["fa"], d["fb"][:8], backend="numpy"),
         ShapeError, "b", lambda d: vmap.cosine_similarity(d["fa"], d["fb"], backend="numpy")),
    # backends
    Case("get-backend-unknown-name", _arrays, lambda d: get_backend("nope"), ConfigError, "nope",
         lambda d: get_backend("numpy").name),
    # accumulator
    Case("accumulate-missing-name", _accumulator, lambda acc: acc.accumulate({"w": _grads()["w"]}), ShapeError, "b",
         _accumulate_and_read),
    Case("accumulate-unknown-name", _accumulator, lambda acc: acc.accumulate(_grads(c=np.zeros(2, np.float32))),
         ShapeError, "c", _accumulate_and_read),
    Case("accumulate-wrong-shape", _accumulator, lambda acc: acc.accumulate(_grads(b=np.zeros(5, np.float32))),
         ShapeError, "b", _accumulate_and_read),
    Case("accumulate-int-dtype", _accumulator, lambda acc: acc.accumulate(_grads(b=np.zeros(4, np.int32))), DTypeError,
         "b", _accumulate_and_read),
    Case("accumulate-nan", _accumulator, lambda acc: acc.accumulate(_grads(w=np.full((3, 4), np.nan, np.float32))),
         NonFiniteError, "w", _accumulate_and_read),
    Case("accumulate-float64-beyond-float32", _accumulator,
         lambda acc: acc.accumulate(_grads(b=np.array([0.0, 1e300, 0.0, 0.0]))), NonFiniteError, "float32 range",
         _accumulate_and_read),
    # compressor
    Case("compress-wrong-shape", _compressor, lambda c: c.compress(_grads(w=np.zeros((4, 3), np.float32))), ShapeError,
         "w", _compress_and_back),
    Case("compress-inf", _compressor, lambda c: c.compress(_grads(b=np.full(4, np.inf, np.float32))), NonFiniteError,
         "b", _compress_and_back),
    Case("decompress-not-a-message", _compressor, lambda c: c.decompress({"payload": []}), ConfigError, "compressed",
         _compress_and_back),
    Case("decompress-scale-beyond-float32", _compressor, lambda c: c.decompress(_twin_message(scale=1e300)),
         EncodingError, "scale", _compress_and_back),
    Case("decompress-bad-exponent", _compressor, lambda c: c.decompress(_twin_message(exponent=1000)), EncodingError,
         "exponent", _compress_and_back),
    # trainers: wrong phase or order
    Case("phase-record-outside-step", _phase_trainer, lambda t: t.record_full_gradients(_grads()), PhaseError,
         "record_full_gradients", lambda t: (t.begin_step(), _finish_step(t))),
    Case("phase-begin-twice", _phase_trainer_in_step, lambda t: t.begin_step(), PhaseError, "begin_step", _finish_step),
    Case("phase-predict-in-full", _phase_trainer_in_step, lambda t: t.get_predicted_gradients(), PhaseError,
         "get_predicted_gradients", _finish_step),
    Case("phase-record-in-predict", lambda: _phase_trainer_in_step(2), lambda t: t.record_full_gradients(_grads()),
         PhaseError, "record_full_gradients", _finish_step),
    Case("phase-record-twice", _phase_trainer_recorded,
         lambda t: t.record_full_gradients(_grads()), PhaseError, "already recorded",
         lambda t: (t.end_step(1.0), t.begin_step(), _finish_step(t))),
    Case("phase-end-outside-step", _phase_trainer, lambda t: t.end_step(1.0), PhaseError, "end_step",
         lambda t: (t.begin_step(), _finish_step(t))),
    # trainers: wrong names, shapes, dtypes, values
    Case("phase-record-unknown-name", _phase_trainer_in_step,
         lambda t: t.record_full_gradients(_grads(extra=np.zeros(1, np.float32))), ShapeError, "extra", _finish_step),
    Case("phase-record-wrong-shape", _phase_trainer_in_step,
         lambda t: t.record_full_gradients(_grads(w=np.zeros(12, np.float32))), ShapeError, "w", _finish_step),
    Case("phase-record-nan", _phase_trainer_in_step,
         lambda t: t.record_full_gradients(_grads(b=np.array([0, np.nan, 0, 0], np.float32))), NonFiniteError, "b",
         _finish_step),
    Case("phase-end-nan-loss", _phase_trainer_in_step, lambda t: t.end_step(float("nan")), NonFiniteError, "loss",
         lambda t: (t.record_full_gradients(_grads(4)), t.end_step(1.0), t.begin_step(), _finish_step(t))),
    Case("phase-end-string-loss", _phase_trainer_in_step, lambda t: t.end_step("0.5"), DTypeError, "loss",
         lambda t: (t.record_full_gradients(_grads(4)), t.end_step(1.0), t.begin_step(), _finish_step(t))),
    Case("det-predict-in-warmup", _det_trainer_in_step, lambda t: t.get_predicted_gradients(), PhaseError,
         "get_predicted_gradients", _finish_step),
    Case("det-record-int-dtype", _det_trainer_in_step,
         lambda t: t.record_full_gradients(_grads(w=np.zeros((3, 4), np.int64))), DTypeError, "w", _finish_step),
    Case("det-record-not-a-mapping", _det_trainer_in_step, lambda t: t.record_full_gradients([np.zeros(4)]),
         DTypeError, "gradients", _finish_step),
    Case("det-record-in-predict", lambda: _det_trainer_in_step(3), lambda t: t.record_full_gradients(_grads()),
         PhaseError, "record_full_gradients", _finish_step),
    # constructors
    Case("trainer-unknown-backend", _arrays, lambda d: PhaseTrainer(SHAPES, backend="tpu"), ConfigError, "backend",
         lambda d: PhaseTrainer(SHAPES, backend="numpy").state_dict()["header"]),
    Case("trainer-config-of-other-trainer", _arrays, lambda d: PhaseTrainer(SHAPES, DeterministicPhaseConfig()),
         ConfigError, "config", lambda d: PhaseTrainer(SHAPES, backend="numpy").state_dict()["header"]),
    Case("accumulator-bad-count-bits", _arrays,
         lambda d: TernaryGradientAccumulator(SHAPES, TernaryConfig(), backend="numpy", count_bits=3), ConfigError,
         "count_bits", lambda d: TernaryGradientAccumulator(SHAPES, backend="numpy").state_dict()),
    # found by the reliability survey (items 2, 9, 10, 11 of its list)
    Case("map-bind-nan", _arrays, lambda d: vmap.bind(np.full(16, np.nan, np.float32), d["fb"]), NonFiniteError, "a",
         lambda d: vmap.bind(d["fa"], d["fb"])),
    Case("vsa-bundle-1d", _arrays, lambda d: vsa.bundle(d["a"]), ShapeError, "vectors", lambda d: vsa.bundle(d["trits"])),
    Case("phase-apply-correction-outside-step", lambda: _phase_trainer(5), lambda t: t.apply_correction(_grads()),
         PhaseError, "apply_correction", lambda t: (t.begin_step(), _finish_step(t))),
    Case("compressed-from-json-deep", _compressor, lambda c: CompressedGradients.from_json("[" * 100_000),
         EncodingError, "compressed", _compress_and_back),
    Case("trainer-save-onto-a-folder", lambda: _phase_trainer(3), lambda t: t.save(tempfile.gettempdir()),
         CheckpointError, "folder", lambda t: (t.begin_step(), _finish_step(t))),
    Case("compressor-duplicate-names", _arrays,
         lambda d: VSAGradientCompressor([("w", (2,)), ("w", (3,))], backend="numpy"), ConfigError, "w",
         lambda d: VSAGradientCompressor(SHAPES, backend="numpy").dims),
]


def test_the_survey_covers_at_least_25_kinds_of_misuse():
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_misuse_raises_a_typed_error_and_changes_nothing(case):
    target = case.build()
    before = snapshot(target)
    with pytest.raises(case.error) as info:
        case.bad(target)
    assert case.names in str(info.value), str(info.value)
    assert snapshot(target) == before
    assert freeze(case.good(target)) == freeze(case.good(case.build()))
