"""State that cannot be corrupted or lost: copies out and in, checked fields, loadable saves, bounded loads.

Each test names the defect it guards against; each asserts the typed error and,
where there is state, that the object's state bytes are unchanged.
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest

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
from vsaopt.errors import CheckpointError, NonFiniteError, PhaseError

F32 = np.float32
SHAPES = [("w", (4, 3)), ("b", (3,))]


def grads(k, scale=1.0):
    rng = np.random.default_rng(k)
    return {n: (scale * (0.5 + 0.3 * rng.standard_normal(s))).astype(F32) for n, s in SHAPES}


def drive(trainer, start, stop, scale=1.0):
    for k in range(start, stop):
        info = trainer.begin_step()
        if info.needs_backward:
            trainer.record_full_gradients(grads(k, scale))
        else:
            g = trainer.get_predicted_gradients()
            if hasattr(trainer, "apply_correction"):
                trainer.apply_correction(g)
        trainer.end_step(1.0 + 0.01 * k)


def snapshot(obj):
    sd = obj.state_dict()
    return json.dumps(sd["header"], sort_keys=True), {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in sd["arrays"].items()}


def reframed(state, edit_header=None, edit_arrays=None):
    """A copy of ``state`` edited, with its digest recomputed (what a deliberate tamperer would do)."""
    header = json.loads(json.dumps(state["header"]))
    arrays = {k: v.copy() for k, v in state["arrays"].items()}
    if edit_header:
        edit_header(header)
    if edit_arrays:
        edit_arrays(arrays)
    header["sha256"] = digest(header, arrays)
    return {"header": header, "arrays": arrays}


def phase_trainer(steps=6):
    t = PhaseTrainer(SHAPES, PhaseConfig(full_steps=2, predict_steps=6, correct_every=3), backend="numpy")
    drive(t, 0, steps)
    return t


def det_trainer(steps=12):
    cfg = DeterministicPhaseConfig(warmup_steps=3, full_steps=2, predict_steps=6, correct_every=3)
    t = DeterministicPhaseTrainer(SHAPES, cfg, backend="numpy")
    drive(t, 0, steps)
    return t


# --- 1. state dicts are copies, both ways ---------------------------------------------------


@pytest.mark.parametrize("make", [phase_trainer, det_trainer], ids=["phase", "deterministic"])
def test_state_dict_arrays_do_not_alias_the_trainer(make):
    t = make()
    before = snapshot(t)
    for a in t.state_dict()["arrays"].values():
        a[...] = 7  # mutating what state_dict returned
    assert snapshot(t) == before
    sd = t.state_dict()
    u = make(0)
    u.load_state_dict(sd)
    for a in sd["arrays"].values():
        a[...] = 3  # mutating what was loaded
    assert snapshot(u) == before


def test_named_arrays_of_the_issue_are_copies():
    t = phase_trainer(6)  # the sixth step was CORRECT: a prediction and a pending correction exist
    names = {k for k in t.state_dict()["arrays"] if k.endswith(("last_prediction", "correction"))}
    assert names == {"predictor.last_prediction", "predictor.correction"}
    d = det_trainer()
    assert {"predictor.residual", "predictor.baseline", "predictor.velocity"} <= set(d.state_dict()["arrays"])


# --- 2. apply_correction outside a step keeps the pending correction --------------------------


def test_apply_correction_outside_a_step_is_refused_and_keeps_the_correction():
    t = phase_trainer(6)
    assert t.state_dict()["header"]["state"]["predictor"]["has_correction"]
    before = snapshot(t)
    with pytest.raises(PhaseError, match="apply_correction"):
        t.apply_correction(grads(0))
    assert snapshot(t) == before


def test_apply_correction_in_a_full_step_is_refused():
    t = PhaseTrainer(SHAPES, PhaseConfig(full_steps=2, predict_steps=6, correct_every=3), backend="numpy")
    assert str(t.begin_step().phase) == "FULL"
    before = snapshot(t)
    with pytest.raises(PhaseError, match="FULL"):
        t.apply_correction(grads(0))
    assert snapshot(t) == before


# --- 3. accumulator scales and exponents are range-checked ---------------------------------


def accumulator(stochastic=True):
    acc = TernaryGradientAccumulator(SHAPES, TernaryConfig(seed=1, use_stochastic_rounding=stochastic), backend="numpy")
    for k in range(3):
        acc.accumulate(grads(k))
    return acc


@pytest.mark.parametrize(
    "stochastic, name, value",
    [
        (False, "scale_sum", np.nan),
        (False, "scale_sum", -1.0),
        (True, "scale_sum", 0.5),  # stochastic mode holds no scale sums
        (True, "exp", 30000),
        (True, "exp", -30000),
        (False, "exp", -1),
        (True, "bound", 200),
    ],
)
def test_accumulator_refuses_out_of_range_scalars(stochastic, name, value):
    acc = accumulator(stochastic)
    before = snapshot(acc)

    def edit(arrays):
        arrays[name] = arrays[name].copy()
        arrays[name][0] = value

    with pytest.raises(CheckpointError, match=r"inconsistent|outside|exceeds|NaN"):
        acc.load_state_dict(reframed(acc.state_dict(), edit_arrays=edit))
    assert snapshot(acc) == before


# --- 4. tampered fields with a recomputed digest --------------------------------------------


def _edit(*changes):
    """Set each ``(path, value)`` under the header's ``state``."""

    def edit(h):
        for path, value in changes:
            node = h["state"]
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    "make, changes",
    [
        (phase_trainer, [(("predictor", "has_prediction"), "no")]),
        (phase_trainer, [(("predictor", "steps_since_full"), 2.7)]),
        (phase_trainer, [(("total_step",), -1)]),
        (phase_trainer, [(("phase",), "SOMETIMES")]),
        (phase_trainer, [(("in_step",), 1)]),
        (phase_trainer, [(("taken", "FULL"), True)]),
        (phase_trainer, [(("full_len",), 10**6)]),
        (phase_trainer, [(("recorded",), True)]),  # recorded outside a step
        (det_trainer, [(("phase",), "PREDICT"), (("predictor", "ready"), False)]),  # "warmup not complete" in PREDICT
        (det_trainer, [(("predictor", "steps"), [5, 3])]),
        (det_trainer, [(("predictor", "global_step"), 10**30)]),
        (det_trainer, [(("predictor", "recorded"), 0)]),
    ],
)
def test_tampered_fields_are_refused(make, changes):
    t = make()
    before = snapshot(t)
    with pytest.raises(CheckpointError):
        t.load_state_dict(reframed(t.state_dict(), edit_header=_edit(*changes)))
    assert snapshot(t) == before


def test_speedup_is_derived_not_stored():
    t = phase_trainer()
    sd = t.state_dict()
    assert "speedup" not in sd["arrays"] and "speedup" not in sd["header"]["state"]
    u = PhaseTrainer(SHAPES, t.config, backend="numpy")
    u.load_state_dict(sd)
    assert u.speedup_ratio == t.speedup_ratio and u.get_stats() == t.get_stats()


# --- 5. every state that can be saved can be loaded -----------------------------------------


@pytest.mark.parametrize(
    "cls, cfg",
    [
        (PhaseTrainer, PhaseConfig(full_steps=2, predict_steps=6, correct_every=3)),
        (DeterministicPhaseTrainer, DeterministicPhaseConfig(warmup_steps=3, full_steps=2, predict_steps=6, correct_every=3)),
    ],
    ids=["phase", "deterministic"],
)
def test_overflowing_predictions_save_and_load_and_continue_identically(tmp_path, cls, cfg):
    def huge(k):  # alternating for the momentum extrapolation, a steep line for the least-squares fit
        v = (3e38 if k % 2 else -3e38) if cls is PhaseTrainer else min(-3e38 + 1e38 * k, 3e38)
        return {n: np.full(s, v, F32) for n, s in SHAPES}

    def run(t, start, stop):
        out = []
        for k in range(start, stop):
            info = t.begin_step()
            if info.needs_backward:
                t.record_full_gradients(huge(k))
            else:
                try:
                    out.append(b"".join(v.tobytes() for v in t.get_predicted_gradients().values()))
                except NonFiniteError as exc:  # an overflowed prediction is refused, the trainer unchanged
                    out.append(str(exc).encode())
            t.end_step(1.0)
        return out

    full = cls(SHAPES, cfg, backend="numpy")
    trace = run(full, 0, 20)
    assert any(b"overflows float32" in b for b in trace)  # the predictions did overflow
    assert all(np.isfinite(np.frombuffer(b, F32)).all() for b in trace if b"overflows" not in b)
    t = cls(SHAPES, cfg, backend="numpy")
    first = run(t, 0, 9)
    t.save(tmp_path / "huge.ckpt")
    resumed = cls.load(tmp_path / "huge.ckpt", backend="numpy")
    assert first + run(resumed, 9, 20) == trace


# --- 6. nothing the trainer holds is dropped; compressors resume ------------------------------


def test_the_trainers_ternary_accumulator_is_saved(tmp_path):
    t = phase_trainer()
    for k in range(3):
        t.ternary_accumulator.accumulate(grads(k))
    t.save(tmp_path / "t.ckpt")
    u = PhaseTrainer.load(tmp_path / "t.ckpt", backend="numpy")
    assert u.ternary_accumulator.count == 3
    assert snapshot(u.ternary_accumulator) == snapshot(t.ternary_accumulator)


def test_compressor_resumes_bit_identically(tmp_path):
    def run(c, start, stop):
        return [c.compress(grads(k)).to_json() for k in range(start, stop)]

    make = lambda: VSAGradientCompressor(SHAPES, VSAConfig(dimension=64, seed=5), backend="numpy", mode="per_tensor", error_feedback=True)
    trace = run(make(), 0, 8)
    c = make()
    first = run(c, 0, 3)
    c.save(tmp_path / "c.ckpt")
    resumed = VSAGradientCompressor.load(tmp_path / "c.ckpt", backend="numpy")
    assert resumed.step == 3 and first + run(resumed, 3, 8) == trace


def test_comm_state_round_trips():
    pytest.importorskip("torch")
    from vsaopt.torch import TernaryCommState

    s = TernaryCommState(seed=3, error_feedback=True, backend="numpy")
    s._steps = {0: 5, 2: 1}
    s._residuals = {0: np.arange(6, dtype=F32)}
    r = TernaryCommState(seed=3, error_feedback=True, backend="numpy")
    r.load_state_dict(s.state_dict())
    assert r._steps == {0: 5, 2: 1} and r._residuals[0].tobytes() == s._residuals[0].tobytes()
    other = TernaryCommState(seed=4, error_feedback=True, backend="numpy")
    with pytest.raises(CheckpointError, match="config"):
        other.load_state_dict(s.state_dict())


# --- 7. bounded loads: compressed members and crafted layouts --------------------------------


def test_a_deflated_member_is_refused_before_it_is_inflated(tmp_path):
    t = phase_trainer()
    path = tmp_path / "bomb.ckpt"
    t.save(path)
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    header = np.lib.format.read_array(io.BytesIO(members["__header__.npy"]))
    bomb = io.BytesIO()
    np.lib.format.write_array(bomb, np.zeros(2**27, np.uint8))  # 128 MiB of zeros, about 130 kB deflated
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, header)
        z.writestr("__header__.npy", buf.getvalue())
        z.writestr("predictor.history.npy", bomb.getvalue())
    assert os.path.getsize(path) < 2**20
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(CheckpointError, match="compressed|more bytes than the file"):
        PhaseTrainer.load(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 * 2**20


def test_crafted_param_shapes_give_a_checkpoint_error(tmp_path):
    t = phase_trainer()
    state = reframed(t.state_dict())
    state["header"]["param_shapes"] = [["w", [2**20, 2**20]], ["b", [3]]]
    state["header"]["sha256"] = digest(state["header"], state["arrays"])
    from vsaopt.checkpoint import write

    write(tmp_path / "big.ckpt", state)
    with pytest.raises(CheckpointError):
        PhaseTrainer.load(tmp_path / "big.ckpt")


# --- 10. save paths ---------------------------------------------------------------------------


def test_save_onto_a_folder_or_into_a_missing_folder_is_a_checkpoint_error(tmp_path):
    t = phase_trainer()
    with pytest.raises(CheckpointError, match="folder"):
        t.save(tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        t.save(tmp_path / "missing" / "t.ckpt")


def test_save_through_a_symlink_keeps_the_link(tmp_path):
    t = phase_trainer()
    target = tmp_path / "real.ckpt"
    link = tmp_path / "link.ckpt"
    t.save(target)
    link.symlink_to(target)
    drive(t, 10, 15)
    t.save(link)
    assert link.is_symlink() and PhaseTrainer.load(target).total_step == t.total_step == 11


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_rejected_real_step_leaves_a_full_history_and_what_follows_unchanged(backend):
    """Defect: a record is gathered into the ring's spare row; a rejected one must not touch any history row.

    Two trainers are driven alike; one is first handed a non-finite gradient
    in a real step with a full ring.  Its state is unchanged, and after the
    same good steps both states are the same bytes.
    """
    cfg = DeterministicPhaseConfig(warmup_steps=3, full_steps=2, predict_steps=2, correct_every=1, history_window=1,
                                   adaptive_phases=False)
    a, b = (DeterministicPhaseTrainer(SHAPES, cfg, backend=backend) for _ in range(2))
    for t in (a, b):
        drive(t, 0, 14)
    bad = grads(14)
    bad["b"][1] = np.inf
    for k in range(14, 30):
        for t in (a, b):
            info = t.begin_step()
            if info.needs_backward and t is a:
                before = snapshot(a)
                with pytest.raises(NonFiniteError):
                    a.record_full_gradients(bad)
                assert snapshot(a) == before
            if info.needs_backward:
                t.record_full_gradients(grads(k))
            else:
                t.get_predicted_gradients()
            t.end_step(1.0)
    assert a.get_stats().correct_steps > 0 and snapshot(a) == snapshot(b)
