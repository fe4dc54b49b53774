"""A multilayer perceptron with hand-written forward and backward passes on the backend's array namespace.

Only array-API style operations of ``xp`` are used (``matmul``, ``maximum``,
``exp``, ``log``, sums and fancy indexing), so the same code runs on numpy
arrays (numpy and numba backends) and on cupy arrays.

.. math::

    h_0 = x,\\quad h_{i+1} = \\mathrm{relu}(h_i W_i + b_i),\\quad
    z = h_{L-1} W_{L-1} + b_{L-1},\\quad
    \\ell = \\frac{1}{n}\\sum_k \\Big(\\log\\sum_c e^{z_{kc}} - z_{k y_k}\\Big)

The backward pass is the textbook one: ``dz = (softmax(z) - onehot(y)) / n``,
``dW_i = h_i^T d_i``, ``db_i = sum_k d_i`` (with ``matmul="ordered"``: ``ones(1, n) @ d_i``), ``d_{i-1} = (d_i W_i^T) * [h_i > 0]``.

The regression head (``loss="mse"``) keeps the linear output and replaces the
cross-entropy by the mean squared error over samples and outputs,

.. math::

    \\ell = \\frac{1}{n m}\\sum_{k, j} (z_{kj} - y_{kj})^2, \\qquad
    dz = \\frac{2}{n m} (z - y),

with targets ``y`` of shape ``(n,)`` (one output) or ``(n, m)``.

The ``matmul`` option chooses the arithmetic of every matrix product and sum.
``"ordered"`` (the default) gives the same bytes on every machine, BLAS
library, thread count and backend: the products are the backend's kernel
``matmul_ordered`` (each element of ``a @ b`` a sequential float32 sum over
the inner index from +0.0, every product and addition rounded on its own, no
fused multiply-add); the bias gradients, the softmax's row sums and the
loss's mean are the same kernel against a vector of ones; the softmax's
``exp`` and ``log`` are :func:`exp_f32` and :func:`log_f32`, built from IEEE
basic float64 operations (numpy's float32 ``exp`` and ``log`` take
CPU-dependent SIMD paths).  ``"blas"`` is ``xp.matmul``, ``xp.sum``,
``xp.mean``, ``xp.exp`` and ``xp.log``: faster on wide layers, but the
summation order depends on the BLAS library's CPU kernel and blocking, and a
training run amplifies those last-bit differences into different figures.
The other operations are elementwise IEEE operations (the same bytes everywhere).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._arrays import float32_array
from ..backend import resolve_backend
from ..errors import ConfigError, DTypeError, ShapeError

__all__ = ["LOSSES", "MATMULS", "MLP", "exp_f32", "log_f32"]

#: The loss heads: softmax cross-entropy (classes) and mean squared error (a regression).
LOSSES: tuple[str, ...] = ("cross_entropy", "mse")
#: The matrix products: the backend's ``matmul_ordered`` kernel (one spec'd order, reproducible) or ``xp.matmul`` (BLAS).
MATMULS: tuple[str, ...] = ("ordered", "blas")

# exp and log from IEEE basic float64 operations (the same bits on every machine; numpy's float32 exp and
# log take CPU-dependent SIMD paths).  ln 2 split as in fdlibm: k * _LN2_HI is exact for |k| < 2**20.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LOG2E = 1.44269504088896338700e00
#: Taylor coefficients 1/j! of exp on |r| <= ln(2)/2, highest first (truncation error below 2**-57).
_EXP_TERMS = tuple(1.0 / math.factorial(j) for j in range(13, -1, -1))
#: Coefficients 1/(2j+1) of atanh's series, highest first (|f| <= 0.172: truncation error below 2**-60).
_ATANH_TERMS = tuple(1.0 / (2 * j + 1) for j in range(12, -1, -1))
#: exp arguments are clamped to this range (float32 exp is 0 below it and +Inf above it).
_EXP_RANGE = (-200.0, 100.0)


def _horner(xp: Any, coefficients: tuple[float, ...], r: Any) -> Any:
    p = xp.full_like(r, coefficients[0])
    for c in coefficients[1:]:
        p = p * r + c  # two rounded float64 operations (separate ufuncs: never fused)
    return p


def exp_f32(xp: Any, z: Any) -> Any:
    """``exp(z)`` of float32 ``z`` as float32, from float64 basic operations only (the same bits everywhere).

    ``k = rint(z * log2(e))``, ``r = (z - k*ln2_hi) - k*ln2_lo``, a degree-13
    Taylor polynomial in Horner form, times ``2**k`` built from its exponent
    bits, rounded once to float32.  NaN stays NaN.

    Examples
    --------
    >>> import numpy as np
    >>> exp_f32(np, np.array([0.0, -1.0, -np.inf, np.nan], np.float32))
    array([1.        , 0.36787945, 0.        ,        nan], dtype=float32)
    """
    x = xp.clip(z.astype(xp.float64), *_EXP_RANGE)
    nan = xp.isnan(x)
    x = xp.where(nan, 0.0, x)
    k = xp.rint(x * _LOG2E)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    scale = ((k.astype(xp.int64) + 1023) << 52).view(xp.float64)  # 2**k, exact for k >= -1022
    with np.errstate(over="ignore"):  # beyond the float32 range: +Inf, the IEEE result
        out = (_horner(xp, _EXP_TERMS, r) * scale).astype(xp.float32)
    out[nan] = xp.nan
    return out


def log_f32(xp: Any, s: Any) -> Any:
    """``log(s)`` of float32 ``s`` as float32, from float64 basic operations only (the same bits everywhere).

    ``s = m * 2**e`` (exact) with ``m`` in ``[sqrt(1/2), sqrt(2))``,
    ``f = (m - 1) / (m + 1)``, ``log m = 2 f atanh-series(f**2)``, then
    ``e*ln2_hi + (e*ln2_lo + log m)`` rounded once to float32.  Zero, negative,
    infinite and NaN inputs take the IEEE values of ``xp.log``.

    Examples
    --------
    >>> import numpy as np
    >>> log_f32(np, np.array([1.0, 10.0, 0.0], np.float32))
    array([0.       , 2.3025851,      -inf], dtype=float32)
    """
    x = s.astype(xp.float64)
    ordinary = xp.isfinite(x) & (x > 0)
    m, e = xp.frexp(xp.where(ordinary, x, 1.0))
    low = m < math.sqrt(0.5)
    m = xp.where(low, m * 2.0, m)
    e = (e - low).astype(xp.float64)
    f = (m - 1.0) / (m + 1.0)
    log_m = (2.0 * f) * _horner(xp, _ATANH_TERMS, f * f)
    out = (e * _LN2_HI + (e * _LN2_LO + log_m)).astype(xp.float32)
    if not bool(xp.all(ordinary)):
        with np.errstate(divide="ignore", invalid="ignore"):
            out = xp.where(ordinary, out, xp.log(s))
    return out


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
    matmul : {"ordered", "blas"}
        The arithmetic of both passes (see the module): ``"ordered"``, the
        backend's ``matmul_ordered`` kernel and spec'd ``exp``/``log``
        (byte-reproducible runs on every machine and backend), or
        ``"blas"``, ``xp.matmul`` and numpy's reductions (faster on wide
        layers; the last bits depend on the machine).  ``"ordered"``
        computes in float32 only.

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
    >>> fast = MLP([4, 8, 3], seed=0, backend="numpy", matmul="blas")
    >>> abs(fast.loss(x, y) - net.loss(x, y)) < 1e-6        # the same model, another summation order
    True
    """

    def __init__(self, sizes: Sequence[int], seed: int = 0, backend: Any = None, loss: str = "cross_entropy",
                 matmul: str = "ordered") -> None:
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ConfigError(f"sizes: expected at least two positive layer widths, got {sizes!r}")
        if loss not in LOSSES:
            raise ConfigError(f"loss: expected one of {', '.join(LOSSES)}, got {loss!r}")
        if matmul not in MATMULS:
            raise ConfigError(f"matmul: expected one of {', '.join(MATMULS)}, got {matmul!r}")
        self.loss_kind = loss
        self.matmul = matmul
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
        """Overwrite the parameters in place with ``params`` (same names and shapes; checked before any is written)."""
        missing = [k for k in self.params if k not in params]
        if missing or len(params) != len(self.params):
            raise ConfigError(f"params: expected exactly the names {list(self.params)}, got {list(params)}")
        for k, v in self.params.items():
            if tuple(params[k].shape) != tuple(v.shape):
                raise ShapeError(f"params[{k!r}]: expected shape {tuple(v.shape)}, got {tuple(params[k].shape)}")
        for k, v in self.params.items():
            v[...] = params[k]

    # --- inputs -------------------------------------------------------------------

    def _inputs(self, x: Any) -> Any:
        """``x`` as ``(n, sizes[0])`` on the backend: float32 for ``ordered``, any float dtype for ``blas``."""
        if self.matmul == "ordered":
            x = float32_array(x, "x", self.backend)
        else:
            x = x if hasattr(x, "dtype") else self.backend.xp.asarray(x)
            if x.dtype.kind != "f":
                raise DTypeError(f"x: expected a floating-point array, got dtype {x.dtype}")
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ShapeError(f"x: expected shape (n, {self.sizes[0]}), got {tuple(x.shape)}")
        return x

    def _targets(self, y: Any, n: int) -> Any:
        """``y`` checked against ``n`` samples: class labels in ``[0, classes)``, or float32 regression targets."""
        if self.loss_kind == "mse":
            y = float32_array(y, "y", self.backend) if self.matmul == "ordered" else self.backend.xp.asarray(y)
            if y.size != n * self.sizes[-1] or y.shape[0] != n or y.ndim > 2:
                raise ShapeError(f"y: expected shape ({n},) or ({n}, {self.sizes[-1]}), got {tuple(y.shape)}")
            return y
        if not hasattr(y, "dtype") or y.dtype.kind not in "iu":
            raise DTypeError(f"y: expected an integer array of class labels, got {getattr(y, 'dtype', type(y).__name__)}")
        if tuple(y.shape) != (n,):
            raise ShapeError(f"y: expected shape ({n},), got {tuple(y.shape)}")
        if n and not (0 <= int(y.min()) and int(y.max()) < self.sizes[-1]):
            raise ConfigError(f"y: expected class labels in [0, {self.sizes[-1]}), got values from {int(y.min())} to {int(y.max())}")
        return y

    def _batch(self, x: Any, y: Any) -> tuple[Any, Any]:
        x = self._inputs(x)
        return x, self._targets(y, int(x.shape[0]))

    def _product(self, a: Any, b: Any) -> Any:
        """``a @ b`` by the chosen :data:`MATMULS` entry (``ordered``: on C-contiguous copies of transposed views)."""
        if self.matmul == "blas":
            return self.backend.xp.matmul(a, b)
        if a.dtype != np.float32 or b.dtype != np.float32:
            raise DTypeError(f"params: matmul='ordered' computes in float32, got {a.dtype} @ {b.dtype} (use matmul='blas')")
        xp = self.backend.xp
        return self.backend.matmul_ordered(xp.ascontiguousarray(a), xp.ascontiguousarray(b))

    # --- passes -------------------------------------------------------------------

    def _row_sums(self, z: Any) -> Any:
        """Sum over each row of ``z``: ``z @ ones(m, 1)`` in the ordered product (column order from +0.0)."""
        ones = self.backend.xp.ones((z.shape[1], 1), dtype=self.backend.xp.float32)
        return self.backend.matmul_ordered(self.backend.xp.ascontiguousarray(z), ones)[:, 0]

    def _mean(self, v: Any) -> float:
        """Mean of every element of float32 ``v``: the ordered float32 sum, then a float64 division by the count."""
        flat = self.backend.xp.ascontiguousarray(v).reshape(1, -1)
        ones = self.backend.xp.ones((flat.shape[1], 1), dtype=self.backend.xp.float32)
        return float(self.backend.matmul_ordered(flat, ones)[0, 0]) / max(flat.shape[1], 1)

    def _column_sums(self, d: Any) -> Any:
        """Sum over the rows of ``d`` (a bias gradient): ``ones(1, n) @ d`` in the ordered product, row order from +0.0."""
        if self.matmul == "blas":
            return self.backend.xp.sum(d, axis=0)
        xp = self.backend.xp
        return self.backend.matmul_ordered(xp.ones((1, d.shape[0]), dtype=xp.float32), xp.ascontiguousarray(d))[0]

    def _forward(self, x: Any) -> tuple[list[Any], Any]:
        xp = self.backend.xp
        p = self.params
        acts = [x]
        h = x
        for i in range(self._n_layers - 1):
            h = self._product(h, p[f"w{i}"])
            h += p[f"b{i}"]
            xp.maximum(h, 0, out=h)
            acts.append(h)
        z = self._product(h, p[f"w{self._n_layers - 1}"])
        z += p[f"b{self._n_layers - 1}"]
        return acts, z

    def _softmax_loss(self, z: Any, y: Any) -> tuple[float, Any]:
        """Mean cross-entropy and the softmax probabilities (``z`` is overwritten)."""
        xp = self.backend.xp
        z -= xp.max(z, axis=1, keepdims=True)
        rows = xp.arange(z.shape[0])
        picked = z[rows, y]
        if self.matmul == "blas":
            xp.exp(z, out=z)
            s = xp.sum(z, axis=1)
            loss = float(xp.mean(xp.log(s) - picked))
        else:
            z[...] = exp_f32(xp, z)
            s = self._row_sums(z)
            loss = self._mean(log_f32(xp, s) - picked)
        z /= s[:, None]
        return loss, z

    def _squared_loss(self, z: Any, y: Any) -> tuple[float, Any]:
        """Mean squared error and the residual ``z - y`` (``z`` is overwritten)."""
        xp = self.backend.xp
        z -= y.reshape(z.shape)
        return (float(xp.mean(z * z)) if self.matmul == "blas" else self._mean(z * z)), z

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
        return self._forward(self._inputs(x))[1]

    def loss(self, x: Any, y: Any) -> float:
        """Mean cross-entropy (or squared error) of the batch (a forward pass only)."""
        x, y = self._batch(x, y)
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
        p = self.params
        x, y = self._batch(x, y)
        acts, z = self._forward(x)
        loss, d = self._head(z, y)
        n = x.shape[0]
        d *= np.float32(1.0 / n)
        grads: dict[str, Any] = {}
        for i in range(self._n_layers - 1, -1, -1):
            h = acts[i]
            grads[f"w{i}"] = self._product(h.T, d)
            grads[f"b{i}"] = self._column_sums(d)
            if i > 0:
                d = self._product(d, p[f"w{i}"].T)
                d *= h > 0
        return loss, {k: grads[k] for k in p}

    def accuracy(self, x: Any, y: Any) -> float:
        """Share of samples whose highest score is the true class (a classification)."""
        xp = self.backend.xp
        x, y = self._batch(x, y)
        return float(xp.mean(xp.argmax(self._forward(x)[1], axis=1) == y))

    def mse(self, x: Any, y: Any) -> float:
        """Mean squared error of the predictions (a regression; the same as :meth:`loss` with ``loss="mse"``)."""
        x, y = self._batch(x, y)
        return self._squared_loss(self._forward(x)[1], y)[0]
