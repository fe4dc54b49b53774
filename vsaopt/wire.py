"""Wire format of compressed gradients: :class:`CompressedGradients` and its JSON form.

What :meth:`~vsaopt.compressor.VSAGradientCompressor.compress` returns and
:meth:`~vsaopt.compressor.VSAGradientCompressor.decompress` reads: packed
hypervector(s) plus per-tensor metadata (:class:`TensorMeta`).  It serializes
without pickle, arrays in the hex form of :mod:`vsaopt.arraycodec`, and
:meth:`CompressedGradients.from_dict` checks the structure of what it reads
(the compressor checks that a message fits its own configuration).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._json import parse_json
from .arraycodec import decode, encode
from .errors import EncodingError

__all__ = ["FORMAT", "TensorMeta", "CompressedGradients"]

#: Serialization format tag of :class:`CompressedGradients`.
FORMAT = "vsaopt.compressed/1"


@dataclass(frozen=True)
class TensorMeta:
    """Per-tensor metadata of a compressed message (the crate's ``GradientMetadata`` plus what vsaopt needs)."""

    #: Parameter name.
    name: str
    #: Original shape.
    shape: tuple[int, ...]
    #: Binding key index (the tensor's position in ``param_shapes``).
    key_index: int
    #: Least-squares scale of the trits (float32; 0 in the float path).
    scale: float
    #: Power-of-two prescale exponent ``e``: the tensor was divided by ``2**e`` before projection.
    exponent: int
    #: Hypervector dimension of this tensor.
    dim: int


@dataclass(frozen=True)
class CompressedGradients:
    """A compressed set of gradients: packed hypervector(s) plus per-tensor metadata.

    Serializable without pickle: :meth:`to_dict` / :meth:`from_dict` and
    :meth:`to_json` / :meth:`from_json` round-trip exactly (arrays as
    little-endian hex).

    Attributes
    ----------
    mode : {"bundled", "per_tensor"}
    step : int
        The compressor call that made it (selects the random draw).
    encoding : {"2bit", "float32"}
        Payload encoding: packed trits or raw float32 coordinates.
    gain : {"unbiased", "unit"}
    config : dict
        The :class:`~vsaopt.config.VSAConfig` of the compressor (``to_dict``).
    tensors : tuple of TensorMeta
    payload : tuple of numpy uint8 or float32 arrays
        One hypervector (bundled) or one per tensor.

    Examples
    --------
    >>> import numpy as np
    >>> from vsaopt import VSAConfig, VSAGradientCompressor
    >>> c = VSAGradientCompressor([("b", (100,))], VSAConfig(dimension=256, seed=3), backend="numpy")
    >>> msg = c.compress({"b": np.linspace(-1, 1, 100, dtype=np.float32)})
    >>> msg.mode, msg.step, msg.encoding, msg.tensors[0].dim, msg.nbytes
    ('bundled', 0, '2bit', 256, 70)
    >>> back = CompressedGradients.from_json(msg.to_json())
    >>> bool((c.decompress(back)["b"] == c.decompress(msg)["b"]).all())
    True
    """

    mode: str
    step: int
    encoding: str
    gain: str
    config: dict
    tensors: tuple[TensorMeta, ...]
    payload: tuple[Any, ...] = field(repr=False)

    @property
    def nbytes(self) -> int:
        """Bytes of the message: the payload plus 4 (f32 scale) + 2 (int16 exponent) per tensor."""
        return int(sum(int(p.nbytes) for p in self.payload)) + 6 * len(self.tensors)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays as ``{"dtype", "shape", "hex"}``)."""
        return {
            "format": FORMAT,
            "mode": self.mode,
            "step": self.step,
            "encoding": self.encoding,
            "gain": self.gain,
            "config": dict(self.config),
            "tensors": [
                {
                    "name": t.name,
                    "shape": list(t.shape),
                    "key_index": t.key_index,
                    "scale": encode(np.array([t.scale], dtype=np.float32)),
                    "exponent": t.exponent,
                    "dim": t.dim,
                }
                for t in self.tensors
            ],
            "payload": [encode(p) for p in self.payload],
        }

    @classmethod
    def from_dict(cls, data: Any) -> CompressedGradients:
        """Inverse of :meth:`to_dict`; malformed data raises :class:`~vsaopt.errors.EncodingError`."""
        try:
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise EncodingError(f"compressed: not a {FORMAT} message")
            tensors = []
            for t in data["tensors"]:
                scale = decode(t["scale"])
                if not isinstance(scale, np.ndarray) or scale.dtype != np.float32 or scale.shape != (1,):
                    raise EncodingError("compressed: a tensor scale must be a float32 array of shape (1,)")
                tensors.append(
                    TensorMeta(
                        str(t["name"]),
                        tuple(int(s) for s in t["shape"]),
                        int(t["key_index"]),
                        float(scale[0]),
                        int(t["exponent"]),
                        int(t["dim"]),
                    )
                )
            payload = tuple(decode(p) for p in data["payload"])
            if not all(isinstance(p, np.ndarray) for p in payload):
                raise EncodingError("compressed: payload entries must be arrays")
            return cls(
                str(data["mode"]),
                int(data["step"]),
                str(data["encoding"]),
                str(data["gain"]),
                dict(data["config"]),
                tuple(tensors),
                payload,
            )
        except EncodingError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise EncodingError(f"compressed: malformed message ({exc})") from None

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CompressedGradients:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(parse_json(text, "compressed", EncodingError))

