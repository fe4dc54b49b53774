"""Zero-copy exchange of tensors between torch and the backends' arrays (DLPack).

CPU tensors become numpy arrays and CUDA tensors cupy arrays that share the
tensor's memory; backend arrays become torch tensors that share theirs.  Only
dtype conversions copy: numpy has no bfloat16, and vsaopt computes in float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..backend import resolve_backend
from ..errors import BackendError, DTypeError

__all__ = ["to_array", "from_array", "backend_for", "float32_view"]

#: Floating dtypes accepted from torch; the others are rejected with DTypeError.
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def float32_view(t: torch.Tensor, name: str) -> torch.Tensor:
    """``t`` detached, as float32: the tensor itself when it is float32, else a converted copy.

    Raises
    ------
    DTypeError
        ``t`` is sparse or not a real floating tensor.
    """
    if t.layout != torch.strided:
        raise DTypeError(f"{name}: expected a dense (strided) tensor, got layout {t.layout}")
    if t.dtype not in FLOAT_DTYPES:
        raise DTypeError(f"{name}: expected a float32, float16, bfloat16 or float64 tensor, got {t.dtype}")
    t = t.detach()
    if t.dtype != torch.float32:
        t = t.to(torch.float32)
    return t.resolve_conj().resolve_neg()


def to_array(t: torch.Tensor) -> Any:
    """The array (numpy for CPU, cupy for CUDA) that shares ``t``'s memory.

    Examples
    --------
    >>> import torch
    >>> t = torch.zeros(3)
    >>> a = to_array(t)
    >>> a[1] = 5.0
    >>> t.tolist()
    [0.0, 5.0, 0.0]
    """
    t = t.detach()
    if t.device.type == "cpu":
        return t.numpy()  # shares memory, as np.from_dlpack does, at a tenth of its cost per call
    if t.device.type == "cuda":
        try:
            import cupy
        except ImportError as exc:
            raise BackendError(f"a CUDA tensor needs cupy to cross into vsaopt ({exc}); install vsaopt[cuda12] or vsaopt[cuda13]") from None
        return cupy.from_dlpack(t)
    raise BackendError(f"tensors on device {t.device} are not supported (cpu and cuda are)")


def from_array(a: Any) -> torch.Tensor:
    """The torch tensor that shares the memory of a numpy or cupy array (read-only numpy arrays are copied).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(3, dtype=np.float32)
    >>> t = from_array(a)
    >>> t[0] = 7.0
    >>> a.tolist()
    [7.0, 1.0, 2.0]
    """
    if isinstance(a, np.ndarray) and not a.flags.writeable:
        a = a.copy()
    return torch.from_dlpack(a)


def backend_for(device: torch.device, backend: Any) -> Any:
    """The vsaopt backend for tensors on ``device``: ``backend`` checked, or chosen (numba/numpy on CPU, cupy on CUDA).

    Raises
    ------
    BackendError
        ``backend`` computes elsewhere than ``device``, or the device is unsupported.
    """
    if device.type == "cpu":
        probe: Any = np.zeros(1, np.float32)
    elif device.type == "cuda":
        probe = to_array(torch.zeros(1, device=device))
    else:
        raise BackendError(f"tensors on device {device} are not supported (cpu and cuda are)")
    return resolve_backend(backend, probe)
