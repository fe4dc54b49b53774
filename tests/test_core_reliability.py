"""Reliability of the framework-free core: predictions, parameter layouts, checkpoints, configs, compressor, packing.

Each test reproduces one failure an adversarial user could cause and checks
the typed error (naming what was wrong) and that nothing changed.
"""

from __future__ import annotations

import builtins
import collections
import dataclasses
import io
import json
import os
import tracemalloc
import zipfile

import numpy as np
import pytest

import vsaopt._grads as grads_module
from vsaopt import (
    DeterministicPhase,
    DeterministicPhaseConfig,
    DeterministicPhaseTrainer,
    DeterministicPredictionConfig,
    DeterministicPredictor,
    GradientPredictor,
    LossHistory,
    LossHistoryConfig,
    PhaseConfig,
    PhaseTrainer,
    PredictionConfig,
    TernaryConfig,
    TernaryGradientAccumulator,
    VSAConfig,
    VSAGradientCompressor,
)
from vsaopt._arrays import TRIT_CHECK_CHUNK, trit_array
from vsaopt._grads import FlatGradients, ParamLayout
from vsaopt.backend import Backend, backend_status, get_backend
from vsaopt.checkpoint import frame
from vsaopt.errors import CheckpointError, ConfigError, NonFiniteError
from vsaopt.phase import GateConfig
from vsaopt.ternary import pack, unpack

F32 = np.float32
BIG = 3e38
MOMENTUM_CFG = PhaseConfig(full_steps=2, predict_steps=4, correct_every=10)
LSQ_CFG = DeterministicPhaseConfig(warmup_steps=3, full_steps=1, predict_steps=4, correct_every=10)
NUMBA = pytest.mark.skipif(backend_status()["numba"] != "available", reason="numba is not available")


def sha(obj):
    """The digest of an object's complete state (equal digests: equal states)."""
    return obj.state_dict()["header"]["sha256"]


def reframe(state, header_edit=None, arrays_edit=None):
    """``state`` with its header (without the format tags) and arrays edited, and the digest recomputed."""
    header = {k: v for k, v in state["header"].items() if k not in ("format", "version", "kind", "sha256")}
    header = json.loads(json.dumps(header))
    arrays = dict(state["arrays"])
    if header_edit:
        header_edit(header)
    if arrays_edit:
        arrays_edit(arrays)
    return frame(state["header"]["kind"], header, arrays)


def run_to_predict(t, gradient_of_step):
    """Drive ``t`` until a PREDICT step has begun (recording ``gradient_of_step(k)`` in backward steps)."""
    for k in range(40):
        info = t.begin_step()
        if not info.needs_backward:
            return
        t.record_full_gradients(gradient_of_step(k))
        t.end_step(1.0)
    raise AssertionError("no PREDICT step")


# --- 1. predictions that overflow float32 are refused ----------------------------------------------


def momentum_overflow(k):  # alternating signs: g[-1] + 0.9 (g[-1] - g[-2]) leaves the float32 range
    return {"w": np.full(3, BIG if k % 2 else -BIG, F32), "b": np.ones(2, F32)}


def lsq_overflow(k):  # a steep line: its next point lies beyond the float32 range
    return {"w": np.full(3, min(-BIG + 1e38 * k, BIG), F32) if k < 3 else np.full(3, BIG, F32), "b": np.ones(2, F32)}


OVERFLOWING = [
    pytest.param(PhaseTrainer, MOMENTUM_CFG, momentum_overflow, id="momentum"),
    pytest.param(DeterministicPhaseTrainer, LSQ_CFG, lsq_overflow, id="least-squares"),
]


@pytest.mark.parametrize("cls, cfg, gradient", OVERFLOWING)
def test_an_overflowing_prediction_is_refused_on_every_path_and_changes_nothing(backend, cls, cfg, gradient):
    t = cls([("w", (3,)), ("b", (2,))], cfg, backend=backend)
    run_to_predict(t, gradient)
    before = sha(t)
    out = backend.xp.full(5, 7.0, dtype=backend.xp.float32)
    for call in (t.get_predicted_gradients, lambda: t.predict_gradients_into(out), t._predictor.peek_flat):
        with pytest.raises(NonFiniteError, match=r"predicted gradients\['w'\]: the prediction overflows float32"):
            call()
        assert sha(t) == before
    assert backend.to_host(out).tolist() == [7.0] * 5  # the caller's buffer is not written either
    t.end_step(1.0)  # the step can still end


@pytest.mark.parametrize("compression", ["bfloat16", "ternary"])
def test_an_overflowing_prediction_of_a_compressed_history_is_refused(compression):
    cfg = dataclasses.replace(MOMENTUM_CFG, prediction_config=PredictionConfig(history_compression=compression))
    t = PhaseTrainer([("w", (3,)), ("b", (2,))], cfg, backend="numpy")
    run_to_predict(t, momentum_overflow)
    with pytest.raises(NonFiniteError, match=r"\['w'\]"):
        t.get_predicted_gradients()


def test_an_overflowing_prediction_is_refused_after_a_checkpoint_round_trip(tmp_path):
    t = DeterministicPhaseTrainer([("w", (3,)), ("b", (2,))], LSQ_CFG, backend="numpy")
    run_to_predict(t, lsq_overflow)
    t.save(tmp_path / "t.ckpt")
    u = DeterministicPhaseTrainer.load(tmp_path / "t.ckpt", backend="numpy")
    with pytest.raises(NonFiniteError, match=r"\['w'\]"):
        u.get_predicted_gradients()


def counting_backend(name="numpy"):
    """A backend whose kernels count their calls (``be.calls``)."""
    ref = get_backend(name)
    calls = collections.Counter()

    def counted(kernel_name):
        kernel = getattr(ref, kernel_name)

        def call(*args, **kwargs):
            calls[kernel_name] += 1
            return kernel(*args, **kwargs)

        return call

    be = Backend(ref.name, ref.xp, {k: counted(k) for k in ref.kernel_names}, array_type=ref.array_type)
    be.calls = calls
    return be


@pytest.mark.parametrize("cls, cfg", [(PhaseTrainer, MOMENTUM_CFG), (DeterministicPhaseTrainer, LSQ_CFG)])
def test_finite_predictions_keep_their_bytes_and_take_no_extra_pass(cls, cfg):
    rng = np.random.default_rng(1)
    steps = [{"w": rng.standard_normal(3).astype(F32), "b": rng.standard_normal(2).astype(F32)} for _ in range(40)]
    be = counting_backend()
    t = cls([("w", (3,)), ("b", (2,))], cfg, backend=be)
    run_to_predict(t, lambda k: steps[k])
    want = t._predictor._predict_flat().copy()  # the kernel's own result, unchecked
    be.calls.clear()
    got = t.get_predicted_gradients()
    assert np.concatenate([got["w"], got["b"]]).tobytes() == want.tobytes()
    assert be.calls["abs_stats"] == 0  # the recorded gradients' bounds rule an overflow out


def correction_pending_trainer(dtype_value):
    """A PhaseTrainer in a CORRECT step with a correction of about ``dtype_value`` pending."""
    t = PhaseTrainer([("w", (2,))], PhaseConfig(full_steps=1, predict_steps=4, correct_every=1), backend="numpy")
    for _ in range(6):
        info = t.begin_step()
        if info.needs_backward:
            value = 1.0 if info.phase.name == "FULL" else dtype_value
            t.record_full_gradients({"w": np.full(2, value, F32)})
            if t.has_pending_correction:
                return t
        else:
            t.get_predicted_gradients()
        t.end_step(1.0)
    raise AssertionError("no correction")


@pytest.mark.parametrize("dtype, value", [(np.float32, BIG), (np.float16, 60000.0)])
def test_apply_correction_that_leaves_the_arrays_range_is_refused(dtype, value):
    t = correction_pending_trainer(value)
    g = {"w": np.full(2, value, dtype)}
    kept = g["w"].copy()
    before = sha(t)
    with pytest.raises(NonFiniteError, match=r"gradients\['w'\]"):
        t.apply_correction(g)
    assert g["w"].tobytes() == kept.tobytes() and t.has_pending_correction and sha(t) == before


# --- 2. parameters without elements -----------------------------------------------------------------


ZERO_SHAPES = [
    [("w", (2,)), ("e", (0,))],
    [("w", (2,)), ("e", (3, 0))],
    [("a", (0,)), ("b", (0, 2))],  # no element at all
]


@pytest.mark.parametrize("shapes", ZERO_SHAPES, ids=["(0,)", "(3,0)", "all-empty"])
@pytest.mark.parametrize("cls, cfg", [
    (PhaseTrainer, PhaseConfig(full_steps=2, predict_steps=4, correct_every=2)),
    (DeterministicPhaseTrainer, DeterministicPhaseConfig(warmup_steps=3, full_steps=2, predict_steps=4, correct_every=2)),
], ids=["momentum", "least-squares"])
def test_zero_element_parameters_go_through_every_phase_and_a_round_trip(backend, shapes, cls, cfg):
    t = cls(shapes, cfg, backend=backend)
    phases = set()
    for k in range(14):
        info = t.begin_step()
        phases.add(info.phase.name)
        if info.needs_backward:
            t.record_full_gradients({n: backend.xp.full(s, k, dtype=backend.xp.float32) for n, s in shapes})
        else:
            g = t.get_predicted_gradients()
            assert {n: tuple(a.shape) for n, a in g.items()} == dict(shapes)
            if isinstance(t, PhaseTrainer):
                t.apply_correction(g)
        t.end_step(1.0)
        u = cls(shapes, cfg, backend=backend)
        u.load_state_dict(t.state_dict())
        assert sha(u) == sha(t)
    assert {"FULL", "PREDICT", "CORRECT"} <= phases
    stats = t._predictor.get_stats()
    assert np.isfinite(stats.mean_abs_error if cls is DeterministicPhaseTrainer else stats.mean_error)


# --- 3. build, step and state round trip are linear in the number of parameters --------------------


def test_layout_offsets_take_one_pass_and_names_resolve_through_a_dict(monkeypatch):
    summed = []

    def counting_sum(values, start=0):
        values = list(values)
        summed.append(len(values))
        return builtins.sum(values, start)

    monkeypatch.setattr(grads_module, "sum", counting_sum, raising=False)
    n = 2000
    lay = ParamLayout([(f"p{i}", (i % 3,)) for i in range(n)])
    assert sum(summed) <= 2 * n  # a prefix sum per parameter would add n*(n-1)/2 elements
    assert lay.offsets == tuple(np.concatenate([[0], np.cumsum(lay.sizes)[:-1]]).tolist())
    assert lay.index == {f"p{i}": i for i in range(n)}

    class NoScan(tuple):  # a layout whose names cannot be searched: lookups must go through the dict
        def index(self, *args):
            raise AssertionError("linear search of the names")

    lay.names = NoScan(lay.names)
    flat = np.zeros(lay.total, F32)
    g = FlatGradients(lay, flat, get_backend("numpy"))
    assert g[f"p{n - 1}"].shape == ((n - 1) % 3,)
    with pytest.raises(KeyError):
        g["absent"]


@pytest.mark.parametrize("cls, cfg", [
    (PhaseTrainer, PhaseConfig(full_steps=1, predict_steps=4, correct_every=2)),
    (DeterministicPhaseTrainer, DeterministicPhaseConfig(warmup_steps=3, full_steps=1, predict_steps=4, correct_every=2)),
], ids=["momentum", "least-squares"])
def test_kernel_calls_grow_linearly_with_the_parameter_count(cls, cfg):
    def calls(p):
        be = counting_backend()
        shapes = [(f"p{i}", (1,)) for i in range(p)]
        t = cls(shapes, cfg, backend=be)
        g = {n: np.ones(1, F32) for n, _ in shapes}
        for _ in range(8):  # every phase, a correction included
            info = t.begin_step()
            t.record_full_gradients(g) if info.needs_backward else t.get_predicted_gradients()
            t.end_step(1.0)
        t.load_state_dict(t.state_dict())
        return sum(be.calls.values())

    small, large = calls(50), calls(200)
    assert large <= 4 * small + 50


# --- 4. checkpoint paths the file system refuses ----------------------------------------------------


@pytest.mark.parametrize("make_path", [
    lambda d: os.path.join(d, "a\0b"),
    lambda d: os.fsencode(os.path.join(d, "a\0b")),
    lambda d: os.path.join(d, "x" * 300),
    lambda d: os.path.join(d, "y" * 300, "t.ckpt"),
    lambda d: "z" * 5000,
    lambda d: "",
], ids=["nul", "nul-bytes", "name-too-long", "folder-too-long", "path-too-long", "empty"])
def test_unusable_checkpoint_paths_give_a_checkpoint_error_naming_them(tmp_path, make_path):
    path = make_path(str(tmp_path))
    t = PhaseTrainer([("w", (2,))], backend="numpy")
    for call in (lambda: t.save(path), lambda: PhaseTrainer.load(path)):
        with pytest.raises(CheckpointError, match="path|characters|checkpoint") as err:
            call()
        assert len(str(err.value)) < 600  # a 5000-character path is cut in the message
    assert os.listdir(tmp_path) == []  # no temporary file left behind


def test_checkpoint_names_at_the_systems_limit_and_bytes_paths_are_written(tmp_path):
    t = PhaseTrainer([("w", (2,))], backend="numpy")
    long_name = tmp_path / ("x" * 250)  # the temporary file's name must stay within the limit too
    t.save(long_name)
    t.save(os.fsencode(tmp_path / "b.ckpt"))
    assert sha(PhaseTrainer.load(long_name)) == sha(PhaseTrainer.load(os.fsencode(tmp_path / "b.ckpt"))) == sha(t)


# --- 5. JSON with a key given twice ---------------------------------------------------------------------


@pytest.mark.parametrize("cls, text", [
    (TernaryConfig, '{"seed": 1, "seed": 2}'),
    (VSAConfig, '{"dimension": 256, "dimension": 512}'),
    (GateConfig, '{"enabled": true, "enabled": false}'),
    (PhaseConfig, '{"ternary_config": {"seed": 1, "seed": 1}}'),
    (DeterministicPhaseConfig, '{"warmup_steps": 3, "warmup_steps": 4}'),
    (LossHistoryConfig, '{"max_history": 10, "max_history": 10}'),
])
def test_config_json_with_a_duplicate_key_is_refused(cls, text):
    with pytest.raises(ConfigError, match=f"{cls.__name__}: invalid JSON \\(key .* given twice"):
        cls.from_json(text)


def test_a_checkpoint_header_with_a_duplicate_key_is_refused(tmp_path):
    t = PhaseTrainer([("w", (2,))], backend="numpy")
    t.save(tmp_path / "t.ckpt")
    with zipfile.ZipFile(tmp_path / "t.ckpt") as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    text = np.lib.format.read_array(io.BytesIO(members["__header__.npy"])).tobytes().decode()
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(text.replace('"phase": ', '"phase": "PREDICT", "phase": ', 1).encode(), np.uint8))
    members["__header__.npy"] = buf.getvalue()
    with zipfile.ZipFile(tmp_path / "dup.ckpt", "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(CheckpointError, match="key 'phase' given twice"):
        PhaseTrainer.load(tmp_path / "dup.ckpt")


# --- 6. a state with fields or arrays its object does not read --------------------------------------


def stateful_objects():
    shapes = [("w", (3,)), ("b", (2,))]
    g = {"w": np.ones(3, F32), "b": np.ones(2, F32)}
    trainer = PhaseTrainer(shapes, PhaseConfig(full_steps=1, predict_steps=2, correct_every=1), backend="numpy")
    trainer.ternary_accumulator.accumulate(g)
    lsq = DeterministicPhaseTrainer(shapes, DeterministicPhaseConfig(warmup_steps=2), backend="numpy")
    for t in (trainer, lsq):
        for _ in range(3):
            t.begin_step()
            t.record_full_gradients(g) if t.needs_backward() else t.get_predicted_gradients()
            t.end_step(1.0)
    pred = GradientPredictor(shapes, PredictionConfig(), backend="numpy")
    pred.record_gradient(g)
    dpred = DeterministicPredictor(shapes, DeterministicPredictionConfig(warmup_steps=2), backend="numpy")
    dpred.record_gradient(g)
    acc = TernaryGradientAccumulator(shapes, TernaryConfig(), backend="numpy")
    acc.accumulate(g)
    comp = VSAGradientCompressor(shapes, VSAConfig(dimension=64), backend="numpy", mode="per_tensor", error_feedback=True)
    comp.compress(g)
    hist = LossHistory(LossHistoryConfig())
    hist.record(1.0, DeterministicPhase.FULL)
    return [trainer, lsq, pred, dpred, acc, comp, hist]


@pytest.mark.parametrize("index", range(7), ids=["PhaseTrainer", "DeterministicPhaseTrainer", "GradientPredictor",
                                                  "DeterministicPredictor", "TernaryGradientAccumulator",
                                                  "VSAGradientCompressor", "LossHistory"])
def test_states_with_unread_fields_or_arrays_are_refused(index):
    obj = stateful_objects()[index]
    state = obj.state_dict()
    obj.load_state_dict(state)  # the state itself round-trips
    before = sha(obj)
    nested = next((k for k, v in state["header"]["state"].items() if isinstance(v, dict) and k != "taken"), None)
    edits = [
        (None, lambda a: a.__setitem__("extra", np.zeros(2, F32)), r"array\(s\) extra"),
        (lambda h: h["state"].__setitem__("extra", 1), None, r"field\(s\) extra"),
        (lambda h: h.__setitem__("extra", 1), None, r"unknown header field\(s\) extra"),
    ]
    if nested is not None:
        edits += [
            (lambda h: h["state"][nested].__setitem__("extra", 1), None, rf"field\(s\) {nested}\.extra"),
            (None, lambda a: a.__setitem__(f"{nested}.extra", np.zeros(1, F32)), rf"array\(s\) {nested}\.extra"),
        ]
    for header_edit, arrays_edit, message in edits:
        with pytest.raises(CheckpointError, match=message):
            obj.load_state_dict(reframe(state, header_edit, arrays_edit))
        assert sha(obj) == before


# --- 7. compressor residuals must be finite -----------------------------------------------------------


def test_a_compressor_state_with_a_nan_residual_is_refused():
    c = VSAGradientCompressor([("w", (64,))], VSAConfig(dimension=256), backend="numpy", mode="per_tensor", error_feedback=True)
    c.compress({"w": np.ones(64, F32)})
    before = sha(c)

    def poison(arrays):
        arrays["residual.0"] = arrays["residual.0"].copy()
        arrays["residual.0"][3] = np.nan

    with pytest.raises(CheckpointError, match=r"residual\.0: holds NaN or Inf"):
        c.load_state_dict(reframe(c.state_dict(), arrays_edit=poison))
    assert sha(c) == before
    c.compress({"w": np.ones(64, F32)})  # still usable


# --- 8. packing checks trits without a full-size temporary ------------------------------------------


@NUMBA
@pytest.mark.parametrize("encoding", ["2bit", "base3"])
def test_pack_allocates_little_more_than_its_output(encoding):
    be = get_backend("numba")
    n = 8 * TRIT_CHECK_CHUNK
    trits = (np.arange(n, dtype=np.int64) % 3 - 1).astype(np.int8)
    pack(trits, encoding, backend=be)  # the same path compiled (or loaded) before memory is traced
    tracemalloc.start()
    packed = pack(trits, encoding, backend=be)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < packed.nbytes + n // 8  # the input is n bytes; its old validation took 2n
    assert np.array_equal(unpack(packed, n, encoding, backend=be), trits)


@pytest.mark.parametrize("dtype, bad", [(np.int8, 2), (np.int8, -128), (np.int16, 257), (np.uint8, 255), (np.int64, -2)])
def test_pack_still_refuses_values_that_are_not_trits(backend, dtype, bad):
    trits = np.zeros(3 * TRIT_CHECK_CHUNK // 2 + 5, dtype)
    trits[-1] = bad  # in the last chunk
    for encoding in ("2bit", "base3"):
        with pytest.raises(ConfigError, match="trits must be -1, 0 or \\+1"):
            pack(backend.to_device(trits), encoding, backend=backend)


def test_trit_array_checks_in_bounded_chunks():
    be = get_backend("numpy")
    x = np.zeros(4 * TRIT_CHECK_CHUNK, np.int16)
    tracemalloc.start()
    trit_array(x, "x", be)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < x.size + 4 * TRIT_CHECK_CHUNK  # the int8 result and chunk-sized temporaries, not 2 x.size


# --- found by probing ---------------------------------------------------------------------------------


def test_shapes_given_as_numpy_integer_vectors_and_names_as_numpy_strings_are_plain():
    t = PhaseTrainer([(np.str_("w"), np.array([2, 3])), ("b", (np.int64(3),))], backend="numpy")
    assert t.param_shapes == [("w", (2, 3)), ("b", (3,))]
    assert all(type(n) is str for n, _ in t.param_shapes)
    with pytest.raises(ConfigError, match=r"param_shapes\['w'\]: shape must be"):
        PhaseTrainer([("w", np.array([2.0, 3.0]))], backend="numpy")


@pytest.mark.parametrize("encoding", [["2bit"], {"2bit": 4}, None, 4])
def test_an_encoding_that_is_not_a_name_is_an_encoding_error(encoding):
    from vsaopt.errors import EncodingError

    with pytest.raises(EncodingError, match="encoding: expected one of"):
        pack(np.zeros(3, np.int8), encoding, backend="numpy")
    with pytest.raises(EncodingError, match="encoding: expected one of"):
        unpack(np.zeros(1, np.uint8), 3, encoding, backend="numpy")


def test_check_backend_validates_its_arguments():
    pytest.importorskip("hypothesis")
    from vsaopt.errors import ConfigError, DTypeError
    from vsaopt.testing import check_backend

    for bad, err in ((0, ConfigError), (-1, ConfigError), (1.5, DTypeError), (True, DTypeError)):
        with pytest.raises(err, match="max_examples"):
            check_backend("numpy", max_examples=bad, vectors=False)
    with pytest.raises(ConfigError, match="vectors"):
        check_backend("numpy", max_examples=2, vectors="no")


@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_gather_stats_refuses_operands_of_another_length_or_dtype(name):
    from vsaopt.backend import get_backend
    from vsaopt.errors import DTypeError, ShapeError

    be = get_backend(name)
    x, out = np.ones(10, np.float32), np.zeros(10, np.float32)
    cases = [
        (([x[:9]], out, None, None), ShapeError),
        (([x], out, np.ones(9, np.float32), None), ShapeError),
        (([x], out, x.astype(np.float64), None), DTypeError),
        (([x], out, None, np.ones(11, np.float32)), ShapeError),
        (([x], out, None, (x, x[:5], x, 1.0, 1.0)), ShapeError),
    ]
    for args, err in cases:
        with pytest.raises(err, match="gather_stats"):
            be.gather_stats(*args)
    assert not out.any()  # nothing written by a refused call
