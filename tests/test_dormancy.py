"""Dormant measurement while the gate stays closed (spec/schedule.md §11): what is recorded, resume, checkpoints, the adapter."""

import json
import math

import numpy as np
import pytest

from vsaopt.errors import CheckpointError, ConfigError, PhaseError
from vsaopt.phase import DeterministicPhaseConfig, DeterministicPhaseTrainer, GateConfig, PhaseConfig, PhaseTrainer
from vsaopt.phase.dormancy import DormantSampler

N = 12
TRAINERS = [(PhaseTrainer, PhaseConfig.recommended), (DeterministicPhaseTrainer, DeterministicPhaseConfig.recommended)]


def _grads(steps, seed=0, loud=(0, 10**9)):
    """A fixed direction plus noise; noise of scale 3 (the gate closes) on steps in [loud[0], loud[1])."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(N)
    scale = np.where((np.arange(steps) >= loud[0]) & (np.arange(steps) < loud[1]), 3.0, 0.02)[:, None]
    return (base + scale * rng.standard_normal((steps, N))).astype(np.float32)


def _step(trainer, g, loss=1.0):
    info = trainer.begin_step()
    if info.needs_backward:
        trainer.record_full_gradients({"g": g}, batch_size=8)
    else:
        trainer.get_predicted_gradients()
    trainer.end_step(loss)
    return info


@pytest.mark.parametrize("cls, preset", TRAINERS)
def test_a_closed_gate_goes_dormant_and_a_dormant_step_reads_nothing(cls, preset):
    trainer = cls([("g", (N,))], preset(), backend="numpy")
    grads = _grads(200)
    infos = [_step(trainer, g) for g in grads]
    records = [i.records for i in infos]
    assert all(i.needs_backward for i in infos)  # the gate never opened
    assert records[:9] == [True] * 9 and 15 < sum(records) < 60
    # on a dormant step the gradients are not read: a malformed mapping passes, and the state does not change
    while trainer._monitor.dormancy.records:
        _step(trainer, grads[0])
    before = trainer.state_dict()
    info = trainer.begin_step()
    assert info.needs_backward and not info.records and not trainer.step_records
    trainer.record_full_gradients({"not a parameter": "not an array"})
    with pytest.raises(PhaseError):  # the call order still holds
        trainer.record_full_gradients({})
    trainer.end_step(1.0)
    after = trainer.state_dict()
    assert before["arrays"].keys() == after["arrays"].keys()
    for k in before["arrays"]:
        if not k.startswith("loss") and k != "recent_losses" and "history" not in k.split(".")[-1]:
            assert np.array_equal(before["arrays"][k], after["arrays"][k], equal_nan=True), k
    assert after["header"]["state"]["telemetry"]["dormancy"]["left"] == before["header"]["state"]["telemetry"]["dormancy"]["left"] - 1


@pytest.mark.parametrize("cls, preset", TRAINERS)
def test_predictable_gradients_wake_a_dormant_gate_at_the_next_sample(cls, preset):
    trainer = cls([("g", (N,))], preset(), backend="numpy")
    infos = [_step(trainer, g) for g in _grads(260, seed=1, loud=(0, 150))]
    first_predict = next(i for i, info in enumerate(infos) if not info.needs_backward)
    assert 150 < first_predict <= 150 + 2 * (64 + 5)  # at most two gaps and samples late (a sample may straddle step 150)
    assert sum(not i.needs_backward for i in infos[first_predict:]) > 0.5 * (260 - first_predict)


def test_a_sample_restarts_rho_and_averages_quality():
    cfg = PhaseConfig.recommended()
    trainer = PhaseTrainer([("g", (N,))], cfg, backend="numpy")
    grads = _grads(120, seed=2)
    samples = 0
    for g in grads:
        info = trainer.begin_step()
        sample = info.records and trainer._monitor.dormancy.gap > 0 and not trainer._monitor.dormancy.priming
        quality = trainer.telemetry.quality
        trainer.record_full_gradients({"g": g})
        if sample:
            samples += 1
            t = trainer.telemetry
            assert t.rho == t.consecutive_cosine
            d = np.float32(0.8)
            expected = np.float32(np.float32(d * np.float32(quality)) + np.float32(np.float32(1 - float(d)) * np.float32(t.prediction_cosine)))
            assert t.quality == float(np.clip(expected, -1, 1))
        trainer.end_step(1.0)
    assert samples >= 3


def test_the_sampler_rule():
    s = DormantSampler(GateConfig(enabled=True, dormant_after=3, dormant_max_gap=10), primes=2)
    for _ in range(2):
        s.after_measurement(False)
        assert s.records and s.gap == 0
    gaps = []
    for _ in range(5):
        s.after_measurement(False)
        gaps.append(s.gap)
        for _ in range(s.gap):
            assert not s.records
            s.skipped()
        assert s.records and s.priming
        s.primed(), s.primed()
        assert s.records and not s.priming
    assert gaps == [3, 6, 10, 10, 10]
    s.after_measurement(True)
    assert (s.zeros, s.gap, s.left, s.prime) == (0, 0, 0, 0)
    off = DormantSampler(GateConfig(enabled=False, dormant_after=3), primes=1)
    for _ in range(10):
        off.after_measurement(False)
    assert off.records and off.gap == 0


@pytest.mark.parametrize("field, value", [("dormant_after", -1), ("dormant_max_gap", 0), ("dormant_after", 1.5),
                                          ("dormant_max_gap", True)])
def test_bad_dormancy_fields_are_config_errors(field, value):
    with pytest.raises(ConfigError, match=field):
        GateConfig(enabled=True, **{field: value})


@pytest.mark.parametrize("cls, preset", TRAINERS)
@pytest.mark.parametrize("cut", [5, 9, 12, 30, 77, 151, 170])
def test_resume_inside_dormancy_is_bit_identical(cls, preset, cut):
    grads = _grads(220, seed=3, loud=(0, 150))
    whole = cls([("g", (N,))], preset(), backend="numpy")
    for g in grads:
        _step(whole, g)
    first = cls([("g", (N,))], preset(), backend="numpy")
    for g in grads[:cut]:
        _step(first, g)
    info = first.begin_step()  # saved inside a step, after its record
    if info.needs_backward:
        first.record_full_gradients({"g": grads[cut]}, batch_size=8)
    else:
        first.get_predicted_gradients()
    state = json.loads(json.dumps(first.state_dict()["header"]))
    resumed = cls([("g", (N,))], preset(), backend="numpy")
    resumed.load_state_dict({"header": state, "arrays": first.state_dict()["arrays"]})
    resumed.end_step(1.0)
    for g in grads[cut + 1:]:
        _step(resumed, g)
    assert resumed.state_dict()["header"]["sha256"] == whole.state_dict()["header"]["sha256"]


def _edited(state, **fields):
    from vsaopt.checkpoint import digest

    header = json.loads(json.dumps(state["header"]))
    header["state"]["telemetry"]["dormancy"].update(fields)
    header.pop("sha256")
    header["sha256"] = digest(header, state["arrays"])
    return {"header": header, "arrays": state["arrays"]}


def test_inconsistent_dormancy_states_are_refused():
    trainer = PhaseTrainer([("g", (N,))], PhaseConfig.recommended(), backend="numpy")
    for g in _grads(20, seed=4):
        _step(trainer, g)
    state = trainer.state_dict()
    d = state["header"]["state"]["telemetry"]["dormancy"]
    assert d["gap"] > 0
    for bad in ({"left": d["gap"] + 1}, {"zeros": 7}, {"gap": 65}, {"prime": 2}, {"gap": 0}, {"zeros": -1}):
        with pytest.raises(CheckpointError):
            PhaseTrainer([("g", (N,))], PhaseConfig.recommended(), backend="numpy").load_state_dict(_edited(state, **bad))
    fresh = PhaseTrainer([("g", (N,))], PhaseConfig.recommended(), backend="numpy")
    fresh.load_state_dict(_edited(state))  # unedited: loads
    assert fresh.state_dict()["header"]["sha256"] == state["header"]["sha256"]


def test_a_state_without_the_dormancy_fields_loads_awake():
    """States written before dormant measurement existed have no ``dormancy``/``unrecorded`` fields: all 0."""
    from vsaopt.checkpoint import digest

    cfg = PhaseConfig(full_steps=1, predict_steps=4, correct_every=5, adaptive_phases=False, gate=GateConfig(enabled=True))
    trainer = PhaseTrainer([("g", (N,))], cfg, backend="numpy")
    for g in _grads(10, seed=5):
        _step(trainer, g)
    state = trainer.state_dict()
    header = json.loads(json.dumps(state["header"]))
    del header["state"]["telemetry"]["dormancy"], header["state"]["unrecorded"]
    header.pop("sha256")
    header["sha256"] = digest(header, state["arrays"])
    other = PhaseTrainer([("g", (N,))], cfg, backend="numpy")
    other.load_state_dict({"header": header, "arrays": state["arrays"]})
    assert other.state_dict()["header"]["sha256"] == state["header"]["sha256"]


def test_a_dormant_step_calls_no_kernel():
    from vsaopt.backend import get_backend

    calls = []
    be = get_backend("numpy")
    trainer = PhaseTrainer([("g", (N,))], PhaseConfig.recommended(), backend=be)
    for g in _grads(12, seed=6):
        _step(trainer, g)
    trainer._be = _counting(be, calls)
    info = trainer.begin_step()
    assert not info.records
    trainer.record_full_gradients({"g": _grads(1)[0]})
    trainer.end_step(1.0)
    assert calls == []



def _counting(be, calls):
    """``be`` with every callable attribute counted into ``calls`` by name."""

    class Counting:
        def __getattr__(self, name):
            attr = getattr(be, name)
            if callable(attr) and not isinstance(attr, type):
                def counted(*a, **k):
                    calls.append(name)
                    return attr(*a, **k)
                return counted
            return attr

    return Counting()


@pytest.mark.parametrize("cls, preset", TRAINERS)
def test_take_dormant_step_is_begin_record_end_in_one_call(cls, preset):
    grads = _grads(160, seed=7)
    stepwise = cls([("g", (N,))], preset(), backend="numpy")
    fused = cls([("g", (N,))], preset(), backend="numpy")
    taken = 0
    for k, g in enumerate(grads):
        loss = 1.0 + k / 64
        dormant = fused.next_step_dormant
        assert dormant == (not _step(stepwise, g, loss).records)
        if dormant:
            fused.take_dormant_step(loss)
            taken += 1
        else:
            _step(fused, g, loss)
    assert taken > 100
    assert fused.state_dict()["header"]["sha256"] == stepwise.state_dict()["header"]["sha256"]


def test_take_dormant_step_refuses_other_steps_and_bad_losses_without_a_change():
    trainer = PhaseTrainer([("g", (N,))], PhaseConfig.recommended(), backend="numpy")
    with pytest.raises(PhaseError, match="not a dormant step"):
        trainer.take_dormant_step(1.0)  # the first step records
    for g in _grads(40, seed=8):
        _step(trainer, g)
        if trainer.next_step_dormant:
            break
    before = trainer.state_dict()["header"]["sha256"]
    for bad, error in ((math.nan, "NonFiniteError"), ("1.0", "DTypeError")):
        with pytest.raises(Exception) as e:
            trainer.take_dormant_step(bad)
        assert type(e.value).__name__ == error
    trainer.begin_step()
    assert not trainer.next_step_dormant  # a step in progress
    with pytest.raises(PhaseError, match="has not ended"):
        trainer.take_dormant_step(1.0)
    trainer.end_step(None)
    assert trainer.state_dict()["header"]["sha256"] != before  # the step above counted, the refused calls did not
    trainer.take_dormant_step(None)


def test_a_least_squares_sample_fits_the_history_once():
    """A dormant sample's priming records only refill the history: the line is fitted for the measured record alone."""
    from vsaopt.backend import get_backend

    be = get_backend("numpy")
    trainer = DeterministicPhaseTrainer([("g", (N,))], DeterministicPhaseConfig.recommended(), backend=be)
    grads = iter(_grads(200, seed=9))
    while not trainer.next_step_dormant:
        _step(trainer, next(grads))
    while trainer.next_step_dormant:
        _step(trainer, next(grads))
    calls = []
    trainer._be = trainer._predictor._be = _counting(be, calls)
    records = 0
    while not trainer.next_step_dormant:  # the sample: history_window + 2 priming records, then the measured one
        records += _step(trainer, next(grads)).records
    assert records == 5 and calls.count("wls_fit") == 1


# --- the PyTorch adapter -------------------------------------------------------------------------------------------

torch = pytest.importorskip("torch")


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


def _batches(steps):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(steps)]


@pytest.mark.parametrize("preset", [PhaseConfig.recommended, DeterministicPhaseConfig.recommended])
def test_with_the_gate_closed_the_adapter_trains_as_plain_torch_bit_for_bit(preset):
    from vsaopt.torch import PhaseAccelerator

    plain, model = _model(), _model()
    opt_plain = torch.optim.SGD(plain.parameters(), lr=0.05, momentum=0.9)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    accel = PhaseAccelerator(model, preset(), optimizer=opt, backend="numpy")
    dormant = 0
    for x, y in _batches(150):
        opt_plain.zero_grad()
        torch.nn.functional.cross_entropy(plain(x), y).backward()
        opt_plain.step()
        info = accel.begin_step()
        assert info.needs_backward  # random labels: the gate stays closed
        dormant += not info.records

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss

        accel.step(closure)
    assert dormant > 100
    for a, b in zip(plain.parameters(), model.parameters()):
        assert torch.equal(a, b)


def test_skip_nonfinite_checks_a_dormant_steps_gradients():
    from vsaopt.torch import PhaseAccelerator

    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    accel = PhaseAccelerator(model, PhaseConfig.recommended(), optimizer=opt, backend="numpy", skip_nonfinite=True)
    batches = _batches(40)
    for x, y in batches:
        if not accel.begin_step().records:
            break
        accel.step(lambda: _loss_backward(model, opt, x, y))
    before = [p.detach().clone() for p in model.parameters()]
    x, y = batches[0]
    x = x.clone()
    x[0, 0] = math.nan

    assert accel.step(lambda: _loss_backward(model, opt, x, y)) is not None
    assert accel.skipped_nonfinite == 1
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def _loss_backward(model, opt, x, y):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    return loss


@pytest.mark.parametrize("preset", [PhaseConfig.recommended, DeterministicPhaseConfig.recommended])
def test_step_takes_a_dormant_step_in_one_trainer_call_with_the_same_result(preset):
    """``step(closure)`` alone (the trainer's one-call dormant step) against ``begin_step()`` then ``step`` (the general path)."""
    from vsaopt.torch import PhaseAccelerator

    runs = []
    for explicit in (False, True):
        model = _model()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        accel = PhaseAccelerator(model, preset(), optimizer=opt, backend="numpy")
        fast = 0
        for x, y in _batches(150):
            fast += accel.trainer.next_step_dormant
            if explicit:
                accel.begin_step()
            accel.step(lambda: _loss_backward(model, opt, x, y))
        runs.append((fast, accel.state_dict()["sha256"], [p.detach().clone() for p in model.parameters()]))
    (fast, digest, params), (_, digest_explicit, params_explicit) = runs
    assert fast > 100 and digest == digest_explicit
    assert all(torch.equal(a, b) for a, b in zip(params, params_explicit))


def test_a_failed_dormant_step_stays_open_as_any_step_does():
    from vsaopt.errors import DTypeError, NonFiniteError
    from vsaopt.torch import PhaseAccelerator

    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    accel = PhaseAccelerator(model, PhaseConfig.recommended(), optimizer=opt, backend="numpy")
    batches = _batches(40)
    for x, y in batches:
        if accel.trainer.next_step_dormant:
            break
        accel.step(lambda: _loss_backward(model, opt, x, y))
    step = accel.total_step

    def boom():
        raise RuntimeError("data loader failed")

    with pytest.raises(RuntimeError):
        accel.step(boom)
    assert accel.trainer.in_step and not accel.trainer.step_records and accel.total_step == step
    with pytest.raises(DTypeError):
        accel.step(lambda: torch.ones(2, requires_grad=True).sum().reshape(1).expand(2))
    accel.end_step(None)
    assert accel.total_step == step + 1 and accel.trainer.next_step_dormant
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(NonFiniteError):  # the optimizer stepped; the loss is refused at the end and the step stays open
        accel.step(lambda: _loss_backward(model, opt, x, y) * math.nan)
    assert accel.trainer.in_step and not accel.trainer.step_records and accel.total_step == step + 1
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    accel.end_step(None)
    assert accel.step(lambda: _loss_backward(model, opt, x, y)) is not None and accel.total_step == step + 3
