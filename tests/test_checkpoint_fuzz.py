"""Fuzz of the checkpoint loaders: damaged files and edited fields give CheckpointError, never anything else.

For the two trainers, the accumulator (8- and 4-bit counts) and the compressor:

- a file truncated anywhere, or with any byte changed, either raises
  CheckpointError or (where the change hit bytes no reader looks at, such as a
  zip timestamp) loads exactly the saved state;
- a state dict with a field replaced by an arbitrary JSON value or an array by
  an arbitrary array raises CheckpointError when the digest is left as it is,
  and when the digest is recomputed it raises CheckpointError or loads a state
  whose next steps run without any other error;
- no load allocates more than a small multiple of the saved state's size.
"""

from __future__ import annotations

import functools
import json
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vsaopt import (
    DeterministicPhaseConfig,
    DeterministicPhaseTrainer,
    PhaseConfig,
    PhaseTrainer,
    TernaryConfig,
    TernaryGradientAccumulator,
    VSAConfig,
    VSAGradientCompressor,
)
from vsaopt.checkpoint import digest
from vsaopt.errors import CheckpointError, OptimError

F32 = np.float32
SHAPES = [("w", (6, 5)), ("b", (5,))]


def grads(k):
    rng = np.random.default_rng(k)
    return {n: (0.5 + 0.3 * rng.standard_normal(s)).astype(F32) for n, s in SHAPES}


def train(t, start, stop):
    for k in range(start, stop):
        info = t.begin_step()
        if info.needs_backward:
            t.record_full_gradients(grads(k))
        else:
            t.get_predicted_gradients()
        t.end_step(1.0 + 0.01 * k)


def use(obj, k=100):
    """A few calls of the object's own work: what a resumed job does next."""
    if isinstance(obj, (PhaseTrainer, DeterministicPhaseTrainer)):
        train(obj, k, k + 6)
    elif isinstance(obj, TernaryGradientAccumulator):
        obj.accumulate(grads(k))
        obj.get_accumulated()
    else:
        obj.decompress(obj.compress(grads(k)))


def _phase():
    t = PhaseTrainer(SHAPES, PhaseConfig(full_steps=2, predict_steps=6, correct_every=3), backend="numpy")
    train(t, 0, 17)
    t.ternary_accumulator.accumulate(grads(0))
    return t


def _deterministic():
    cfg = DeterministicPhaseConfig(warmup_steps=3, full_steps=2, predict_steps=6, correct_every=3)
    t = DeterministicPhaseTrainer(SHAPES, cfg, backend="numpy")
    train(t, 0, 17)
    return t


def _accumulator(bits):
    acc = TernaryGradientAccumulator(SHAPES, TernaryConfig(seed=2), backend="numpy", count_bits=bits)
    for k in range(3):
        acc.accumulate(grads(k))
    return acc


def _compressor():
    c = VSAGradientCompressor(SHAPES, VSAConfig(dimension=32, seed=3), backend="numpy", mode="per_tensor", error_feedback=True)
    for k in range(2):
        c.compress(grads(k))
    return c


MAKERS = {
    "phase": _phase,
    "deterministic": _deterministic,
    "accumulator8": lambda: _accumulator(8),
    "accumulator4": lambda: _accumulator(4),
    "compressor": _compressor,
}


@functools.cache
def saved(kind, folder):
    obj = MAKERS[kind]()
    path = f"{folder}/{kind}.ckpt"
    obj.save(path)
    with open(path, "rb") as f:
        return obj, f.read()


def snapshot(obj):
    sd = obj.state_dict()
    return json.dumps(sd["header"], sort_keys=True), {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in sd["arrays"].items()}


def state_nbytes(obj):
    return sum(a.nbytes for a in obj.state_dict()["arrays"].values())


def bounded_load(load, budget):
    """Run ``load()``; return its result or the CheckpointError, checking the peak allocation."""
    tracemalloc.start()
    try:
        out = load()
    except CheckpointError as exc:
        out = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak <= budget, f"load allocated {peak} bytes, budget {budget}"
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fuzz"))


KINDS = st.sampled_from(sorted(MAKERS))


@given(kind=KINDS, data=st.data())
def test_damaged_files_raise_checkpoint_error_or_load_the_saved_state(folder, kind, data):
    obj, raw = saved(kind, folder)
    how = data.draw(st.sampled_from(["truncate", "flip", "overwrite"]))
    if how == "truncate":
        bad = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        i = data.draw(st.integers(0, len(raw) - 1))
        new = (raw[i] ^ (1 << data.draw(st.integers(0, 7)))) if how == "flip" else data.draw(st.integers(0, 255))
        bad = raw[:i] + bytes([new]) + raw[i + 1 :]
    path = f"{folder}/{kind}-bad.ckpt"
    with open(path, "wb") as f:
        f.write(bad)
    budget = 4 * len(raw) + 2**20
    out = bounded_load(lambda: type(obj).load(path, backend="numpy"), budget)
    if not isinstance(out, CheckpointError):
        assert snapshot(out) == snapshot(obj), "a damaged file loaded a different state"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


def _paths(node, prefix=()):
    """Every key path of a JSON header (the state's own fields and the identity fields)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


@st.composite
def edited_states(draw, state):
    header = json.loads(json.dumps(state["header"]))
    arrays = {k: v.copy() for k, v in state["arrays"].items()}
    if draw(st.booleans()) or not arrays:
        paths = [p for p in _paths(header) if p[0] != "sha256"]
        path = draw(st.sampled_from(paths))
        node = header
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = draw(json_values)
    else:
        name = draw(st.sampled_from(sorted(arrays)))
        a = arrays[name]
        what = draw(st.sampled_from(["value", "dtype", "shape", "drop"]))
        if what == "drop":
            del arrays[name]
        elif what == "dtype":
            arrays[name] = a.astype(draw(st.sampled_from([np.float64, np.int8, np.uint8, np.int16, np.float32, np.bool_])))
        elif what == "shape":
            arrays[name] = np.zeros(draw(st.lists(st.integers(0, 9), max_size=3)), a.dtype)
        elif a.size:
            flat = a.reshape(-1).copy()
            i = draw(st.integers(0, flat.size - 1))
            raw = flat.view(np.uint8)
            raw[i * a.itemsize + draw(st.integers(0, a.itemsize - 1))] ^= 1 << draw(st.integers(0, 7))
            arrays[name] = flat.reshape(a.shape)
    return header, arrays


@given(kind=KINDS, data=st.data())
def test_edited_fields_raise_checkpoint_error_or_load_a_working_state(folder, kind, data):
    obj, _ = saved(kind, folder)
    state = obj.state_dict()
    header, arrays = data.draw(edited_states(state))
    target = MAKERS[kind]()
    before = snapshot(target)
    budget = 4 * state_nbytes(obj) + 2**20
    # the digest left as it was: any real change is refused
    changed = json.dumps(header, sort_keys=True) != json.dumps(state["header"], sort_keys=True) or set(arrays) != set(
        state["arrays"]
    ) or any(a.dtype != state["arrays"][k].dtype or a.shape != state["arrays"][k].shape or a.tobytes() != state["arrays"][k].tobytes() for k, a in arrays.items())
    out = bounded_load(lambda: target.load_state_dict({"header": header, "arrays": arrays}), budget)
    if changed:
        assert isinstance(out, CheckpointError)
        assert snapshot(target) == before
    # the digest recomputed: refused with a CheckpointError, or a state that works
    header["sha256"] = digest(header, arrays)
    out = bounded_load(lambda: target.load_state_dict({"header": header, "arrays": arrays}), budget)
    if isinstance(out, CheckpointError):
        assert snapshot(target) == before
    else:
        try:
            use(target)
        except OptimError as exc:  # a typed refusal of the next call is acceptable; anything else is not
            assert not isinstance(exc, CheckpointError), exc
