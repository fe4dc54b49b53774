"""Plain PyTorch training against :class:`~vsaopt.torch.PhaseAccelerator` on scikit-learn's digits.

:func:`digits_comparison` trains the same MLP (same initial weights, same
batches) twice: with ordinary backpropagation at every step, and with a
:class:`PhaseAccelerator` that replaces most backward passes by predicted
gradients.  It returns plain data (no printing) for a CLI or a notebook to show.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ..errors import BackendError, ConfigError
from .accelerator import PhaseAccelerator

__all__ = ["digits_comparison", "load_digits_split", "MODES"]

#: Optimizers :func:`digits_comparison` can use.
OPTIMIZERS = ("sgd", "sgd-momentum", "adam")
#: Modes compared, in table order.
MODES = ("torch", "vsaopt")


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


def _optimizer(name: str, model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean().item())


def _run(
    mode: str,
    data: tuple[torch.Tensor, ...],
    *,
    epochs: int,
    batch_size: int,
    hidden: int,
    lr: float,
    optimizer: str,
    seed: int,
    trainer: str,
    config: Any,
    backend: Any,
    target_accuracy: float | None,
) -> dict:
    xtr, ytr, xte, yte = data
    model = _mlp(hidden, seed)
    opt = _optimizer(optimizer, model, lr)
    accel = PhaseAccelerator(model, config, trainer=trainer, backend=backend) if mode == "vsaopt" else None
    order = torch.Generator().manual_seed(seed + 1)
    n = xtr.shape[0]
    steps = backward = 0
    per_epoch: list[float] = []
    losses: list[float] = []
    to_target: dict[str, Any] = {"seconds": None, "epoch": None, "backward_passes": None}
    elapsed = 0.0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=order)
        epoch_losses = []
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            opt.zero_grad(set_to_none=False)
            info = accel.begin_step() if accel is not None else None
            if info is None or info.needs_backward:
                loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
                loss.backward()
                backward += 1
                if accel is not None:
                    accel.record_gradients()
            else:
                assert accel is not None
                with torch.no_grad():
                    loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
                accel.apply_predicted_gradients()
            opt.step()
            if accel is not None:
                accel.end_step(loss)
            steps += 1
            epoch_losses.append(float(loss.item()))
        elapsed += time.perf_counter() - t0
        acc = _accuracy(model, xte, yte)
        per_epoch.append(acc)
        losses.append(float(np.mean(epoch_losses)))
        if target_accuracy is not None and to_target["seconds"] is None and acc >= target_accuracy:
            to_target = {"seconds": elapsed, "epoch": epoch + 1, "backward_passes": backward}
    out = {
        "steps": steps,
        "backward_passes": backward,
        "wall_seconds": elapsed,
        "test_accuracy": per_epoch[-1],
        "final_train_loss": losses[-1],
        "accuracy_per_epoch": per_epoch,
        "train_loss_per_epoch": losses,
        "to_target": to_target,
    }
    if accel is not None:
        out["trainer_stats"] = accel.get_stats().to_dict()
        out["backend"] = accel.backend.name
    return out


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
    data = load_digits_split(seed)
    kw = dict(epochs=epochs, batch_size=batch_size, hidden=hidden, lr=float(lr), optimizer=optimizer, seed=seed, trainer=trainer,
              config=config, backend=backend, target_accuracy=target_accuracy)
    results = {m: _run(m, data, **kw) for m in modes}
    params = sum(p.numel() for p in _mlp(hidden, seed).parameters())
    return {
        "task": "sklearn digits (1437 train / 360 test)",
        "model": f"MLP 64-{hidden}-10",
        "parameters": int(params),
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "lr": float(lr),
        "trainer": trainer,
        "modes": results,
    }
