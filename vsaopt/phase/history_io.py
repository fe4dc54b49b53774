"""Checkpoint arrays of held history rows, in their held encoding (spec/history.md, "Checkpoints").

Rows of ``n`` elements are saved oldest first as one array ``<name>``:
float32 ``(k, n)`` ("none"), uint16 bfloat16 patterns ``(k, n)`` ("bfloat16")
or packed trits uint8 ``(k, ceil(n/4))`` ("ternary", with the float32 row
scales in ``<name>_scales``).  Loading checks what the encoder can produce:
finite values, no bfloat16 Inf/NaN pattern, valid 2-bit codes and zero pads,
finite non-negative scales.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..checkpoint import Fields
from .history_codec import BF16_INF_BITS, EncodedRow

__all__ = ["export_rows", "import_rows"]


def _width(n: int, compression: str) -> int:
    return -(-n // 4) if compression == "ternary" else n


def _dtype(compression: str) -> Any:
    return {"none": np.float32, "bfloat16": np.uint16, "ternary": np.uint8}[compression]


def export_rows(rows: Sequence[EncodedRow], name: str, compression: str, n: int, be: Any) -> dict[str, np.ndarray]:
    """Host arrays holding ``rows`` (in the given order) as held: ``{name: data, name + "_scales": scales}``."""
    w, dt = _width(n, compression), _dtype(compression)
    data = np.stack([be.to_host(r.data) for r in rows]) if rows else np.zeros((0, w), dt)
    out = {name: data}
    if compression == "ternary":
        out[name + "_scales"] = np.array([r.scale for r in rows], dtype=np.float32)
    return out


def import_rows(f: Fields, name: str, compression: str, n: int, max_rows: int, be: Any) -> list[EncodedRow]:
    """Validated rows of the arrays :func:`export_rows` wrote, moved to the backend (CheckpointError otherwise)."""
    data = f.array(name, _dtype(compression), (-1, _width(n, compression)))
    k = data.shape[0]
    f.require(k <= max_rows, f"{name} has {k} rows, at most {max_rows}")
    scales = np.zeros(k, np.float32)
    if compression == "bfloat16":
        f.require(not ((data & BF16_INF_BITS) == BF16_INF_BITS).any(), f"{name} holds a bfloat16 Inf or NaN")
    elif compression == "ternary":
        scales = f.array(name + "_scales", np.float32, (k,))
        f.require(bool((scales >= 0).all()), f"{name}_scales holds a negative scale")
    xp = be.xp
    rows = []
    for i in range(k):
        held = xp.asarray(data[i])
        if compression == "ternary":
            _, ok = be.unpack_2bit(held, n)
            f.require(bool(ok), f"{name} row {i} holds an invalid 2-bit code or a nonzero pad")
        rows.append(EncodedRow(compression, n, held, np.float32(scales[i])))
    return rows
