"""Checkpoints: state dicts and files, bit-identical resume (also in a fresh process), damaged files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

from vsaopt.errors import CheckpointError
from vsaopt.phase import (
    DeterministicPhaseConfig,
    DeterministicPhaseTrainer,
    LossHistoryConfig,
    PhaseConfig,
    PhaseTrainer,
)
from vsaopt.testing import assert_bit_equal, to_host

F32 = np.float32
SHAPES = [("enc.weight", (5, 7)), ("enc.bias", (5,)), ("head", (3,))]
STEPS = 300


def gradient(step):
    """Deterministic, slowly drifting gradients with noise, as host float32 arrays."""
    rng = np.random.default_rng(1000 + step)
    return {n: (0.5 + 0.01 * step + 0.2 * rng.standard_normal(s)).astype(F32) for n, s in SHAPES}


def loss_at(step):
    return float(1.0 + 0.5 * np.sin(step / 17.0) + 0.001 * step)


def make(kind, be):
    if kind == "phase":
        return PhaseTrainer(SHAPES, PhaseConfig(full_steps=4, predict_steps=12, correct_every=4), backend=be)
    cfg = DeterministicPhaseConfig(warmup_steps=6, full_steps=3, predict_steps=10, correct_every=4, residual_threshold=0.3,
                                   loss_history_config=LossHistoryConfig(max_history=64))
    return DeterministicPhaseTrainer(SHAPES, cfg, backend=be)


def drive(trainer, be, start, stop):
    """Run steps [start, stop); return the trace (phase info and prediction bytes per step)."""
    trace = []
    for step in range(start, stop):
        info = trainer.begin_step()
        rec = [step, str(info.phase), info.phase_step, info.cycle, info.phase_changed]
        if info.needs_backward:
            gr = {n: be.xp.asarray(a) for n, a in gradient(step).items()}
            trainer.record_full_gradients(gr)
            if str(info.phase) == "CORRECT" and hasattr(trainer, "apply_correction"):
                trainer.apply_correction(gr)
                rec.append(b"".join(to_host(gr[n]).tobytes() for n, _ in SHAPES).hex())
        else:
            pred = trainer.get_predicted_gradients()
            rec.append(b"".join(to_host(pred[n]).tobytes() for n, _ in SHAPES).hex())
        trainer.end_step(loss_at(step))
        trace.append(rec)
    return trace


def same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["header"] == sb["header"]
    assert sorted(sa["arrays"]) == sorted(sb["arrays"])
    for k in sa["arrays"]:
        assert_bit_equal(sa["arrays"][k], sb["arrays"][k], k)


@pytest.mark.parametrize("kind", ["phase", "deterministic"])
def test_resume_over_hundreds_of_steps_is_bit_identical(backend, kind, tmp_path):
    full = make(kind, backend)
    trace = drive(full, backend, 0, STEPS)
    assert {r[1] for r in trace} >= {"FULL", "PREDICT", "CORRECT"}
    for cut in (0, 7, 131, 222):
        t = make(kind, backend)
        first = drive(t, backend, 0, cut)
        path = tmp_path / f"{kind}-{cut}.ckpt"
        t.save(path)
        resumed = type(t).load(path, backend=backend)
        assert first + drive(resumed, backend, cut, STEPS) == trace, f"cut at {cut}"
        same_state(resumed, full)
    # the in-memory state dict round trip as well
    t = make(kind, backend)
    drive(t, backend, 0, 150)
    other = make(kind, backend)
    other.load_state_dict(t.state_dict())
    assert drive(other, backend, 150, STEPS) == trace[150:]


@pytest.mark.parametrize("kind", ["phase", "deterministic"])
def test_resume_in_a_fresh_process(reference, kind, tmp_path):
    t = make(kind, reference)
    drive(t, reference, 0, 140)
    path = tmp_path / "run.ckpt"
    t.save(path)
    expected = drive(t, reference, 140, 260)
    out = tmp_path / "trace.json"
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_phase_checkpoint import drive, make
        from vsaopt.backend import get_backend
        be = get_backend("numpy")
        cls = type(make({kind!r}, be))
        t = cls.load({str(path)!r}, backend=be)
        json.dump(drive(t, be, 140, 260), open({str(out)!r}, "w"))
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(out.read_text()) == json.loads(json.dumps(expected))


def test_checkpoint_file_is_versioned_without_pickle(tmp_path, reference):
    t = make("deterministic", reference)
    drive(t, reference, 0, 30)
    path = tmp_path / "a.ckpt"
    t.save(path)
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    assert "__header__.npy" in names
    with np.load(path, allow_pickle=False) as npz:
        header = json.loads(npz["__header__"].tobytes())
        assert all(npz[k].dtype != object for k in npz.files)
    assert header["format"] == "vsaopt.checkpoint" and header["version"] == 3
    assert header["kind"] == "DeterministicPhaseTrainer" and len(header["sha256"]) == 64
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # no temporary file left


def _rewrite(path, mutate):
    with np.load(path, allow_pickle=False) as npz:
        members = {k: npz[k] for k in npz.files}
    mutate(members)
    with open(path, "wb") as f:
        np.savez(f, **members)


def test_damaged_or_mismatched_files_raise_checkpoint_error(tmp_path, reference):
    t = make("phase", reference)
    drive(t, reference, 0, 40)
    good = tmp_path / "good.ckpt"
    t.save(good)
    raw = good.read_bytes()

    (tmp_path / "trunc.ckpt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError):
        PhaseTrainer.load(tmp_path / "trunc.ckpt")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError):
        PhaseTrainer.load(tmp_path / "empty.ckpt")
    with pytest.raises(CheckpointError):
        PhaseTrainer.load(tmp_path / "missing.ckpt")

    tampered = tmp_path / "tampered.ckpt"
    tampered.write_bytes(raw)

    def flip(members):
        a = members["predictor.history"].copy()
        a.flat[3] += 1.0
        members["predictor.history"] = a

    _rewrite(tampered, flip)
    with pytest.raises(CheckpointError, match="digest"):
        PhaseTrainer.load(tampered)

    def edit_header(members):
        h = json.loads(members["__header__"].tobytes())
        h["state"]["total_step"] += 1
        members["__header__"] = np.frombuffer(json.dumps(h).encode(), np.uint8)

    edited = tmp_path / "edited.ckpt"
    edited.write_bytes(raw)
    _rewrite(edited, edit_header)
    with pytest.raises(CheckpointError):
        PhaseTrainer.load(edited)

    with pytest.raises(CheckpointError, match="PhaseTrainer"):
        DeterministicPhaseTrainer.load(good)

    other = PhaseTrainer(SHAPES, PhaseConfig(full_steps=5), backend=reference)
    before = other.state_dict()
    with pytest.raises(CheckpointError, match="config"):
        other.load_state_dict(t.state_dict())
    wrong_shapes = PhaseTrainer([("enc.weight", (5, 7))], t.config, backend=reference)
    with pytest.raises(CheckpointError, match="parameters"):
        wrong_shapes.load_state_dict(t.state_dict())
    after = other.state_dict()
    assert before["header"] == after["header"]

    sd = t.state_dict()
    sd["header"]["version"] = 99
    with pytest.raises(CheckpointError, match="version"):
        t.load_state_dict(sd)
    with pytest.raises(CheckpointError):
        t.load_state_dict({"header": {}, "arrays": {}})


def test_pickled_payload_is_refused(tmp_path):
    path = tmp_path / "obj.ckpt"
    with open(path, "wb") as f:
        np.savez(f, __header__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError):
        PhaseTrainer.load(path)


def test_save_overwrites_atomically(tmp_path, reference):
    t = make("phase", reference)
    path = tmp_path / "x.ckpt"
    t.save(path)
    drive(t, reference, 0, 10)
    t.save(path)
    assert PhaseTrainer.load(path).total_step == 10
