"""PhaseAccelerator on its flat gradient buffer: zero-copy p.grad, absent and untracked parameters, skip_nonfinite, torch.save."""

import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsaopt.errors import CheckpointError, ConfigError, DTypeError, NonFiniteError, PhaseError, ShapeError  # noqa: E402
from vsaopt.phase import DeterministicPhaseConfig, PhaseConfig  # noqa: E402
from vsaopt.torch import PhaseAccelerator  # noqa: E402
from vsaopt.torch.param_source import UntrackedParameterWarning  # noqa: E402

PRESETS = {"phase": PhaseConfig.risky_fixed(), "deterministic": DeterministicPhaseConfig.risky_fixed()}


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))


def _batch(step):
    g = torch.Generator().manual_seed(1000 + step)
    return torch.randn(16, 6, generator=g), torch.randn(16, 2, generator=g)


def _steps(model, accel, opt, steps, start=0, set_to_none=True, on_predict=None):
    """The documented loop (no forward pass in PREDICT, ``end_step(None)``); returns each step's p.grad bytes."""
    seen = []
    for step in range(start, start + steps):
        info = accel.begin_step()
        opt.zero_grad(set_to_none=set_to_none)
        loss = None
        if info.needs_backward:
            x, y = _batch(step)
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            assert accel.record_gradients() is True
        else:
            accel.apply_predicted_gradients()
            if on_predict is not None:
                on_predict()
        seen.append((str(info.phase), [p.grad.numpy().tobytes() if p.grad is not None else None for p in model.parameters()]))
        opt.step()
        accel.end_step(loss)
    return seen


def _state_bytes(accel):
    sd = accel.trainer.state_dict()
    return sd["header"], {k: v.tobytes() for k, v in sd["arrays"].items()}


@pytest.mark.parametrize("kind", ["phase", "deterministic"])
@pytest.mark.parametrize("set_to_none", [True, False])
def test_predict_writes_the_prediction_into_p_grad_in_place(kind, set_to_none):
    model = _model()
    accel = PhaseAccelerator(model, PRESETS[kind], trainer=kind, backend="numpy")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    predictor = accel.trainer._predictor
    pointers, checked = set(), []

    def check():
        for p, view in zip(model.parameters(), accel.grad_buffer.views):
            pointers.add((id(p), p.grad.data_ptr()))
            assert p.grad.data_ptr() == view.data_ptr()
        checked.append(accel.grad_buffer.flat.numpy().tobytes() == want[-1])

    want = []
    real_prediction = predictor.peek_flat

    def peek_then_check():
        check()

    # record the trainer's own prediction just before each PREDICT step writes it
    orig_predict = accel.trainer.predict_gradients_into

    def spy(out):
        want.append(np.array(real_prediction(), copy=True).tobytes())
        orig_predict(out)

    accel.trainer.predict_gradients_into = spy
    _steps(model, accel, opt, 30, set_to_none=set_to_none, on_predict=peek_then_check)
    assert len(checked) >= 8 and all(checked)
    assert len(pointers) == len(list(model.parameters()))  # one memory per parameter across all PREDICT steps


def test_backward_into_the_buffer_views_needs_no_copy():
    """With zero_grad(set_to_none=False) backward accumulates into the views; the trainer records exactly those values."""
    model = _model()
    accel = PhaseAccelerator(model, PRESETS["phase"], trainer="phase", backend="numpy")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    _steps(model, accel, opt, 3, set_to_none=False)
    ptrs = [p.grad.data_ptr() for p in model.parameters()]
    assert ptrs == [v.data_ptr() for v in accel.grad_buffer.views]
    while not accel.begin_step().needs_backward:
        accel.apply_predicted_gradients()
        accel.end_step(None)
    opt.zero_grad(set_to_none=False)
    x, y = _batch(99)
    torch.nn.functional.mse_loss(model(x), y).backward()
    assert [p.grad.data_ptr() for p in model.parameters()] == ptrs
    expected = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
    accel.record_gradients()
    assert accel.trainer._predictor.newest_flat().tobytes() == expected.tobytes()
    accel.end_step(None)


@pytest.mark.parametrize("kind", ["phase", "deterministic"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_the_trainer_takes_the_buffers_pieces_without_checking_them_again(kind, backend, monkeypatch):
    """The buffer's pieces are of the trainer's own layout: recorded as they are, no second validation of names and shapes."""
    from vsaopt import _grads

    model = _model()
    accel = PhaseAccelerator(model, PRESETS[kind], trainer=kind, backend=backend)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def second_check(*args, **kwargs):
        raise AssertionError("the adapter's own pieces were validated again")

    monkeypatch.setattr(_grads, "_float32_arrays", second_check)
    for step in range(6):
        info = accel.begin_step()
        opt.zero_grad()
        loss = None
        if info.needs_backward:
            x, y = _batch(step)
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            expected = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
            accel.record_gradients()
            assert accel.trainer._predictor.newest_flat().tobytes() == expected.tobytes()
        else:
            accel.apply_predicted_gradients()
        opt.step()
        accel.end_step(loss)
    with pytest.raises(AssertionError, match="validated again"):  # a user's mapping still is
        accel.trainer.layout.pieces({n: p.detach().numpy() for n, p in model.named_parameters()}, accel.backend, "g")


@pytest.mark.parametrize("kind", ["phase", "deterministic"])
def test_a_failed_record_changes_nothing(kind):
    model = _model()
    accel = PhaseAccelerator(model, PRESETS[kind], trainer=kind, backend="numpy")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    _steps(model, accel, opt, 5)
    while not accel.begin_step().needs_backward:
        accel.apply_predicted_gradients()
        accel.end_step(None)
    opt.zero_grad()
    x, y = _batch(50)
    torch.nn.functional.mse_loss(model(x), y).backward()
    before, grads = _state_bytes(accel), [p.grad for p in model.parameters()]
    model[2].weight.grad[1, 1] = float("inf")
    with pytest.raises(NonFiniteError, match="2.weight"):
        accel.record_gradients()
    with pytest.raises(ConfigError):
        accel.record_gradients(batch_size=0)
    assert _state_bytes(accel) == before and accel.skipped_nonfinite == 0
    assert all(p.grad is g for p, g in zip(model.parameters(), grads))  # p.grad not swapped for the buffer's views
    model[2].weight.grad[1, 1] = 0.0
    assert accel.record_gradients(batch_size=16) is True
    accel.end_step(1.0)
    assert accel.trainer.telemetry.step >= 0


def test_a_parameter_without_gradient_is_skipped_like_torch_optim():
    """An unused parameter: zeros recorded for it, its p.grad left None in PREDICT steps, the optimizer never moves it."""
    torch.manual_seed(0)
    used, unused = torch.nn.Linear(6, 2), torch.nn.Linear(6, 2)
    model = torch.nn.ModuleDict({"used": used, "unused": unused})
    accel = PhaseAccelerator(model, PRESETS["phase"], trainer="phase", backend="numpy")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=0.1)
    frozen = [p.detach().clone() for p in unused.parameters()]
    names = accel.parameter_names
    for step in range(12):
        info = accel.begin_step()
        opt.zero_grad()
        x, y = _batch(step)
        if info.needs_backward:
            loss = torch.nn.functional.mse_loss(used(x), y)
            loss.backward()
            accel.record_gradients()
            flat = accel.trainer._predictor.newest_flat()
            grads = accel.trainer._layout.split(flat)
            assert not np.any(grads["unused.weight"]) and not np.any(grads["unused.bias"])
            assert np.any(grads["used.weight"])
        else:
            accel.apply_predicted_gradients()
            loss = None
        assert unused.weight.grad is None and unused.bias.grad is None and used.weight.grad is not None
        opt.step()
        accel.end_step(loss)
    assert names == ("used.weight", "used.bias", "unused.weight", "unused.bias")
    assert all(torch.equal(a, b) for a, b in zip(frozen, unused.parameters()))
    assert accel.begin_step().needs_backward
    opt.zero_grad()
    with pytest.raises(PhaseError, match="no gradient"):
        accel.record_gradients()  # no parameter at all has a gradient: backward was not called


def test_unfrozen_and_added_parameters_are_reported_once():
    model = _model()
    model[0].bias.requires_grad_(False)
    accel = PhaseAccelerator(model, PRESETS["phase"], trainer="phase", backend="numpy")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _steps(model, accel, opt, 1)  # nothing to report
    model[0].bias.requires_grad_(True)
    model.register_parameter("extra", torch.nn.Parameter(torch.zeros(3)))
    with pytest.warns(UntrackedParameterWarning) as rec:
        _steps(model, accel, opt, 3, start=1)  # PREDICT, PREDICT, then FULL: its record_gradients reports
    text = " ".join(str(w.message) for w in rec)
    assert "'0.bias'" in text and "'extra'" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _steps(model, accel, opt, 3, start=4)  # the next FULL step: reported once only


def test_unfrozen_parameter_of_a_list_is_reported():
    model = _model()
    model[2].bias.requires_grad_(False)
    accel = PhaseAccelerator(list(model.named_parameters()), PRESETS["phase"], trainer="phase", backend="numpy")
    model[2].bias.requires_grad_(True)
    accel.begin_step()
    x, y = _batch(0)
    torch.nn.functional.mse_loss(model(x), y).backward()
    with pytest.warns(UntrackedParameterWarning, match="'2.bias'"):
        accel.record_gradients()


def test_parameter_sources_and_their_names():
    model = _model()
    assert PhaseAccelerator(model.parameters(), backend="numpy").parameter_names == ("0", "1", "2", "3")
    assert PhaseAccelerator(model, backend="numpy").parameter_names == ("0.weight", "0.bias", "2.weight", "2.bias")
    w = model[0].weight
    with pytest.raises(ConfigError, match="already given"):
        PhaseAccelerator([("a", w), ("b", w)], backend="numpy")
    with pytest.raises(ConfigError, match="duplicate"):
        PhaseAccelerator([("a", w), ("a", model[0].bias)], backend="numpy")


@pytest.mark.parametrize("kind", ["phase", "deterministic"])
def test_skip_nonfinite_skips_the_step_without_recording(kind):
    model = _model()
    accel = PhaseAccelerator(model, PRESETS[kind], trainer=kind, backend="numpy", skip_nonfinite=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    _steps(model, accel, opt, 6)
    while not accel.begin_step().needs_backward:
        accel.apply_predicted_gradients()
        accel.end_step(None)
    opt.zero_grad()
    x, y = _batch(60)
    loss = torch.nn.functional.mse_loss(model(x), y) * float("nan")
    loss.backward()
    history = accel.trainer._predictor.newest_flat().copy()
    samples, total = accel.trainer.telemetry.samples, accel.total_step
    weights = [p.detach().clone() for p in model.parameters()]
    assert accel.record_gradients() is False
    with pytest.raises(PhaseError, match="skipped"):
        accel.record_gradients()
    accel.end_step(loss)  # a NaN loss: not used
    assert accel.skipped_nonfinite == 1 and accel.total_step == total + 1
    assert accel.trainer._predictor.newest_flat().tobytes() == history.tobytes()
    assert accel.trainer.telemetry.samples == samples
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))  # the caller skipped opt.step()
    _steps(model, accel, opt, 6, start=61)  # training goes on
    assert accel.skipped_nonfinite == 1
    sd = accel.state_dict()
    assert sd["skipped_nonfinite"] == 1


def _plain_types(obj):
    if isinstance(obj, dict):
        return all(isinstance(k, str) and _plain_types(v) for k, v in obj.items())
    if isinstance(obj, list):
        return all(_plain_types(v) for v in obj)
    return obj is None or isinstance(obj, (str, int, float, bool, torch.Tensor))


@pytest.mark.parametrize("kind", ["phase", "deterministic"])
def test_torch_save_and_weights_only_load_resume_bit_identically(kind, tmp_path):
    model = _model()
    accel = PhaseAccelerator(model, PRESETS[kind], trainer=kind, backend="numpy", skip_nonfinite=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    _steps(model, accel, opt, 13)
    state = accel.state_dict()
    assert _plain_types(state)
    path = tmp_path / "accel.pt"
    torch.save({"accel": state, "model": model.state_dict(), "opt": opt.state_dict()}, path)
    rest_a = _steps(model, accel, opt, 12, start=13)

    loaded = torch.load(path, weights_only=True)
    model2 = _model(seed=5)
    model2.load_state_dict(loaded["model"])
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.05, momentum=0.9)
    opt2.load_state_dict(loaded["opt"])
    accel2 = PhaseAccelerator(model2, PRESETS[kind], trainer=kind, backend="numpy", skip_nonfinite=True)
    accel2.load_state_dict(loaded["accel"])
    rest_b = _steps(model2, accel2, opt2, 12, start=13)
    assert rest_a == rest_b and any(p == "PREDICT" for p, _ in rest_a)
    assert accel2.get_stats().to_dict() == accel.get_stats().to_dict()


def test_load_state_dict_rejects_other_states_and_changes_nothing():
    model = _model()
    accel = PhaseAccelerator(model, PRESETS["phase"], trainer="phase", backend="numpy")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    _steps(model, accel, opt, 4)
    good = accel.state_dict()
    before = _state_bytes(accel)
    other = PhaseAccelerator(model, PRESETS["deterministic"], backend="numpy").state_dict()
    bad_names = PhaseAccelerator(model.parameters(), PRESETS["phase"], trainer="phase", backend="numpy").state_dict()
    tampered = {**good, "trainer_state": {**good["trainer_state"], "arrays": dict(good["trainer_state"]["arrays"])}}
    key = next(iter(tampered["trainer_state"]["arrays"]))
    tampered["trainer_state"]["arrays"][key] = tampered["trainer_state"]["arrays"][key] + 1
    for bad in (other, bad_names, tampered, {**good, "present": [True]}, {**good, "skipped_nonfinite": -1}, {"format": "x"}, []):
        with pytest.raises(CheckpointError):
            accel.load_state_dict(bad)
        assert _state_bytes(accel) == before
    buf = io.BytesIO()
    torch.save(good, buf)
    buf.seek(0)
    accel.load_state_dict(torch.load(buf, weights_only=True))
    assert _state_bytes(accel) == before


@pytest.mark.parametrize("kind", ["phase", "deterministic"])
@pytest.mark.parametrize("compression", ["none", "bfloat16", "ternary"])
def test_predict_gradients_into_matches_get_predicted_gradients(kind, compression):
    """Same values and the same trainer state as the mapping API, step after step."""
    import dataclasses

    from vsaopt.phase import DeterministicPhaseTrainer, PhaseTrainer, PredictionConfig

    if kind == "phase":
        cfg = PhaseConfig(full_steps=2, predict_steps=4, correct_every=2,
                          prediction_config=PredictionConfig(history_compression=compression))
        cls = PhaseTrainer
    else:
        cfg = dataclasses.replace(DeterministicPhaseConfig.risky_fixed(), history_compression=compression)
        cls = DeterministicPhaseTrainer
    shapes = [("w", (3, 4)), ("b", (5,))]
    a, b = cls(shapes, cfg, backend="numpy"), cls(shapes, cfg, backend="numpy")
    rng = np.random.default_rng(0)
    out = np.empty(17, np.float32)
    predicted = 0
    for step in range(24):
        ia, ib = a.begin_step(), b.begin_step()
        assert ia.phase == ib.phase
        if ia.needs_backward:
            g = {"w": rng.standard_normal((3, 4)).astype(np.float32), "b": rng.standard_normal(5).astype(np.float32)}
            a.record_full_gradients(g)
            b.record_full_gradients(g)
        else:
            want = a.get_predicted_gradients()
            b.predict_gradients_into(out)
            assert out.tobytes() == np.concatenate([want["w"].ravel(), want["b"]]).tobytes()
            predicted += 1
        a.end_step(1.0)
        b.end_step(1.0)
        sa, sb = a.state_dict(), b.state_dict()
        assert sa["header"] == sb["header"] and all(sa["arrays"][k].tobytes() == sb["arrays"][k].tobytes() for k in sa["arrays"])
    assert predicted >= 6
    while b.begin_step().needs_backward:
        b.record_full_gradients({"w": np.ones((3, 4), np.float32), "b": np.ones(5, np.float32)})
        b.end_step(1.0)
    before = b.state_dict()["header"]
    with pytest.raises(ShapeError):
        b.predict_gradients_into(np.empty(16, np.float32))
    with pytest.raises(DTypeError):
        b.predict_gradients_into(np.empty(17, np.float64))
    assert b.state_dict()["header"] == before
    b.predict_gradients_into(out)  # still this step's prediction to make
