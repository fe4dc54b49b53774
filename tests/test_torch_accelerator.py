"""PhaseAccelerator: same results as driving the trainer directly, zero-copy exchange, dtype rules, errors, demo."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsaopt.errors import BackendError, ConfigError, DTypeError, NonFiniteError, OptimError, PhaseError  # noqa: E402
from vsaopt.phase import DeterministicPhaseConfig, DeterministicPhaseTrainer, PhaseConfig, PhaseTrainer  # noqa: E402
from vsaopt.torch import PhaseAccelerator, TorchUnavailableError  # noqa: E402
from vsaopt.torch._dlpack import float32_view, from_array, to_array  # noqa: E402

DCFG = DeterministicPhaseConfig(warmup_steps=4, full_steps=2, predict_steps=6, correct_every=3)
PCFG = PhaseConfig(full_steps=3, predict_steps=6, correct_every=3)


def _model(dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).to(dtype)


def _batch(step, dtype=torch.float32):
    g = torch.Generator().manual_seed(1000 + step)
    return torch.randn(16, 6, generator=g).to(dtype), torch.randn(16, 2, generator=g).to(dtype)


def _loop(model, accel, steps, lr=0.05, predict_forward=True):
    """The documented loop; returns each step's p.grad (as float32 numpy) and phase.

    ``predict_forward=False``: PREDICT steps run no forward pass and end with ``end_step(None)``.
    """
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    seen = []
    dtype = next(model.parameters()).dtype
    for step in range(steps):
        info = accel.begin_step()
        opt.zero_grad()
        x, y = _batch(step, dtype)
        loss = torch.nn.functional.mse_loss(model(x), y) if info.needs_backward or predict_forward else None
        if info.needs_backward:
            loss.backward()
            accel.record_gradients()
        else:
            accel.apply_predicted_gradients()
        seen.append((str(info.phase), {n: p.grad.detach().float().numpy().copy() for n, p in model.named_parameters()}))
        opt.step()
        accel.end_step(loss)
    return seen


def _reference(kind, cfg, steps, lr=0.05, predict_forward=True):
    """The same loop driving the trainer with numpy arrays and no accelerator."""
    model = _model()
    names = [n for n, _ in model.named_parameters()]
    cls = DeterministicPhaseTrainer if kind == "deterministic" else PhaseTrainer
    trainer = cls([(n, tuple(p.shape)) for n, p in model.named_parameters()], cfg, backend="numpy")
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    seen = []
    for step in range(steps):
        info = trainer.begin_step()
        opt.zero_grad()
        x, y = _batch(step)
        loss = torch.nn.functional.mse_loss(model(x), y)
        if info.needs_backward:
            loss.backward()
            trainer.record_full_gradients({n: p.grad.numpy().copy() for n, p in model.named_parameters()})
        else:
            pred = trainer.get_predicted_gradients()
            if kind == "phase":
                trainer.apply_correction(pred)
            for n, p in model.named_parameters():
                p.grad = torch.from_numpy(np.array(pred[n]))
        seen.append((str(info.phase), {n: p.grad.numpy().copy() for n, p in model.named_parameters()}))
        opt.step()
        trainer.end_step(loss.item() if info.needs_backward or predict_forward else None)
    return names, seen


@pytest.mark.parametrize("kind,cfg", [("deterministic", DCFG), ("phase", PCFG)])
def test_accelerator_matches_the_trainer_driven_directly(kind, cfg):
    model = _model()
    accel = PhaseAccelerator(model, cfg, trainer=kind, backend="numpy")
    got = _loop(model, accel, 30)
    names, want = _reference(kind, cfg, 30)
    assert [p for p, _ in got] == [p for p, _ in want]
    assert any(p == "PREDICT" for p, _ in got)
    for (_, g), (_, w) in zip(got, want):
        for n in names:
            assert g[n].tobytes() == w[n].tobytes()
    stats = accel.get_stats()
    assert stats.total_steps == 30
    assert accel.backward_passes() == sum(p != "PREDICT" for p, _ in got)


def test_numba_backend_matches_numpy():
    pytest.importorskip("numba")
    m1, m2 = _model(), _model()
    g1 = _loop(m1, PhaseAccelerator(m1, DCFG, backend="numpy"), 20)
    g2 = _loop(m2, PhaseAccelerator(m2, DCFG, backend="numba"), 20)
    assert any(p == "PREDICT" for p, _ in g1)
    assert [p for p, _ in g1] == [p for p, _ in g2]
    assert all(x[1][n].tobytes() == y[1][n].tobytes() for x, y in zip(g1, g2) for n in x[1])


def test_dlpack_exchange_shares_memory():
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    a = to_array(t)
    assert isinstance(a, np.ndarray) and a.shape == (2, 3) and np.shares_memory(a, a)
    a[0, 0] = 42.0
    assert t[0, 0].item() == 42.0
    back = from_array(a)
    back[1, 2] = -1.0
    assert a[1, 2] == -1.0 and t[1, 2].item() == -1.0
    ro = np.zeros(3, np.float32)
    ro.flags.writeable = False
    assert from_array(ro).tolist() == [0.0, 0.0, 0.0]  # read-only arrays are copied
    # float32 gradients are not copied on the way in
    g = torch.ones(4)
    assert float32_view(g, "g").data_ptr() == g.data_ptr()
    assert float32_view(g.to(torch.bfloat16), "g").dtype == torch.float32


def test_record_gradients_reads_p_grad_without_copy(monkeypatch):
    model = _model()
    accel = PhaseAccelerator(model, DCFG, backend="numpy")
    seen = {}
    orig = accel.trainer.record_full_gradients

    def spy(grads):
        seen.update(grads)
        orig(grads)

    monkeypatch.setattr(accel.trainer, "record_full_gradients", spy)
    accel.begin_step()
    x, y = _batch(0)
    torch.nn.functional.mse_loss(model(x), y).backward()
    accel.record_gradients()
    for n, p in model.named_parameters():
        assert np.shares_memory(seen[n], p.grad.numpy())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_other_float_dtypes_are_converted(dtype):
    model = _model(dtype)
    accel = PhaseAccelerator(model, DCFG, backend="numpy")
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    predicted = 0
    for step in range(16):
        info = accel.begin_step()
        opt.zero_grad()
        x, y = _batch(step, dtype)
        loss = torch.nn.functional.mse_loss(model(x), y)
        if info.needs_backward:
            loss.backward()
            accel.record_gradients()
        else:
            accel.trainer.predict_gradients_into = _capture_into(accel.trainer.predict_gradients_into, box := {})
            accel.apply_predicted_gradients()
            for (n, p), got in zip(model.named_parameters(), accel.trainer.layout.split(box["out"]).values()):
                assert p.grad.dtype == dtype
                # the float32 prediction, rounded once to the parameter's dtype
                assert torch.equal(p.grad, torch.from_numpy(np.array(got)).to(dtype))
            predicted += 1
        opt.step()
        accel.end_step(loss)
    assert predicted > 0


def _capture_into(fn, box):
    def wrapper(out):
        fn(out)
        box["out"] = out.copy()

    return wrapper


def test_frozen_parameters_are_left_out():
    model = _model()
    model[0].bias.requires_grad_(False)
    accel = PhaseAccelerator(model, backend="numpy")
    assert accel.parameter_names == ("0.weight", "2.weight", "2.bias")
    assert "trainer='deterministic'" in repr(accel)


def test_named_parameter_inputs():
    model = _model()
    a = PhaseAccelerator(list(model.named_parameters()), backend="numpy")
    b = PhaseAccelerator(dict(model.named_parameters()), backend="numpy")
    assert a.parameter_names == b.parameter_names == ("0.weight", "0.bias", "2.weight", "2.bias")


@pytest.mark.parametrize(
    "args,kwargs,err",
    [
        ((torch.nn.ReLU(),), {}, ConfigError),  # no trainable parameters
        (([("w", torch.zeros(3, dtype=torch.complex64, requires_grad=True))],), {}, DTypeError),
        (([("", torch.zeros(3, requires_grad=True))],), {}, ConfigError),
        (([("w", [1.0, 2.0])],), {}, ConfigError),
        ((42,), {}, ConfigError),
        ((torch.nn.Linear(2, 2),), {"trainer": "sgd"}, ConfigError),
        ((torch.nn.Linear(2, 2), PhaseConfig()), {"trainer": "deterministic"}, ConfigError),
        ((torch.nn.Linear(2, 2),), {"backend": "cupy"}, BackendError),
        ((torch.nn.Linear(2, 2),), {"backend": "nope"}, ConfigError),
        ((torch.nn.Linear(2, 2),), {"apply_corrections": 1}, ConfigError),
    ],
)
def test_constructor_errors(args, kwargs, err):
    with pytest.raises(err):
        PhaseAccelerator(*args, **kwargs)


def test_protocol_errors_leave_the_step_usable():
    model = _model()
    accel = PhaseAccelerator(model, DCFG, backend="numpy")
    with pytest.raises(PhaseError):
        accel.record_gradients()  # no step begun
    info = accel.begin_step()
    assert info.needs_backward
    with pytest.raises(PhaseError, match="no gradient"):
        accel.record_gradients()  # backward not called yet
    with pytest.raises(PhaseError):
        accel.apply_predicted_gradients()  # warmup: no prediction
    x, y = _batch(0)
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    model[0].weight.grad[0, 0] = float("nan")
    with pytest.raises(NonFiniteError):
        accel.record_gradients()
    model[0].weight.grad[0, 0] = 0.0
    accel.record_gradients()
    with pytest.raises(PhaseError):
        accel.record_gradients()  # twice
    with pytest.raises(DTypeError):
        accel.end_step(torch.ones(2))
    with pytest.raises(NonFiniteError):
        accel.end_step(float("inf"))
    with pytest.raises(DTypeError):
        accel.end_step("1.0")
    accel.end_step(loss)
    assert accel.total_step == 1
    with pytest.raises(PhaseError):
        accel.end_step(1.0)


def test_sparse_gradients_are_rejected():
    emb = torch.nn.Embedding(10, 3, sparse=True)
    accel = PhaseAccelerator(emb, backend="numpy")
    accel.begin_step()
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(DTypeError, match="dense"):
        accel.record_gradients()


def test_predicted_gradients_are_written_when_grad_is_none():
    model = _model()
    accel = PhaseAccelerator(model, DCFG, backend="numpy")
    _loop(model, accel, 4)  # warmup
    while True:
        info = accel.begin_step()
        if not info.needs_backward:
            break
        x, y = _batch(0)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        accel.record_gradients()
        accel.end_step(loss)
    for p in model.parameters():
        p.grad = None
    accel.apply_predicted_gradients()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
    with pytest.raises(PhaseError):
        accel.apply_predicted_gradients()  # twice
    accel.end_step(0.5)


def test_state_dict_resumes_bit_identically():
    model = _model()
    accel = PhaseAccelerator(model, DCFG, backend="numpy")
    _loop(model, accel, 12)
    state = accel.state_dict()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    rest_a = _loop(model, accel, 10)
    model2 = _model()
    model2.load_state_dict(weights)
    accel2 = PhaseAccelerator(model2, DCFG, backend="numpy")
    accel2.load_state_dict(state)
    rest_b = [(p, g) for p, g in _loop(model2, accel2, 10)]
    # the loop's batches depend on the local step counter; both resumed loops restart it at 0
    assert [p for p, _ in rest_a] == [p for p, _ in rest_b]
    for (_, a), (_, b) in zip(rest_a, rest_b):
        assert all(a[n].tobytes() == b[n].tobytes() for n in a)


def test_import_vsaopt_does_not_import_torch(tmp_path):
    code = "import sys, vsaopt, vsaopt.phase, vsaopt.ternary; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=tmp_path)


def test_missing_torch_raises_an_import_error_naming_the_extra(tmp_path):
    code = textwrap.dedent(
        """
        import sys
        sys.modules['torch'] = None  # makes 'import torch' fail
        try:
            import vsaopt.torch
        except ImportError as exc:
            from vsaopt.errors import BackendError
            assert isinstance(exc, BackendError), type(exc)
            assert 'vsaopt[torch]' in str(exc), str(exc)
        else:
            raise SystemExit('no error')
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=tmp_path)
    assert issubclass(TorchUnavailableError, ImportError) and issubclass(TorchUnavailableError, OptimError)


def test_digits_comparison_figures():
    pytest.importorskip("sklearn")
    from vsaopt.torch import digits_comparison

    r = digits_comparison(backend="numpy")
    t, v = r["modes"]["torch"], r["modes"]["vsaopt"]
    assert t["steps"] == v["steps"] == r["epochs"] * 23
    assert t["backward_passes"] == t["steps"]
    # stated result (seed 0, defaults): far fewer backward passes at a comparable accuracy
    assert v["backward_passes"] <= 0.35 * t["backward_passes"]
    assert t["test_accuracy"] >= 0.93 and v["test_accuracy"] >= 0.90
    assert v["to_target"]["epoch"] is not None and v["to_target"]["backward_passes"] < t["to_target"]["backward_passes"]
    assert len(v["accuracy_per_epoch"]) == r["epochs"] and v["wall_seconds"] > 0
    assert v["trainer_stats"]["total_steps"] == v["steps"]
    with pytest.raises(ConfigError):
        digits_comparison(optimizer="lbfgs")
    with pytest.raises(ConfigError):
        digits_comparison(modes=("jax",))


@pytest.mark.parametrize("kind,cfg", [("deterministic", DCFG), ("phase", PCFG)])
def test_a_predict_step_may_skip_its_forward_pass(kind, cfg):
    """end_step(None) in PREDICT: the same gradients as the trainer driven with losses only where measured."""
    model = _model()
    accel = PhaseAccelerator(model, cfg, trainer=kind, backend="numpy")
    seen = _loop(model, accel, 40, predict_forward=False)
    _, want = _reference(kind, cfg, 40, predict_forward=False)
    assert "PREDICT" in {phase for phase, _ in seen} and accel.total_step == 40
    for (phase, grads), (ref_phase, ref_grads) in zip(seen, want):
        assert phase == ref_phase and all(grads[n].tobytes() == ref_grads[n].tobytes() for n in grads)
