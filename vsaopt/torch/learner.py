"""The PyTorch learner of the training harness: a ``torch.nn`` model, its optimizer and, for phase training, a :class:`PhaseAccelerator`.

:class:`TorchLearner` implements :class:`vsaopt.train.harness.Learner`, so a
torch model trains on the same timed loop, with the same records
(:class:`~vsaopt.train.results.ModeResult`), as the framework-free MLP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..errors import ConfigError
from .accelerator import PhaseAccelerator

__all__ = ["OPTIMIZERS", "TorchLearner", "make_optimizer", "epoch_batches"]

#: Optimizers :func:`make_optimizer` builds.
OPTIMIZERS = ("sgd", "sgd-momentum", "adam")


def make_optimizer(name: str, model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    """Plain SGD (``"sgd"``), SGD with momentum 0.9 (``"sgd-momentum"``) or Adam (``"adam"``) over ``model``'s parameters.

    Examples
    --------
    >>> type(make_optimizer("adam", torch.nn.Linear(2, 1), 0.01)).__name__
    'Adam'
    """
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer: expected one of {OPTIMIZERS}, got {name!r}")
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9 if name == "sgd-momentum" else 0.0)


def epoch_batches(n: int, batch_size: int, epochs: int, seed: int) -> list[torch.Tensor]:
    """Sample indices of every step: one permutation per epoch (``torch.Generator`` seeded ``seed``), the last batch of an epoch may be short.

    Examples
    --------
    >>> b = epoch_batches(10, 4, 2, seed=1)
    >>> [len(i) for i in b], sorted(torch.cat(b[:3]).tolist()) == list(range(10))
    ([4, 4, 2, 4, 4, 2], True)
    """
    order = torch.Generator().manual_seed(seed)
    out: list[torch.Tensor] = []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=order)
        out += [perm[start : start + batch_size] for start in range(0, n, batch_size)]
    return out


def _cosine(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    dot = sum(float((x.double() * y.double()).sum()) for x, y in zip(a, b))
    na = math.sqrt(sum(float((x.double() ** 2).sum()) for x in a))
    nb = math.sqrt(sum(float((y.double() ** 2).sum()) for y in b))
    return dot / (na * nb) if na > 0 and nb > 0 else 0.0


class TorchLearner:
    """A torch classifier trained with cross-entropy: every step a backward pass, or (with ``accel``) as the accelerator says.

    Parameters
    ----------
    model : torch.nn.Module
    optimizer : torch.optim.Optimizer
        Over ``model``'s parameters.
    data : tuple of tensors
        ``x_train, y_train, x_test, y_test``.
    batches : sequence of index tensors
        The sample indices of each step.
    accel : PhaseAccelerator, optional
        Phase training; without it the learner is plain backpropagation.

    Notes
    -----
    The accelerator ends every step with a loss, so a run with ``accel``
    measures the loss on every step (the harness's ``loss_every=1``).

    Examples
    --------
    >>> from vsaopt.train.harness import ModeRun
    >>> x, y = torch.randn(32, 4), torch.arange(32) % 2
    >>> model = torch.nn.Linear(4, 2)
    >>> learner = TorchLearner(model, make_optimizer("sgd", model, 0.1), (x, y, x, y), epoch_batches(32, 8, 2, 0))
    >>> run = ModeRun("torch", learner, 8, eval_every=4)
    >>> while not run.finished:
    ...     run.step()
    >>> run.result().backward_passes, run.result().eval_step
    (8, [0, 4, 8])
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, data: tuple[torch.Tensor, ...],
                 batches: Sequence[torch.Tensor], accel: PhaseAccelerator | None = None) -> None:
        self.model, self.opt, self.accel, self.batches = model, optimizer, accel, batches
        self.x_train, self.y_train, self.x_test, self.y_test = data

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(self.model(x), y)

    def begin_step(self, step: int) -> tuple[bool, str]:
        """Zero the gradients; whether ``step`` runs a backward pass, and its phase label."""
        self.opt.zero_grad(set_to_none=False)
        if self.accel is None:
            return True, "FULL"
        info = self.accel.begin_step()
        return bool(info.needs_backward), str(info.phase)

    def backward_step(self, step: int) -> float:
        """Forward and backward pass on the step's batch; the accelerator records the gradients."""
        idx = self.batches[step]
        loss = self._loss(self.x_train[idx], self.y_train[idx])
        loss.backward()
        if self.accel is not None:
            self.accel.record_gradients()
        return float(loss.item())

    def predicted_step(self, step: int, measure_loss: bool) -> float | None:
        """The batch loss (forward only) when measured; the accelerator writes its predicted gradients."""
        loss = None
        if measure_loss:
            idx = self.batches[step]
            with torch.no_grad():
                loss = float(self._loss(self.x_train[idx], self.y_train[idx]).item())
        assert self.accel is not None  # plain backpropagation never skips a backward pass
        self.accel.apply_predicted_gradients()
        return loss

    def finish_step(self, loss: float | None) -> None:
        """Optimizer step; the accelerator's step ends with ``loss``."""
        self.opt.step()
        if self.accel is not None:
            if loss is None:
                raise ConfigError("loss: the accelerator ends every step with a loss; run with loss_every=1")
            self.accel.end_step(loss)

    def evaluate(self) -> tuple[float, float]:
        """Test accuracy and cross-entropy."""
        with torch.no_grad():
            logits = self.model(self.x_test)
            accuracy = float((logits.argmax(dim=1) == self.y_test).float().mean().item())
            return accuracy, float(torch.nn.functional.cross_entropy(logits, self.y_test).item())

    def diagnose(self, step: int) -> tuple[float, float, float]:
        """Cosines of the gradient in ``.grad`` with the real batch gradient and the full training-set gradient, and of those two."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        used = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]
        idx = self.batches[step]
        real = torch.autograd.grad(self._loss(self.x_train[idx], self.y_train[idx]), params)
        full = torch.autograd.grad(self._loss(self.x_train, self.y_train), params)
        return _cosine(used, real), _cosine(used, full), _cosine(real, full)

    def trainer_stats(self) -> dict:
        """The accelerator's statistics (empty for plain backpropagation)."""
        return {} if self.accel is None else self.accel.get_stats().to_dict()
