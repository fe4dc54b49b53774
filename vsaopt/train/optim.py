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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["SGDMomentum"]


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
        """One update with ``gradients`` (same names and shapes as the parameters)."""
        for k, p in self.params.items():
            v = self._velocity[k]
            tmp = self._scratch[k]
            v *= self.momentum
            v += gradients[k]
            tmp[...] = v
            tmp *= self.lr
            p -= tmp
