"""PhaseAccelerator.step(closure): the one-call loop, the trainer chosen by the config, GradScaler and clipping."""

import pytest

torch = pytest.importorskip("torch")

from vsaopt.errors import ConfigError, DTypeError, PhaseError  # noqa: E402
from vsaopt.phase import DeterministicPhaseConfig, DeterministicPhaseTrainer, PhaseConfig, PhaseTrainer  # noqa: E402
from vsaopt.torch import PhaseAccelerator  # noqa: E402

CONFIGS = {"phase": PhaseConfig.risky_fixed(), "deterministic": DeterministicPhaseConfig.risky_fixed(),
           "phase recommended": PhaseConfig.recommended(), "deterministic recommended": DeterministicPhaseConfig.recommended()}


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def _batch(step):
    g = torch.Generator().manual_seed(500 + step)
    return torch.randn(24, 6, generator=g), torch.randn(24, 2, generator=g)


def _clip(model):
    return lambda: torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)


def _explicit(kind, steps, clip=False):
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    accel = PhaseAccelerator(model, CONFIGS[kind], backend="numpy")
    for step in range(steps):
        info = accel.begin_step()
        loss = None
        if info.needs_backward:
            opt.zero_grad()
            x, y = _batch(step)
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            ready = accel.record_gradients()
        else:
            ready = accel.apply_predicted_gradients()
        if ready:
            if clip:
                _clip(model)()
            opt.step()
        accel.end_step(loss)
    return model, accel


def _with_step(kind, steps, clip=False, scaler=None):
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    accel = PhaseAccelerator(model, CONFIGS[kind], backend="numpy", optimizer=opt, scaler=scaler)
    for step in range(steps):
        x, y = _batch(step)

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            (loss if scaler is None else scaler.scale(loss)).backward()
            return loss

        accel.step(closure, before_update=_clip(model) if clip else None)
    return model, accel


def _same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("kind", ["phase", "deterministic"])
@pytest.mark.parametrize("clip", [False, True])
def test_step_gives_the_explicit_protocols_parameters(kind, clip):
    a, accel_a = _explicit(kind, 30, clip)
    b, accel_b = _with_step(kind, 30, clip)
    assert accel_b.get_stats().predict_steps > 0
    assert _same(a, b)
    assert accel_a.get_stats() == accel_b.get_stats()


@pytest.mark.parametrize("kind", ["phase recommended", "deterministic recommended"])
def test_step_gives_the_explicit_protocols_parameters_through_dormant_steps(kind):
    a, accel_a = _explicit(kind, 120)
    b, accel_b = _with_step(kind, 120)
    assert accel_b.trainer.telemetry.step < 110  # the closed gate went dormant: the last steps were not measured
    assert _same(a, b)
    assert accel_a.get_stats() == accel_b.get_stats()
    assert accel_a.state_dict()["sha256"] == accel_b.state_dict()["sha256"]


def test_step_returns_the_loss_or_none_and_skips_the_closure_when_predicting():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    accel = PhaseAccelerator(model, CONFIGS["deterministic"], backend="numpy", optimizer=opt)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(_batch(0)[0]), _batch(0)[1])
        loss.backward()
        return loss

    losses = [accel.step(closure) for _ in range(30)]
    assert len(calls) == accel.backward_passes() == sum(loss is not None for loss in losses)
    assert all(isinstance(loss, torch.Tensor) for loss in losses if loss is not None)


def test_a_gradscaler_step_equals_the_unscaled_step():
    a, _ = _with_step("deterministic", 30)
    b, accel = _with_step("deterministic", 30, scaler=torch.amp.GradScaler("cpu", init_scale=2.0**10))
    assert accel.get_stats().predict_steps > 0
    assert _same(a, b)  # power-of-two scales unscale exactly


def test_a_gradscaler_overflow_skips_the_step_without_recording_it():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    accel = PhaseAccelerator(model, CONFIGS["deterministic"], backend="numpy", optimizer=opt, scaler=scaler)
    before = [p.detach().clone() for p in model.parameters()]

    def closure():
        opt.zero_grad()
        loss = model(_batch(0)[0]).sum() * float("inf")
        scaler.scale(loss).backward()
        return loss

    accel.step(closure)
    assert accel.skipped_nonfinite == 1 and accel.total_step == 1
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    assert scaler.get_scale() < 2.0**10


@pytest.mark.parametrize("bad", [None, "1.0", torch.ones(3)])
def test_a_closure_returning_no_scalar_loss_is_refused_and_the_step_can_be_rerun(bad):
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    accel = PhaseAccelerator(model, backend="numpy", optimizer=opt)
    x, y = _batch(0)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return bad if bad is not None or closure.fail else loss

    closure.fail = True
    with pytest.raises(DTypeError, match="closure"):
        accel.step(closure)
    assert accel.total_step == 0 and accel.backward_passes() == 0
    with pytest.raises(PhaseError):
        accel.begin_step()  # the step is still open
    if bad is None:
        closure.fail = False
        assert accel.step(closure) is not None  # reruns the open step
        assert accel.total_step == 1


def test_step_needs_an_optimizer_and_callables():
    model = _model()
    with pytest.raises(ConfigError, match="optimizer"):
        PhaseAccelerator(model, backend="numpy").step(lambda: 0.0)
    accel = PhaseAccelerator(model, backend="numpy", optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ConfigError, match="closure"):
        accel.step(3.0)
    with pytest.raises(ConfigError, match="before_update"):
        accel.step(lambda: 0.0, before_update=1)
    with pytest.raises(ConfigError, match="optimizer"):
        PhaseAccelerator(model, optimizer="sgd")
    with pytest.raises(ConfigError, match="scaler"):
        PhaseAccelerator(model, scaler=torch.amp.GradScaler("cpu"))
    other = torch.nn.Linear(2, 2)
    with pytest.raises(ConfigError, match="optimizer: does not hold"):
        PhaseAccelerator(model, optimizer=torch.optim.SGD(other.parameters(), lr=0.1))


def test_the_config_chooses_the_trainer():
    model = _model()
    assert isinstance(PhaseAccelerator(model, PhaseConfig.recommended(), backend="numpy").trainer, PhaseTrainer)
    assert isinstance(PhaseAccelerator(model, DeterministicPhaseConfig.recommended(), backend="numpy").trainer, DeterministicPhaseTrainer)
    assert isinstance(PhaseAccelerator(model, backend="numpy").trainer, DeterministicPhaseTrainer)
    assert isinstance(PhaseAccelerator(model, trainer="phase", backend="numpy").trainer, PhaseTrainer)
    with pytest.raises(ConfigError, match="'deterministic'.*PhaseConfig.*'phase'"):
        PhaseAccelerator(model, PhaseConfig(), trainer="deterministic")
    with pytest.raises(ConfigError, match="config"):
        PhaseAccelerator(model, {"warmup_steps": 3})


def test_a_learning_rate_scheduler_steps_after_step():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    accel = PhaseAccelerator(model, CONFIGS["phase"], backend="numpy", optimizer=opt)
    x, y = _batch(0)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    for _ in range(20):
        accel.step(closure)
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**4)
