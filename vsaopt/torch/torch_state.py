"""A trainer's ``state_dict`` in the form ``torch.save`` / ``torch.load(weights_only=True)`` round-trips.

vsaopt states are ``{"header": JSON-able dict, "arrays": name -> numpy array}``;
``torch.load(weights_only=True)`` refuses numpy objects, so the arrays travel
as CPU tensors of the same dtype and shape and come back as numpy arrays,
byte for byte.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError

__all__ = ["arrays_to_tensors", "tensors_to_arrays"]

#: numpy dtypes a state may hold, and their torch counterparts.
_DTYPES = {
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
    np.dtype(np.float16): torch.float16,
    np.dtype(np.int8): torch.int8,
    np.dtype(np.uint8): torch.uint8,
    np.dtype(np.int16): torch.int16,
    np.dtype(np.int32): torch.int32,
    np.dtype(np.int64): torch.int64,
    np.dtype(np.bool_): torch.bool,
}
_NUMPY = {t: d for d, t in _DTYPES.items()}


def arrays_to_tensors(arrays: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Each numpy array as a CPU tensor with its own copy of the data.

    Raises
    ------
    CheckpointError
        An array of a dtype torch does not hold.

    Examples
    --------
    >>> import numpy as np
    >>> arrays_to_tensors({"a": np.arange(3, dtype=np.int8)})["a"]
    tensor([0, 1, 2], dtype=torch.int8)
    """
    out = {}
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.dtype not in _DTYPES:
            raise CheckpointError(f"state array {name!r}: dtype {a.dtype} has no torch counterpart")
        out[name] = torch.from_numpy(np.array(a, order="C", copy=True))  # (ascontiguousarray would make 0-d arrays 1-d)
    return out


def tensors_to_arrays(tensors: Any, what: str = "state") -> dict[str, np.ndarray]:
    """Each tensor of :func:`arrays_to_tensors` back as a numpy array (a copy).

    Raises
    ------
    CheckpointError
        Not a mapping of str to dense tensors of the dtypes :func:`arrays_to_tensors` writes.
    """
    if not isinstance(tensors, dict):
        raise CheckpointError(f"{what}: expected a dict of tensors, got {type(tensors).__name__}")
    out = {}
    for name, t in tensors.items():
        if not isinstance(name, str) or not isinstance(t, torch.Tensor) or t.layout != torch.strided or t.dtype not in _NUMPY:
            raise CheckpointError(f"{what}[{name!r}]: expected a dense tensor of one of {sorted(str(d) for d in _NUMPY)}")
        out[name] = t.detach().cpu().contiguous().numpy().copy()
    return out
