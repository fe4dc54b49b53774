"""PhaseAccelerator when the model changes under it, predictions that overflow a parameter's dtype, and edited states."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsaopt.errors import BackendError, CheckpointError, ConfigError, NonFiniteError, PhaseError, ShapeError  # noqa: E402
from vsaopt.phase import DeterministicPhaseConfig, PhaseConfig  # noqa: E402
from vsaopt.torch import PhaseAccelerator  # noqa: E402
from test_torch_grad_buffer import _batch, _model, _state_bytes  # noqa: E402

PRESETS = {"phase": PhaseConfig.risky_fixed(), "deterministic": DeterministicPhaseConfig.risky_fixed()}


def _step(model, accel, opt, step, set_to_none=True):
    """One step of the README loop; returns its phase name."""
    info = accel.begin_step()
    opt.zero_grad(set_to_none=set_to_none)
    loss = None
    if info.needs_backward:
        x, y = _batch(step)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        accel.record_gradients()
    else:
        accel.apply_predicted_gradients()
    opt.step()
    accel.end_step(loss)
    return str(info.phase)


# --- freezing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["phase", "deterministic"])
@pytest.mark.parametrize("set_to_none,momentum", [(True, 0.9), (False, 0.0)])
def test_a_layer_frozen_mid_run_stays_where_it_was(kind, set_to_none, momentum):
    model = _model()
    accel = PhaseAccelerator(model, PRESETS[kind], trainer=kind, backend="numpy")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=momentum)
    for step in range(8):
        _step(model, accel, opt, step, set_to_none)
    frozen = model[0]
    frozen.requires_grad_(False)
    before = [p.detach().clone() for p in frozen.parameters()]
    phases = {_step(model, accel, opt, step, set_to_none) for step in range(8, 40)}
    assert {"PREDICT", "FULL"} <= phases and (kind == "phase" or "CORRECT" in phases)
    for p, b in zip(frozen.parameters(), before):
        assert torch.equal(p, b)
    # the trainable layer kept training, with predicted gradients too
    assert not torch.equal(model[2].weight, _model()[2].weight)


def test_an_unfrozen_layer_is_followed_again():
    model = _model()
    accel = PhaseAccelerator(model, PRESETS["phase"], trainer="phase", backend="numpy")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    model[0].requires_grad_(False)
    for step in range(12):
        _step(model, accel, opt, step)
    model[0].requires_grad_(True)
    written = 0
    for step in range(12, 40):
        if _step(model, accel, opt, step) == "PREDICT" and model[0].weight.grad is not None:
            written += 1
    assert written > 0


def test_a_frozen_parameter_whose_grad_was_the_buffer_keeps_its_values():
    model = _model()
    accel = PhaseAccelerator(model, PRESETS["deterministic"], backend="numpy")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    step = 0
    while _step(model, accel, opt, step) != "PREDICT":
        step += 1
    w = model[0].weight
    assert accel.grad_buffer.holds(0, w.grad)  # p.grad is the buffer's view
    w.requires_grad_(False)
    kept = w.grad.clone()
    while True:  # the next PREDICT step must not write into the frozen parameter's p.grad
        step += 1
        info = accel.begin_step()
        if info.needs_backward:
            x, y = _batch(step)
            torch.nn.functional.mse_loss(model(x), y).backward()
            accel.record_gradients()
            accel.end_step(None)
            continue
        accel.apply_predicted_gradients()
        accel.end_step(None)
        break
    assert torch.equal(w.grad, kept) and not accel.grad_buffer.holds(0, w.grad)


def test_every_parameter_frozen_is_a_phase_error_and_changes_nothing():
    model = _model()
    accel = PhaseAccelerator(model, backend="numpy")
    accel.begin_step()
    x, y = _batch(0)
    torch.nn.functional.mse_loss(model(x), y).backward()
    model.requires_grad_(False)
    before = _state_bytes(accel)
    with pytest.raises(PhaseError, match="trainable"):
        accel.record_gradients()
    assert _state_bytes(accel) == before


# --- casts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("cast", ["double", "half", "bfloat16"])
def test_a_model_cast_after_construction_still_gets_predictions(cast):
    model = _model()
    accel = PhaseAccelerator(model, PRESETS["deterministic"], backend="numpy")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(4):
        _step(model, accel, opt, step)
    getattr(model, cast)()
    dtype = model[0].weight.dtype
    predicted = 0
    for step in range(4, 30):
        info = accel.begin_step()
        opt.zero_grad()
        if info.needs_backward:
            x, y = _batch(step)
            loss = torch.nn.functional.mse_loss(model(x.to(dtype)), y.to(dtype))
            loss.backward()
            accel.record_gradients()
        else:
            loss = None
            before = [p.detach().clone() for p in model.parameters()]
            accel.apply_predicted_gradients()
            for p, view in zip(model.parameters(), accel.grad_buffer.views):
                assert p.grad is not None and p.grad.dtype == dtype
                assert torch.equal(p.grad, view.to(dtype))  # the float32 prediction, rounded once
            opt.step()
            assert any(not torch.equal(p, b) for p, b in zip(model.parameters(), before))
            accel.end_step(None)
            predicted += 1
            continue
        opt.step()
        accel.end_step(loss)
    assert predicted > 0


# --- predictions that overflow the parameter's dtype ------------------------------------------------


def _fp16_run(kind, skip):
    """A float16 parameter recorded with finite gradients that grow to 60000 (the least-squares fit extrapolates past 65504)."""
    w = torch.nn.Parameter(torch.zeros(4, dtype=torch.float16))
    accel = PhaseAccelerator([("w", w)], PRESETS[kind], trainer=kind, backend="numpy", skip_nonfinite=skip)
    results = []
    for step in range(40):
        info = accel.begin_step()
        if info.needs_backward:
            w.grad = torch.full((4,), min(60000.0, 20000.0 + 4000.0 * step), dtype=torch.float16)
            accel.record_gradients()
        else:
            w.grad = None
            try:
                results.append(accel.apply_predicted_gradients())
            except NonFiniteError as exc:
                results.append(exc)
            assert w.grad is None or bool(torch.isfinite(w.grad).all())
        accel.end_step(None)
    return accel, results


def test_a_float16_prediction_that_overflows_is_a_typed_error():
    _, results = _fp16_run("deterministic", skip=False)
    errors = [r for r in results if isinstance(r, NonFiniteError)]
    assert errors and "'w'" in str(errors[0]) and "float16" in str(errors[0])
    assert any(r is True for r in results)


def test_skip_nonfinite_skips_a_prediction_that_overflows():
    accel, results = _fp16_run("deterministic", skip=True)
    assert results.count(False) == accel.skipped_nonfinite > 0
    assert not any(isinstance(r, Exception) for r in results)


# --- parameters that change shape, device or identity ------------------------------------------------


def test_a_parameter_grown_after_begin_step_is_refused_not_hung(tmp_path):
    # the shortest reproducer once looped forever inside a numba kernel: run it where a hang cannot stall the suite
    code = textwrap.dedent(
        """
        import torch
        from vsaopt.errors import ShapeError
        from vsaopt.torch import PhaseAccelerator
        p = torch.nn.Parameter(torch.randn(1000))
        a = PhaseAccelerator([("w", p)])
        a.begin_step()
        p.data = torch.randn(2000)
        (p * 2).sum().backward()
        try:
            a.record_gradients()
        except ShapeError as exc:
            assert "'w'" in str(exc) and "(1000,)" in str(exc) and "(2000,)" in str(exc), exc
            print("refused")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "refused", out.stderr


@pytest.mark.parametrize("new_size", [500, 2000])
def test_a_resized_parameter_is_refused_and_the_step_stays_usable(new_size):
    p = torch.nn.Parameter(torch.randn(1000))
    q = torch.nn.Parameter(torch.randn(10))
    accel = PhaseAccelerator([("w", p), ("b", q)], backend="numpy")
    accel.begin_step()
    old = p.data
    p.data = torch.randn(new_size)
    ((p * 2).sum() + q.sum()).backward()
    before = _state_bytes(accel)
    with pytest.raises(ShapeError, match="'w'"):
        accel.record_gradients()
    assert _state_bytes(accel) == before
    p.data, p.grad = old, torch.ones(1000)
    assert accel.record_gradients() is True
    accel.end_step(1.0)


def test_an_embedding_resized_in_place_is_refused_at_the_next_prediction():
    emb = torch.nn.Embedding(10, 4)
    accel = PhaseAccelerator(emb, PRESETS["phase"], trainer="phase", backend="numpy")
    opt = torch.optim.SGD(emb.parameters(), lr=0.1)
    while True:
        info = accel.begin_step()
        if not info.needs_backward:
            break
        opt.zero_grad()
        emb(torch.tensor([1, 2, 3])).sum().backward()
        accel.record_gradients()
        accel.end_step(None)
    emb.weight.data = torch.cat([emb.weight.data, torch.zeros(2, 4)])
    with pytest.raises(ShapeError, match="'weight'"):
        accel.apply_predicted_gradients()


def test_a_parameter_replaced_in_the_module_is_refused():
    model = _model()
    accel = PhaseAccelerator(model, backend="numpy")
    model[2].bias = torch.nn.Parameter(torch.zeros(2))
    accel.begin_step()
    x, y = _batch(0)
    torch.nn.functional.mse_loss(model(x), y).backward()
    with pytest.raises(ConfigError, match="'2.bias' was replaced"):
        accel.record_gradients()


def test_a_meta_parameter_is_named():
    with pytest.raises(BackendError, match="'w'"):
        PhaseAccelerator([("w", torch.empty(3, device="meta", requires_grad=True))])


def test_a_gradient_of_another_shape_is_refused():
    p = torch.nn.Parameter(torch.randn(2, 3))
    accel = PhaseAccelerator([("w", p)], backend="numpy")
    accel.begin_step()
    p.grad = torch.ones(2, 3)
    p.grad.data = torch.ones(6)  # torch lets .data change a gradient's shape
    with pytest.raises(ShapeError, match="'w'"):
        accel.record_gradients()


# --- state dict ---------------------------------------------------------------------------------------


def _trained_state():
    model = _model()
    accel = PhaseAccelerator(model, PRESETS["deterministic"], backend="numpy", skip_nonfinite=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(10):
        _step(model, accel, opt, step)
    return model, accel


@pytest.mark.parametrize(
    "edit",
    [
        {"present": [False, True, True, True]},
        {"skipped_nonfinite": 3},
        {"skipping": True},
        {"trainer": "phase"},
        {"sha256": "0" * 64},
        {"extra": 1},
    ],
    ids=["present", "skipped", "skipping", "trainer", "digest", "extra-key"],
)
def test_an_edited_state_is_refused_and_changes_nothing(edit):
    _, accel = _trained_state()
    state = {**accel.state_dict(), **edit}
    other_model, other = _trained_state()
    for _ in range(3):
        _step(other_model, other, torch.optim.SGD(other_model.parameters(), lr=0.05), 50)
    before = (_state_bytes(other), other.skipped_nonfinite, other.state_dict()["present"])
    with pytest.raises(CheckpointError):
        other.load_state_dict(state)
    assert (_state_bytes(other), other.skipped_nonfinite, other.state_dict()["present"]) == before


def test_an_inconsistent_state_with_a_recomputed_digest_is_refused():
    from vsaopt.torch.accelerator import _outer_digest

    _, accel = _trained_state()
    for edit in ({"skipping": True}, {"skipped_nonfinite": 11}):
        state = {**accel.state_dict(), **edit}
        state["sha256"] = _outer_digest(state)
        with pytest.raises(CheckpointError):
            accel.load_state_dict(state)


def test_a_state_round_trips_through_torch_save(tmp_path):
    _, accel = _trained_state()
    path = tmp_path / "accel.pt"
    torch.save(accel.state_dict(), path)
    model2 = _model()
    other = PhaseAccelerator(model2, PRESETS["deterministic"], backend="numpy", skip_nonfinite=True)
    other.load_state_dict(torch.load(path, weights_only=True))
    assert _state_bytes(other) == _state_bytes(accel)
    assert np.array_equal(other.grad_buffer.flat.numpy().shape, accel.grad_buffer.flat.numpy().shape)
