"""A multilayer perceptron with hand-written forward and backward passes on the backend's array namespace.

Only array-API style operations of ``xp`` are used (``matmul``, ``maximum``,
``exp``, ``log``, sums and fancy indexing), so the same code runs on numpy
arrays (numpy and numba backends) and on cupy arrays.

.. math::

    h_0 = x,\\quad h_{i+1} = \\mathrm{relu}(h_i W_i + b_i),\\quad
    z = h_{L-1} W_{L-1} + b_{L-1},\\quad
    \\ell = \\frac{1}{n}\\sum_k \\Big(\\log\\sum_c e^{z_{kc}} - z_{k y_k}\\Big)

The backward pass is the textbook one: ``dz = (softmax(z) - onehot(y)) / n``,
``dW_i = h_i^T d_i``, ``db_i = sum_k d_i``, ``d_{i-1} = (d_i W_i^T) * [h_i > 0]``.

The regression head (``loss="mse"``) keeps the linear output and replaces the
cross-entropy by the mean squared error over samples and outputs,

.. math::

    \\ell = \\frac{1}{n m}\\sum_{k, j} (z_{kj} - y_{kj})^2, \\qquad
    dz = \\frac{2}{n m} (z - y),

with targets ``y`` of shape ``(n,)`` (one output) or ``(n, m)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backend import resolve_backend
from ..errors import ConfigError

__all__ = ["LOSSES", "MLP"]

#: The loss heads: softmax cross-entropy (classes) and mean squared error (a regression).
LOSSES: tuple[str, ...] = ("cross_entropy", "mse")


class MLP:
    """Fully connected ReLU network with a softmax cross-entropy loss, or a mean-squared-error regression head.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first, classes (or regression outputs) last (at least two entries).
    seed : int
        Seed of the initialisation (He-uniform for hidden layers, Glorot-uniform
        for the output layer, zero biases), drawn on the host with
        ``numpy.random.default_rng(seed)`` so every backend starts from the same
        weights.
    backend : None, a backend name or a backend object
    loss : {"cross_entropy", "mse"}
        The loss head: class labels (int) with softmax cross-entropy, or real
        targets (float32) with the mean squared error of the linear output.

    Attributes
    ----------
    params : dict of str to array
        ``w0, b0, w1, b1, ...`` (float32), updated in place by the optimizers.

    Examples
    --------
    >>> import numpy as np
    >>> net = MLP([4, 8, 3], seed=0, backend="numpy")
    >>> net.param_shapes()
    [('w0', (4, 8)), ('b0', (8,)), ('w1', (8, 3)), ('b1', (3,))]
    >>> x = np.ones((5, 4), np.float32); y = np.array([0, 1, 2, 0, 1])
    >>> loss, grads = net.loss_and_gradients(x, y)
    >>> sorted(grads) == sorted(net.params), abs(loss - net.loss(x, y)) < 1e-6
    (True, True)
    >>> reg = MLP([4, 8, 1], seed=0, backend="numpy", loss="mse")
    >>> target = np.zeros(5, np.float32)
    >>> abs(reg.mse(x, target) - reg.loss(x, target)) < 1e-6
    True
    """

    def __init__(self, sizes: Sequence[int], seed: int = 0, backend: Any = None, loss: str = "cross_entropy") -> None:
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ConfigError(f"sizes: expected at least two positive layer widths, got {sizes!r}")
        if loss not in LOSSES:
            raise ConfigError(f"loss: expected one of {', '.join(LOSSES)}, got {loss!r}")
        self.loss_kind = loss
        self.sizes = tuple(sizes)
        self.backend = resolve_backend(backend)
        xp = self.backend.xp
        rng = np.random.default_rng(seed)
        self.params: dict[str, Any] = {}
        n_layers = len(sizes) - 1
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            bound = math.sqrt(6.0 / a) if i < n_layers - 1 else math.sqrt(6.0 / (a + b))
            self.params[f"w{i}"] = xp.asarray(rng.uniform(-bound, bound, (a, b)).astype(np.float32))
            self.params[f"b{i}"] = xp.zeros(b, dtype=xp.float32)
        self._n_layers = n_layers

    @property
    def n_parameters(self) -> int:
        """Number of scalar parameters."""
        return sum(int(p.size) for p in self.params.values())

    def param_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """``[(name, shape), ...]`` in the order the phase trainers expect."""
        return [(k, tuple(int(d) for d in v.shape)) for k, v in self.params.items()]

    def copy_params(self) -> dict[str, Any]:
        """A deep copy of :attr:`params` (to restore the same initialisation later)."""
        return {k: v.copy() for k, v in self.params.items()}

    def set_params(self, params: dict[str, Any]) -> None:
        """Overwrite the parameters in place with ``params`` (same names and shapes)."""
        for k, v in self.params.items():
            v[...] = params[k]

    # --- passes -------------------------------------------------------------------

    def _forward(self, x: Any) -> tuple[list[Any], Any]:
        xp = self.backend.xp
        p = self.params
        acts = [x]
        h = x
        for i in range(self._n_layers - 1):
            h = xp.matmul(h, p[f"w{i}"])
            h += p[f"b{i}"]
            xp.maximum(h, 0, out=h)
            acts.append(h)
        z = xp.matmul(h, p[f"w{self._n_layers - 1}"])
        z += p[f"b{self._n_layers - 1}"]
        return acts, z

    def _softmax_loss(self, z: Any, y: Any) -> tuple[float, Any]:
        """Mean cross-entropy and the softmax probabilities (``z`` is overwritten)."""
        xp = self.backend.xp
        z -= xp.max(z, axis=1, keepdims=True)
        rows = xp.arange(z.shape[0])
        picked = z[rows, y]
        xp.exp(z, out=z)
        s = xp.sum(z, axis=1)
        loss = float(xp.mean(xp.log(s) - picked))
        z /= s[:, None]
        return loss, z

    def _squared_loss(self, z: Any, y: Any) -> tuple[float, Any]:
        """Mean squared error and the residual ``z - y`` (``z`` is overwritten)."""
        xp = self.backend.xp
        z -= y.reshape(z.shape)
        return float(xp.mean(z * z)), z

    def _head(self, z: Any, y: Any) -> tuple[float, Any]:
        """The loss and its gradient with respect to ``z`` (unscaled by the batch size; ``z`` is overwritten)."""
        if self.loss_kind == "mse":
            loss, d = self._squared_loss(z, y)
            d *= np.float32(2.0 / d.shape[1])
            return loss, d
        loss, d = self._softmax_loss(z, y)
        d[self.backend.xp.arange(d.shape[0]), y] -= 1.0
        return loss, d

    def logits(self, x: Any) -> Any:
        """Class scores ``(n, classes)`` (the regression's predictions ``(n, outputs)``)."""
        return self._forward(x)[1]

    def loss(self, x: Any, y: Any) -> float:
        """Mean cross-entropy (or squared error) of the batch (a forward pass only)."""
        z = self._forward(x)[1]
        return self._squared_loss(z, y)[0] if self.loss_kind == "mse" else self._softmax_loss(z, y)[0]

    def loss_and_gradients(self, x: Any, y: Any) -> tuple[float, dict[str, Any]]:
        """Mean cross-entropy (or squared error) and its gradient with respect to every parameter (forward and backward pass).

        Returns
        -------
        loss : float
        gradients : dict of str to array
            Same names and shapes as :attr:`params`, float32, new arrays.
        """
        xp = self.backend.xp
        p = self.params
        acts, z = self._forward(x)
        loss, d = self._head(z, y)
        n = x.shape[0]
        d *= np.float32(1.0 / n)
        grads: dict[str, Any] = {}
        for i in range(self._n_layers - 1, -1, -1):
            h = acts[i]
            grads[f"w{i}"] = xp.matmul(h.T, d)
            grads[f"b{i}"] = xp.sum(d, axis=0)
            if i > 0:
                d = xp.matmul(d, p[f"w{i}"].T)
                d *= h > 0
        return loss, {k: grads[k] for k in p}

    def accuracy(self, x: Any, y: Any) -> float:
        """Share of samples whose highest score is the true class (a classification)."""
        xp = self.backend.xp
        return float(xp.mean(xp.argmax(self.logits(x), axis=1) == y))

    def mse(self, x: Any, y: Any) -> float:
        """Mean squared error of the predictions (a regression; the same as :meth:`loss` with ``loss="mse"``)."""
        return self._squared_loss(self._forward(x)[1], y)[0]
