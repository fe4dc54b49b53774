"""Saving and resuming a framework-free run (README, "Saving and resuming"): SGDMomentum's state."""

import numpy as np
import pytest

from vsaopt import PhaseConfig, PhaseTrainer
from vsaopt.errors import CheckpointError
from vsaopt.train import MLP, SGDMomentum


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 8)).astype(np.float32), rng.integers(0, 3, n)


def _start(lr=0.1, momentum=0.9):
    net = MLP([8, 16, 3], seed=0, backend="numpy")
    return net, SGDMomentum(net.params, lr=lr, momentum=momentum)


def _train(net, opt, steps, trainer=None):
    x, y = _data()
    for _ in range(steps):
        if trainer is None or trainer.begin_step().needs_backward:
            loss, grads = net.loss_and_gradients(x, y)
            if trainer is not None:
                trainer.record_full_gradients(grads, batch_size=len(y))
        else:
            loss, grads = None, trainer.get_predicted_gradients()
        opt.step(grads)
        if trainer is not None:
            trainer.end_step(loss)


def _same_params(a, b):
    return all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


def test_a_run_resumed_through_npz_files_is_bit_identical(tmp_path):
    net, opt = _start()
    trainer = PhaseTrainer(net.param_shapes(), PhaseConfig.recommended(), backend="numpy")
    _train(net, opt, 12, trainer)
    np.savez(tmp_path / "net.npz", **net.params)
    np.savez(tmp_path / "opt.npz", **opt.state_dict())
    trainer.save(tmp_path / "trainer.ckpt")
    _train(net, opt, 12, trainer)

    net2, opt2 = _start(lr=0.5, momentum=0.1)  # other hyperparameters: the state brings its own
    net2.set_params(dict(np.load(tmp_path / "net.npz")))
    opt2.load_state_dict(dict(np.load(tmp_path / "opt.npz")))
    trainer2 = PhaseTrainer.load(tmp_path / "trainer.ckpt", backend="numpy")
    _train(net2, opt2, 12, trainer2)
    assert _same_params(net, net2)
    assert (opt2.lr, opt2.momentum) == (np.float32(0.1), np.float32(0.9))
    assert trainer2.get_stats().predict_steps > 0  # the resumed part predicted as well


def test_the_velocity_is_what_makes_the_resumed_run_identical():
    net, opt = _start()
    _train(net, opt, 5)
    saved_params, state = net.copy_params(), opt.state_dict()
    _train(net, opt, 5)

    fresh, fresh_opt = _start()
    fresh.set_params(saved_params)
    _train(fresh, fresh_opt, 5)  # without the velocity
    assert not _same_params(net, fresh)

    resumed, resumed_opt = _start()
    resumed.set_params(saved_params)
    resumed_opt.load_state_dict(state)
    _train(resumed, resumed_opt, 5)
    assert _same_params(net, resumed)


def test_state_dict_is_a_flat_dict_of_copies():
    net, opt = _start()
    _train(net, opt, 2)
    state = opt.state_dict()
    assert sorted(state) == ["lr", "momentum", "velocity.b0", "velocity.b1", "velocity.w0", "velocity.w1"]
    assert type(state["lr"]) is float and np.float32(state["lr"]) == opt.lr
    before = opt.state_dict()["velocity.w0"].copy()
    state["velocity.w0"][...] = 7.0  # changing the returned state does not reach the optimizer
    assert np.array_equal(opt.state_dict()["velocity.w0"], before)
    opt.load_state_dict(state)
    state["velocity.w0"][...] = 9.0  # nor does changing it after a load
    assert (opt.state_dict()["velocity.w0"] == 7.0).all()


def _bad_states(good):
    def changed(**kw):
        s = dict(good)
        for k, v in kw.items():
            if v is _DROP:
                del s[k.replace("__", ".")]
            else:
                s[k.replace("__", ".")] = v
        return s

    w1 = good["velocity.w1"]
    return {
        "not a mapping": ([1, 2], "expected a mapping"),
        "missing velocity": (changed(velocity__b1=_DROP), r"missing \['velocity.b1'\]"),
        "missing lr": (changed(lr=_DROP), r"missing \['lr'\]"),
        "unknown key": ({**good, "velocity.w9": w1}, r"unknown \['velocity.w9'\]"),
        "wrong shape": (changed(velocity__w1=w1.reshape(-1)), r"velocity.w1.*expected shape"),
        "wrong dtype": (changed(velocity__w1=w1.astype(np.float64)), r"velocity.w1.*expected dtype float32"),
        "NaN": (changed(velocity__w1=np.where(np.arange(w1.size).reshape(w1.shape) == 3, np.nan, w1).astype(np.float32)),
                r"velocity.w1.*NaN or Inf"),
        "a list": (changed(velocity__w1=w1.tolist()), r"velocity.w1.*expected an array"),
        "lr 0": (changed(lr=0.0), r"'lr'.*> 0"),
        "lr NaN": (changed(lr=float("nan")), r"'lr'"),
        "lr overflows float32": (changed(lr=1e39), r"'lr'.*finite in float32"),
        "lr a bool": (changed(lr=True), r"'lr'.*expected a real number"),
        "lr a string": (changed(lr="0.1"), r"'lr'.*expected a real number"),
        "lr an array": (changed(lr=np.array([0.1])), r"'lr'.*expected a real number"),
        "momentum 1": (changed(momentum=1.0), r"'momentum'.*\[0, 1\)"),
        "momentum rounds to 1": (changed(momentum=0.99999999), r"'momentum'.*\[0, 1\)"),
        "momentum negative": (changed(momentum=-0.1), r"'momentum'"),
    }


_DROP = object()


@pytest.mark.parametrize("case", list(_bad_states({"lr": 0.1, "momentum": 0.9, "velocity.w1": np.zeros((2, 2), np.float32),
                                                    "velocity.b1": np.zeros(2, np.float32)})))
def test_a_bad_state_is_a_checkpoint_error_and_changes_nothing(case):
    net, opt = _start(lr=0.05, momentum=0.5)
    _train(net, opt, 3)
    good = opt.state_dict()
    good = {**good, **{k: np.full_like(v, 0.25) for k, v in good.items() if k.startswith("velocity.")}}
    state, message = _bad_states(good)[case]
    before = opt.state_dict()
    with pytest.raises(CheckpointError, match=message):
        opt.load_state_dict(state)
    after = opt.state_dict()
    assert after.keys() == before.keys()
    assert all(np.array_equal(after[k], before[k]) for k in before)
    assert (opt.lr, opt.momentum) == (np.float32(0.05), np.float32(0.5))


def test_zero_dimensional_arrays_and_numpy_scalars_are_accepted():
    net, opt = _start()
    state = opt.state_dict()
    opt.load_state_dict({**state, "lr": np.array(0.25), "momentum": np.float64(0.5)})
    assert (opt.lr, opt.momentum) == (np.float32(0.25), np.float32(0.5))
