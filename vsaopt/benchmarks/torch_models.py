"""The torch models and synthetic batches the adapter benchmarks train: an MLP, a small CNN, a transformer encoder.

Each :class:`ModelSpec` builds a fresh model (seeded), a fixed batch and the
loss; ``quick`` specs are tiny versions for smoke runs.  Importing this module
imports torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["ModelSpec", "model_specs", "MODEL_NAMES", "DIGITS_CNN", "digits_cnn"]

#: Model names, in table order.
MODEL_NAMES = ("mlp", "cnn", "transformer")


class _MeanPoolHead(torch.nn.Module):
    """A transformer encoder over ``(batch, sequence, d_model)`` inputs, mean-pooled, then a linear classifier."""

    def __init__(self, d_model: int, heads: int, ff: int, layers: int, classes: int) -> None:
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(d_model, heads, ff, dropout=0.0, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = torch.nn.Linear(d_model, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x).mean(dim=1))


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """How to build one benchmark model and its batch.

    Attributes
    ----------
    name : str
        ``"mlp"``, ``"cnn"`` or ``"transformer"``.
    build : callable () -> torch.nn.Module
        A new model (call under a fixed ``torch.manual_seed``).
    input_shape : tuple of int
        Shape of one input batch (batch first).
    classes : int
        Output classes (cross-entropy targets).
    """

    name: str
    build: Callable[[], torch.nn.Module]
    input_shape: tuple[int, ...]
    classes: int

    def model(self, seed: int) -> torch.nn.Module:
        """A new model with weights drawn from ``seed``."""
        torch.manual_seed(seed)
        return self.build()

    def batch(self, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed random ``(inputs, targets)`` batch drawn from ``seed``."""
        g = torch.Generator().manual_seed(seed)
        return torch.randn(*self.input_shape, generator=g), torch.randint(0, self.classes, (self.input_shape[0],), generator=g)

    def parameters(self) -> int:
        """Trainable parameters of the model."""
        return sum(p.numel() for p in self.model(0).parameters() if p.requires_grad)


def _mlp(width: int, layers: int, classes: int) -> Callable[[], torch.nn.Module]:
    def build() -> torch.nn.Module:
        mods: list[Any] = []
        for _ in range(layers - 1):
            mods += [torch.nn.Linear(width, width), torch.nn.ReLU()]
        return torch.nn.Sequential(*mods, torch.nn.Linear(width, classes))

    return build


def _cnn(c1: int, c2: int, side: int, hidden: int, classes: int) -> Callable[[], torch.nn.Module]:
    def build() -> torch.nn.Module:
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, c1, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(c1, c2, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(c2 * (side // 4) ** 2, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes),
        )

    return build


def digits_cnn() -> torch.nn.Module:
    """The 9,802-parameter CNN for 8x8 one-channel digits images (two 3x3 convolutions, a max pool, two linear layers)."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 4 * 4, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10),
    )


#: The digits CNN at batch 32, as :mod:`~vsaopt.benchmarks.torch_time_to_accuracy` trains it.
DIGITS_CNN = ModelSpec("digits_cnn", digits_cnn, (32, 1, 8, 8), 10)


def model_specs(quick: bool = False) -> dict[str, ModelSpec]:
    """The benchmark models by name (:data:`MODEL_NAMES`); ``quick``: tiny ones for a smoke run.

    Full sizes: a 3.16 M-parameter MLP (4 linear layers of width 1024, batch
    128), a 1.1 M-parameter CNN (two 3x3 convolutions, 32x32x3 inputs, batch
    64) and a 0.6 M-parameter transformer encoder (3 layers, d_model 128,
    4 heads, feed-forward 512, sequences of 32, batch 32).

    Examples
    --------
    >>> sorted(model_specs(quick=True))
    ['cnn', 'mlp', 'transformer']
    """
    if quick:
        return {
            "mlp": ModelSpec("mlp", _mlp(32, 3, 4), (8, 32), 4),
            "cnn": ModelSpec("cnn", _cnn(4, 8, 8, 16, 4), (8, 3, 8, 8), 4),
            "transformer": ModelSpec("transformer", lambda: _MeanPoolHead(16, 2, 32, 1, 4), (8, 6, 16), 4),
        }
    return {
        "mlp": ModelSpec("mlp", _mlp(1024, 4, 10), (128, 1024), 10),
        "cnn": ModelSpec("cnn", _cnn(32, 64, 32, 256, 10), (64, 3, 32, 32), 10),
        "transformer": ModelSpec("transformer", lambda: _MeanPoolHead(128, 4, 512, 3, 10), (32, 32, 128), 10),
    }
