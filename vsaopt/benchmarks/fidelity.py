"""Measured fidelity of the VSA gradient compressor against compression ratio.

:func:`fidelity_table` compresses and decompresses synthetic gradients
(Gaussian, and low-rank plus noise like real weight gradients) at several
compression ratios and reports the cosine and relative L2 error of the
reconstruction, beside two predictions: the dense Gaussian projection formula
of vsa-optim-rs (``1/sqrt(1 + n/d)``) and vsaopt's own float-path prediction
for its subsampled Hadamard projection.  The CLI only formats the rows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .._grads import normalize_param_shapes
from ..backend import Backend, resolve_backend
from ..compressor import VSAGradientCompressor
from ..config import VSAConfig
from ..errors import ConfigError
from ..projection import padded_length

__all__ = [
    "FidelityRow",
    "DEFAULT_SHAPES",
    "KINDS",
    "MODES",
    "dense_projection_cosine",
    "make_gradients",
    "fidelity_table",
]

#: A small MLP's parameters (784-256-10), the default model of the table.
DEFAULT_SHAPES = (("fc1.weight", (256, 784)), ("fc1.bias", (256,)), ("fc2.weight", (10, 256)), ("fc2.bias", (10,)))
#: Synthetic gradient kinds.
KINDS = ("gaussian", "lowrank")
#: Compressor modes of the table (``"per_tensor+ef"``: per-tensor with error feedback, first call).
MODES = ("bundled", "per_tensor", "per_tensor+ef")
#: Rank of the low-rank gradients.
LOW_RANK = 4


def dense_projection_cosine(n: int, d: int) -> float:
    """The crate's dense-projection fidelity ``1 / sqrt(1 + n / d)`` of ``P^T P g`` for ``n`` params into ``d`` dims.

    Examples
    --------
    >>> round(dense_projection_cosine(768 * 3072, 8192), 3)
    0.059
    """
    return 1.0 / math.sqrt(1.0 + n / d) if d else 0.0


def make_gradients(param_shapes: Any, kind: str = "gaussian", seed: int = 0) -> dict[str, np.ndarray]:
    """Synthetic float32 gradients: iid ``N(0, 1)``, or rank-4 ``U V^T / 2`` plus 0.1 noise for 2-D parameters.

    Examples
    --------
    >>> g = make_gradients([("w", (8, 6)), ("b", (6,))], "lowrank", seed=1)
    >>> g["w"].shape, g["b"].dtype
    ((8, 6), dtype('float32'))
    """
    if kind not in KINDS:
        raise ConfigError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    shapes = normalize_param_shapes(param_shapes)
    rng = np.random.Generator(np.random.PCG64(seed))
    out = {}
    for name, shape in shapes:
        if kind == "lowrank" and len(shape) == 2:
            u = rng.standard_normal((shape[0], LOW_RANK))
            v = rng.standard_normal((LOW_RANK, shape[1]))
            g = u @ v / math.sqrt(LOW_RANK) + 0.1 * rng.standard_normal(shape)
        else:
            g = rng.standard_normal(shape)
        out[name] = g.astype(np.float32)
    return out


@dataclass(frozen=True)
class FidelityRow:
    """One measurement of :func:`fidelity_table`."""

    #: Gradient kind (``"gaussian"`` or ``"lowrank"``).
    kind: str
    #: Compressor mode (``"bundled"``, ``"per_tensor"``, ``"per_tensor+ef"``).
    mode: str
    #: Requested ``VSAConfig.compression_ratio``.
    compression_ratio: float
    #: Parameters compressed.
    params: int
    #: Hypervector coordinates in the message.
    compressed_dim: int
    #: Bytes of the message (payload and per-tensor metadata).
    message_bytes: int
    #: Cosine of the concatenated original and reconstructed gradients.
    cosine: float
    #: ``||g - g'|| / ||g||``.
    rel_l2: float
    #: ``1 / sqrt(1 + params / compressed_dim)``: the crate's dense projection.
    dense_cosine: float
    #: vsaopt's float-path prediction ``||g|| / sqrt(sum_i (N_i / m_i) ||g_i||^2)`` (unit gain: ``sqrt(sum_i (m_i/N_i)||g_i||^2) / ||g||``).
    predicted_cosine: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields."""
        return asdict(self)


def _predicted(comp: VSAGradientCompressor, grads: dict[str, np.ndarray]) -> float:
    total = sum(float(np.dot(g.ravel().astype(np.float64), g.ravel().astype(np.float64))) for g in grads.values())
    if total == 0:
        return 0.0
    acc = 0.0
    for (name, _), d in zip(comp.param_shapes, comp.dims):
        g = grads[name].ravel().astype(np.float64)
        nprime = padded_length(g.size)
        m = min(d, nprime)
        if m == 0:
            continue
        e = float(np.dot(g, g))
        acc += e * (m / nprime if comp.gain == "unit" else nprime / m)
    if comp.gain == "unit":
        return math.sqrt(acc / total)
    return math.sqrt(total / acc) if acc else 0.0


def fidelity_table(
    param_shapes: Any = DEFAULT_SHAPES,
    ratios: Any = (0.01, 0.03, 0.1, 0.3),
    kinds: Any = KINDS,
    modes: Any = MODES,
    *,
    use_ternary: bool = True,
    seed: int = 0,
    backend: Backend | str | None = None,
) -> list[FidelityRow]:
    """Cosine and relative L2 error of ``decompress(compress(g))`` for each kind, mode and ratio.

    The hypervector dimension follows the compression ratio
    (``VSAConfig(dimension=1, compression_ratio=r)``, with the crate's floor of 256).

    Examples
    --------
    >>> rows = fidelity_table([("w", (64, 64))], ratios=(0.25,), kinds=("gaussian",), modes=("per_tensor",), backend="numpy")
    >>> r = rows[0]
    >>> r.compressed_dim, r.cosine > 0.8 * r.predicted_cosine
    (1024, True)
    """
    shapes = normalize_param_shapes(param_shapes)
    be = resolve_backend(backend)
    rows = []
    for kind in kinds:
        grads = make_gradients(shapes, kind, seed)
        flat = np.concatenate([grads[n].ravel() for n, _ in shapes]).astype(np.float64)
        norm = float(np.linalg.norm(flat))
        for mode in modes:
            if mode not in MODES:
                raise ConfigError(f"modes: expected entries of {', '.join(MODES)}, got {mode!r}")
            for ratio in ratios:
                cfg = VSAConfig(dimension=1, compression_ratio=float(ratio), use_ternary=use_ternary, seed=seed)
                comp = VSAGradientCompressor(
                    shapes, cfg, be, mode=mode.split("+")[0], error_feedback=mode.endswith("+ef")
                )
                msg = comp.compress(grads)
                rec = comp.decompress(msg)
                rflat = np.concatenate([np.asarray(rec[n]).ravel() for n, _ in shapes]).astype(np.float64)
                rnorm = float(np.linalg.norm(rflat))
                cos = float(flat @ rflat / (norm * rnorm)) if norm and rnorm else 0.0
                rel = float(np.linalg.norm(flat - rflat) / norm) if norm else 0.0
                rows.append(
                    FidelityRow(
                        kind,
                        mode,
                        float(ratio),
                        int(flat.size),
                        comp.compressed_dim,
                        msg.nbytes,
                        cos,
                        rel,
                        dense_projection_cosine(int(flat.size), comp.compressed_dim),
                        _predicted(comp, grads),
                    )
                )
    return rows
