"""``vsaopt.torch.advise``: :func:`vsaopt.advise.advise` for a ``torch.nn`` model, a loss function and its data."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .._arrays import check_real, check_seed
from ..advise.measure import advise as _advise
from ..advise.result import Advice
from ..errors import ConfigError, DTypeError, ShapeError

__all__ = ["advise"]


def _tensors(data: Any) -> tuple[torch.Tensor, ...]:
    """``data`` as tensors of one length: a tensor, a tuple/list of tensors, or a ``TensorDataset``."""
    if isinstance(data, torch.utils.data.TensorDataset):
        data = data.tensors
    if isinstance(data, torch.Tensor):
        data = (data,)
    if not isinstance(data, (tuple, list)) or not data or not all(isinstance(t, torch.Tensor) for t in data):
        raise DTypeError(f"data: expected a tensor, a tuple of tensors (inputs, targets) or a TensorDataset, "
                         f"got {type(data).__name__}")
    lengths = {int(t.shape[0]) if t.dim() else -1 for t in data}
    if len(lengths) != 1 or -1 in lengths:
        raise ShapeError(f"data: expected tensors with one common first dimension (samples), got shapes "
                         f"{[tuple(t.shape) for t in data]}")
    return tuple(data)


def advise(model: torch.nn.Module, loss_fn: Callable[..., torch.Tensor], data: Any, batch_size: int, *,
           lr: float | None = None, momentum: float = 0.9, optimizer: Callable[[Any], Any] | None = None,
           seed: int = 0, **options: Any) -> Advice:
    """Would the gated ``recommended()`` presets skip backward passes on ``model``? (:func:`vsaopt.advise.advise`)

    The measurement trains a deep copy of ``model`` as the ``phase`` preset
    would (its predicted gradient on the steps it skips); the model, its
    gradients and torch's global random state are left as they were.

    Parameters
    ----------
    model : torch.nn.Module
        Its trainable parameters (``requires_grad``) are measured.
    loss_fn : callable(output, *targets) -> scalar tensor
        The *mean* loss of a batch, e.g. ``torch.nn.functional.cross_entropy``.
    data : tensor, tuple of tensors or TensorDataset
        The training samples: ``(inputs, targets...)`` with one first
        dimension; a batch is ``loss_fn(model(inputs[idx]), *(t[idx] for t in targets))``
        (a single tensor: ``loss_fn(model(inputs[idx]))``).
    batch_size : int
        The batch size asked about.
    lr : float > 0, optional
        Learning rate of the measurement's SGD steps (momentum ``momentum``) on
        the copy; None and no ``optimizer``: the weights stay fixed and the
        drift is not measured.
    momentum : float in [0, 1)
    optimizer : callable(parameters) -> torch.optim.Optimizer, optional
        Builds the optimizer of the copy instead (``lr`` must then be None).
    seed : int
        Seed of the draws and of torch's random numbers during the
        measurement (dropout): the same seed gives the same advice.
    **options
        Passed to :func:`vsaopt.advise.advise` (``rounds``, ``measure_steps``, ``run_steps``, ...).

    Returns
    -------
    Advice

    Examples
    --------
    >>> import torch
    >>> from vsaopt.torch import advise
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> x, y = torch.randn(256, 4), torch.randint(0, 3, (256,))
    >>> model = torch.nn.Linear(4, 3)
    >>> advice = advise(model, torch.nn.functional.cross_entropy, (x, y), 32, lr=0.05, rounds=4, measure_steps=20,
    ...                 run_steps=60)
    >>> [r.batch_size for r in advice.rows], model.weight.grad is None
    ([32, 64, 128, 256], True)
    """
    if not isinstance(model, torch.nn.Module):
        raise DTypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise DTypeError(f"loss_fn: expected a callable, got {type(loss_fn).__name__}")
    tensors = _tensors(data)
    if lr is not None and optimizer is not None:
        raise ConfigError("lr, optimizer: give at most one (optimizer builds its own step)")
    if lr is not None:
        check_real(lr, "lr", 0.0, 3e38, lo_open=True)
    check_real(momentum, "momentum", 0.0, 1.0)
    if momentum >= 1.0:
        raise ConfigError(f"momentum: expected a number in [0, 1), got {momentum!r}")
    if optimizer is not None and not callable(optimizer):
        raise DTypeError(f"optimizer: expected a callable(parameters) -> Optimizer, got {type(optimizer).__name__}")
    seed = check_seed(seed)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ConfigError("model: has no trainable parameters (requires_grad)")
    shapes = [(n, tuple(p.shape)) for n, p in named]
    work = copy.deepcopy(model)
    params = dict((n, p) for n, p in work.named_parameters() if p.requires_grad)
    opt = optimizer(list(params.values())) if optimizer is not None else (
        torch.optim.SGD(list(params.values()), lr=lr, momentum=momentum) if lr is not None else None)
    device = named[0][1].device
    on_device = tuple(t.to(device) for t in tensors)

    def loss_and_gradients(idx: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        rows = torch.as_tensor(idx, device=device)
        for p in params.values():
            p.grad = None
        batch = [t[rows] for t in on_device]
        loss = loss_fn(work(batch[0]), *batch[1:])
        loss.backward()
        grads = {n: (torch.zeros_like(p) if p.grad is None else p.grad).detach().to("cpu", torch.float32).numpy().copy()
                 for n, p in params.items()}
        return float(loss.detach()), grads

    def update(grads: Any) -> None:  # the gradients given: the last call's, or the phase preset's prediction
        for n, p in params.items():
            p.grad = torch.as_tensor(grads[n]).to(device=p.device, dtype=p.dtype).reshape(p.shape)
        if opt is not None:
            opt.step()

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed % 2**63)
        return _advise(loss_and_gradients, shapes, int(on_device[0].shape[0]), batch_size,
                       update=None if opt is None else update, seed=seed, **options)
