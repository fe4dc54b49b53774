"""SGD with heavy-ball momentum, updating parameters in place on the backend's array namespace.

The update is PyTorch's ``torch.optim.SGD(momentum=mu)`` without dampening or
weight decay:

.. math::

    v \\leftarrow \\mu v + g, \\qquad \\theta \\leftarrow \\theta - \\eta v

Why SGD with momentum rather than Adam: Adam divides every step by a running
estimate of the gradient's scale, which would hide (rescale) the magnitude
errors of predicted gradients, and its second-moment estimate would be fed
predicted values; plain momentum keeps the comparison between real and
predicted gradients direct.  Every mode of ``vsaopt train`` uses the same
optimizer with the same settings.

Its state (:meth:`SGDMomentum.state_dict`) is a flat dict of plain values and
numpy arrays, so ``numpy.savez`` writes it and ``numpy.load`` reads it back
without pickle; a run resumed from it continues bit-identically.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..backend import is_device_array, to_host
from ..errors import CheckpointError, ConfigError, ShapeError

__all__ = ["SGDMomentum", "VELOCITY_PREFIX"]

#: Key prefix of each parameter's momentum buffer in :meth:`SGDMomentum.state_dict`.
VELOCITY_PREFIX = "velocity."


class SGDMomentum:
    """In-place SGD with momentum over a dict of parameter arrays.

    Parameters
    ----------
    params : dict of str to array
        Updated in place by :meth:`step`.
    lr : float > 0
    momentum : float in [0, 1)

    Examples
    --------
    >>> import numpy as np
    >>> params = {"w": np.ones(2, np.float32)}
    >>> opt = SGDMomentum(params, lr=0.5, momentum=0.9)
    >>> opt.step({"w": np.ones(2, np.float32)}); params["w"]
    array([0.5, 0.5], dtype=float32)
    >>> opt.step({"w": np.ones(2, np.float32)}); params["w"]      # v = 0.9 * 1 + 1
    array([-0.45, -0.45], dtype=float32)
    >>> sorted(opt.state_dict())
    ['lr', 'momentum', 'velocity.w']
    """

    def __init__(self, params: Mapping[str, Any], lr: float = 0.05, momentum: float = 0.9) -> None:
        if not (float(lr) > 0.0) or not np.isfinite(lr):
            raise ConfigError(f"lr: expected a finite number > 0, got {lr!r}")
        if not (0.0 <= float(momentum) < 1.0):
            raise ConfigError(f"momentum: expected a number in [0, 1), got {momentum!r}")
        self.params = params
        self.lr = np.float32(lr)
        self.momentum = np.float32(momentum)
        self._velocity = {k: v.copy() * 0 for k, v in params.items()}
        self._scratch = {k: v.copy() for k, v in params.items()}

    def step(self, gradients: Mapping[str, Any]) -> None:
        """One update with ``gradients`` (same names and shapes as the parameters; checked before any update)."""
        missing = [k for k in self.params if k not in gradients]
        if missing:
            raise ConfigError(f"gradients: missing {missing} (expected the names {list(self.params)})")
        for k, p in self.params.items():
            if tuple(gradients[k].shape) != tuple(p.shape):
                raise ShapeError(f"gradients[{k!r}]: expected shape {tuple(p.shape)}, got {tuple(gradients[k].shape)}")
        for k, p in self.params.items():
            v = self._velocity[k]
            tmp = self._scratch[k]
            v *= self.momentum
            v += gradients[k]
            tmp[...] = v
            tmp *= self.lr
            p -= tmp

    # --- state ----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as a flat dict of plain values and host numpy arrays (copies).

        Returns
        -------
        dict
            ``"lr"`` and ``"momentum"`` (Python floats: the float32 values the
            updates use) and ``"velocity.<name>"`` for every parameter (its
            momentum buffer, a numpy copy).  ``numpy.savez(path, **state)``
            stores it; ``dict(numpy.load(path))`` reads it back.

        Examples
        --------
        >>> import numpy as np
        >>> params = {"w": np.ones(2, np.float32)}
        >>> opt = SGDMomentum(params, lr=0.5, momentum=0.9)
        >>> opt.step({"w": np.ones(2, np.float32)})
        >>> state = opt.state_dict()
        >>> state["lr"], state["velocity.w"]
        (0.5, array([1., 1.], dtype=float32))
        >>> resumed = SGDMomentum({"w": params["w"].copy()}, lr=0.1)
        >>> resumed.load_state_dict(state)
        >>> float(resumed.lr), resumed.state_dict()["velocity.w"]
        (0.5, array([1., 1.], dtype=float32))
        """
        state: dict[str, Any] = {"lr": float(self.lr), "momentum": float(self.momentum)}
        state.update({VELOCITY_PREFIX + k: to_host(v) for k, v in self._velocity.items()})
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (also one read back with ``dict(numpy.load(path))``).

        Everything is checked before anything is written: a state that fails
        a check leaves the optimizer as it was.  The velocity is copied in,
        so later changes to ``state`` do not reach the optimizer.

        Parameters
        ----------
        state : mapping
            Exactly the keys ``"lr"``, ``"momentum"`` and ``"velocity.<name>"``
            for every parameter.  ``lr`` and ``momentum``: real numbers (or 0-d
            arrays) with ``lr > 0`` finite and ``0 <= momentum < 1``; each
            velocity: an array of its parameter's shape and dtype, finite.

        Raises
        ------
        CheckpointError
            Not a mapping, a missing or unknown key, or a value of the wrong
            type, shape, dtype or range (the message names the key).
        """
        if not isinstance(state, Mapping):
            raise CheckpointError(f"state: expected a mapping (SGDMomentum.state_dict()), got {type(state).__name__}")
        keys = {k: VELOCITY_PREFIX + k for k in self._velocity}
        _check_keys(state, ["lr", "momentum", *keys.values()])
        lr, momentum = _checked_hyperparameters(state)
        velocity = {k: _checked_velocity(state[key], key, self._velocity[k]) for k, key in keys.items()}
        for k, v in velocity.items():
            self._velocity[k][...] = v
        self.lr, self.momentum = lr, momentum


def _check_keys(state: Mapping[str, Any], expected: list[str]) -> None:
    """CheckpointError naming the keys of ``state`` that are missing or unknown."""
    missing = [k for k in expected if k not in state]
    unknown = sorted(str(k) for k in state if k not in set(expected))
    if missing or unknown:
        raise CheckpointError(f"state: expected exactly the keys {expected}; missing {missing}, unknown {unknown}")


def _checked_hyperparameters(state: Mapping[str, Any]) -> tuple[np.float32, np.float32]:
    """``(lr, momentum)`` of a state, rounded to float32 and then checked; CheckpointError when out of range."""
    lr = _real(state["lr"], "lr")
    momentum = _real(state["momentum"], "momentum")
    with np.errstate(over="ignore"):
        lr32, momentum32 = np.float32(lr), np.float32(momentum)
    if not (np.isfinite(lr32) and lr32 > 0.0):
        raise CheckpointError(f"state['lr']: expected a number > 0 that is finite in float32, got {lr!r}")
    if not 0.0 <= momentum32 < 1.0:
        raise CheckpointError(f"state['momentum']: expected a number in [0, 1) in float32, got {momentum!r}")
    return lr32, momentum32


def _real(value: Any, key: str) -> float:
    """``value`` (``state[key]``) as a float: a real number or a 0-d real array (not a bool)."""
    ok = isinstance(value, (int, float, np.integer, np.floating, np.ndarray)) and not isinstance(value, (bool, np.bool_))
    if ok and isinstance(value, np.ndarray):
        ok = value.ndim == 0 and value.dtype.kind in "iuf"
    if not ok:
        raise CheckpointError(f"state[{key!r}]: expected a real number, got {type(value).__name__} {value!r:.80}")
    return float(value)


def _checked_velocity(value: Any, key: str, held: Any) -> np.ndarray:
    """``value`` (``state[key]``) as a host array of ``held``'s shape and dtype, finite; CheckpointError otherwise."""
    if not (isinstance(value, np.ndarray) or is_device_array(value)):
        raise CheckpointError(f"state[{key!r}]: expected an array, got {type(value).__name__}")
    host = to_host(value, copy=False)
    if host.shape != tuple(held.shape):
        raise CheckpointError(f"state[{key!r}]: expected shape {tuple(held.shape)}, got {host.shape}")
    if host.dtype != held.dtype:
        raise CheckpointError(f"state[{key!r}]: expected dtype {held.dtype}, got {host.dtype}")
    if not np.isfinite(host).all():
        raise CheckpointError(f"state[{key!r}]: holds NaN or Inf")
    return host
