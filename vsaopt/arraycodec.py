"""Array hex codec: JSON-ready ``{"dtype", "shape", "hex"}`` form of arrays, nested in dicts and lists.

The one encoding of arrays in vsaopt's JSON: the golden vector files
(:mod:`vsaopt.golden`) and the compressed-gradient wire format
(:mod:`vsaopt.wire`) both use it.  An array becomes its dtype name, its shape
and the hex of its little-endian bytes, so a round trip is exact.

Examples
--------
>>> import numpy as np
>>> encode(np.array([1, 2], dtype=np.uint16))
{'dtype': 'uint16', 'shape': [2], 'hex': '01000200'}
>>> back = decode(encode({"x": np.float32(0.5), "n": 3}))
>>> back["x"].dtype, float(back["x"]), back["n"]
(dtype('float32'), 0.5, 3)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import to_host

__all__ = ["encode", "decode"]


def encode(value: Any) -> Any:
    """JSON form of an input or output value (arrays as dtype/shape/hex)."""
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and not isinstance(value, np.generic):
        return value
    if isinstance(value, float):
        value = np.float64(value)
    arr = np.asarray(to_host(value, copy=False), order="C")  # keeps 0-d values 0-d
    le = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    return {"dtype": arr.dtype.name, "shape": list(arr.shape), "hex": le.tobytes().hex()}


def decode(value: Any) -> Any:
    """Inverse of :func:`encode`: arrays become numpy arrays, shape-``[]`` values numpy scalars."""
    if isinstance(value, dict) and "hex" in value:
        dtype = np.dtype(value["dtype"]).newbyteorder("<")
        arr = np.frombuffer(bytes.fromhex(value["hex"]), dtype=dtype).astype(dtype.newbyteorder("="))
        arr = arr.reshape(value["shape"])
        return arr[()] if arr.ndim == 0 else arr  # a scalar input becomes a numpy scalar
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value
