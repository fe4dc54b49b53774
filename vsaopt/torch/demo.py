"""Plain PyTorch training against :class:`~vsaopt.torch.PhaseAccelerator` on scikit-learn's digits.

:func:`digits_comparison` trains the same MLP (same initial weights, same
batches) twice: with ordinary backpropagation at every step, and with a
:class:`PhaseAccelerator` that replaces most backward passes by predicted
gradients.  It returns plain data (no printing) for a CLI or a notebook to show.

Both run on the training harness of ``vsaopt train``
(:mod:`vsaopt.train.harness`) with the torch learner of
:mod:`vsaopt.torch.learner`; :func:`digits_run` returns the harness's records
(:class:`~vsaopt.train.results.RunResult`), :func:`digits_comparison` the
figures drawn from them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..backend import resolve_backend
from ..errors import BackendError, ConfigError
from ..train.harness import WARMUP_STEPS, run_interleaved
from ..train.results import ModeResult, RunResult
from .accelerator import PhaseAccelerator
from .learner import OPTIMIZERS, TorchLearner, epoch_batches, make_optimizer

__all__ = ["digits_comparison", "digits_run", "load_digits_split", "MODES"]

#: Modes compared, in table order: plain backpropagation and :class:`PhaseAccelerator`.
MODES = ("torch", "vsaopt")
TASK = "sklearn digits (1437 train / 360 test)"


def load_digits_split(seed: int = 0, test_fraction: float = 0.2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits (8x8 images, 10 classes) as float32 tensors ``x_train, y_train, x_test, y_test``, pixels scaled to [0, 1].

    The split is stratified and fixed by ``seed``.  Needs scikit-learn.

    Examples
    --------
    >>> xtr, ytr, xte, yte = load_digits_split()
    >>> xtr.shape[1], xte.shape[0] + xtr.shape[0], int(ytr.max())
    (64, 1797, 9)
    """
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:
        raise BackendError(f"the digits comparison needs scikit-learn ({exc}); pip install scikit-learn") from None
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(xte), torch.from_numpy(yte)


def _mlp(hidden: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))


def digits_run(
    *,
    epochs: int = 30,
    batch_size: int = 64,
    hidden: int = 64,
    lr: float = 0.1,
    optimizer: str = "sgd",
    seed: int = 0,
    trainer: str = "deterministic",
    config: Any = None,
    backend: Any = None,
    modes: tuple[str, ...] = MODES,
    interleave: int = 20,
) -> RunResult:
    """Train the digits MLP in each of ``modes`` on the training harness; the records as a :class:`~vsaopt.train.results.RunResult`.

    The harness of ``vsaopt train`` (:func:`vsaopt.train.harness.run_interleaved`):
    an untimed warm-up, modes in turns of ``interleave`` steps, a test
    evaluation after every epoch, the loss measured on every step.  The
    arguments are those of :func:`digits_comparison` (not validated here).

    Examples
    --------
    >>> run = digits_run(epochs=1, backend="numpy", modes=("vsaopt",))
    >>> r = run.modes["vsaopt"]
    >>> r.steps, r.eval_step, r.backward_passes < r.steps
    (23, [0, 23], True)
    """
    xtr, ytr, xte, yte = data = load_digits_split(seed)
    n = int(xtr.shape[0])
    steps_per_epoch = -(-n // batch_size)
    batches = epoch_batches(n, batch_size, epochs, seed + 1)

    def learner(mode: str, steps: int) -> TorchLearner:
        model = _mlp(hidden, seed)
        accel = PhaseAccelerator(model, config, trainer=trainer, backend=backend) if mode == "vsaopt" else None
        return TorchLearner(model, make_optimizer(optimizer, model, lr), data, batches[:steps], accel)

    results = run_interleaved(learner, modes, len(batches), eval_every=steps_per_epoch, loss_every=1,
                              interleave=interleave, warmup_steps=WARMUP_STEPS)
    settings = {"task": TASK, "model": f"MLP 64-{hidden}-10", "epochs": epochs, "steps_per_epoch": steps_per_epoch,
                "batch_size": batch_size, "hidden": hidden, "lr": float(lr), "optimizer": optimizer, "seed": seed,
                "trainer": trainer, "interleave": interleave}
    return RunResult(settings, "", results)


def _figures(r: ModeResult, steps_per_epoch: int, target_accuracy: float | None) -> dict:
    """The per-mode figures of :func:`digits_comparison` from a mode's records."""
    epochs = [(s, t, a) for s, t, a in zip(r.eval_step, r.eval_time, r.eval_accuracy) if s > 0]  # after each epoch
    step_losses = [float(x) for x in r.loss if x is not None]
    assert len(step_losses) == r.steps  # every step measures its loss (loss_every=1)
    losses = [float(np.mean(step_losses[s - steps_per_epoch : s])) for s, _, _ in epochs]
    to_target: dict[str, Any] = {"seconds": None, "epoch": None, "backward_passes": None}
    if target_accuracy is not None:
        for s, t, a in epochs:
            if a >= target_accuracy:
                to_target = {"seconds": t, "epoch": s // steps_per_epoch, "backward_passes": sum(r.backward[:s])}
                break
    return {
        "steps": r.steps,
        "backward_passes": r.backward_passes,
        "wall_seconds": r.wall_seconds,
        "test_accuracy": r.final_test_accuracy,
        "final_train_loss": losses[-1],
        "accuracy_per_epoch": [a for _, _, a in epochs],
        "train_loss_per_epoch": losses,
        "to_target": to_target,
    }


def digits_comparison(
    *,
    epochs: int = 30,
    batch_size: int = 64,
    hidden: int = 64,
    lr: float = 0.1,
    optimizer: str = "sgd",
    seed: int = 0,
    trainer: str = "deterministic",
    config: Any = None,
    backend: Any = None,
    target_accuracy: float | None = 0.93,
    modes: tuple[str, ...] = MODES,
) -> dict:
    """Train a 64-``hidden``-10 MLP on digits with plain torch and with :class:`PhaseAccelerator`; return the figures.

    Both runs start from the same weights (``torch.manual_seed(seed)``), see the
    same batches and the same optimizer.  Test accuracy is measured
    after every epoch (outside the timed region).  Wall-clock time covers the
    training steps only.

    Parameters
    ----------
    epochs, batch_size, hidden : int
        Passes over the 1437 training images, images per step, hidden width.
    lr : float
        Learning rate.
    optimizer : {"sgd", "sgd-momentum", "adam"}
        Plain SGD, SGD with momentum 0.9, or Adam.  Predicted gradients suit
        small, smooth steps: with large momentum-SGD steps the predictions
        overshoot and training can diverge.
    seed : int
        Initial weights, batch order and the train/test split.
    trainer : {"deterministic", "phase"}
    config : DeterministicPhaseConfig or PhaseConfig, optional
    backend : None, a backend name or a backend object
    target_accuracy : float or None
        Record the first epoch at which test accuracy reaches it (``to_target``).
    modes : tuple of {"torch", "vsaopt"}

    Returns
    -------
    dict
        ``{"task", "model", "parameters", "epochs", "batch_size", "optimizer", "lr", "trainer", "modes": {mode: figures}}``
        with per-mode figures ``steps``, ``backward_passes``, ``wall_seconds``,
        ``test_accuracy`` (after the last epoch), ``final_train_loss``,
        ``accuracy_per_epoch``, ``train_loss_per_epoch``, ``to_target``
        (``seconds``, ``epoch``, ``backward_passes`` or None when not reached), and for
        ``"vsaopt"`` also ``trainer_stats`` and ``backend``.

    Examples
    --------
    >>> r = digits_comparison(epochs=2, backend="numpy", target_accuracy=None)
    >>> sorted(r["modes"]), r["modes"]["torch"]["steps"] == r["modes"]["vsaopt"]["steps"]
    (['torch', 'vsaopt'], True)
    >>> r["modes"]["vsaopt"]["backward_passes"] <= r["modes"]["torch"]["backward_passes"]
    True
    """
    for name, v, lo in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("hidden", hidden, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ConfigError(f"{name}: expected an int >= {lo}, got {v!r}")
    if not isinstance(lr, (int, float)) or not 0 < lr < 100:
        raise ConfigError(f"lr: expected a positive float, got {lr!r}")
    if target_accuracy is not None and not 0 <= target_accuracy <= 1:
        raise ConfigError(f"target_accuracy: expected a value in [0, 1] or None, got {target_accuracy!r}")
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"optimizer: expected one of {OPTIMIZERS}, got {optimizer!r}")
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ConfigError(f"modes: expected a non-empty tuple of {MODES}, got {modes!r}")
    run = digits_run(epochs=epochs, batch_size=batch_size, hidden=hidden, lr=float(lr), optimizer=optimizer, seed=seed,
                     trainer=trainer, config=config, backend=backend, modes=modes)
    results = {m: _figures(r, run.settings["steps_per_epoch"], target_accuracy) for m, r in run.modes.items()}
    if "vsaopt" in results:
        results["vsaopt"]["trainer_stats"] = run.modes["vsaopt"].trainer_stats
        results["vsaopt"]["backend"] = resolve_backend(backend).name
    params = sum(p.numel() for p in _mlp(hidden, seed).parameters())
    return {
        "task": TASK,
        "model": f"MLP 64-{hidden}-10",
        "parameters": int(params),
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "lr": float(lr),
        "trainer": trainer,
        "modes": results,
    }
