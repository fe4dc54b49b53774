"""Philox4x32 block function and the spec's per-element counter layout (reference)."""

from __future__ import annotations

import numpy as np

# Random123 constants: round multipliers and the Weyl key increments (golden ratio, sqrt(3)-1).
PHILOX_M0 = np.uint64(0xD2511F53)
PHILOX_M1 = np.uint64(0xCD9E8D57)
PHILOX_W0 = np.uint32(0x9E3779B9)
PHILOX_W1 = np.uint32(0xBB67AE85)
_LO32 = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)


def philox4x32(counter: np.ndarray, key: np.ndarray, rounds: int) -> np.ndarray:
    """Philox4x32-``rounds`` of uint32 ``(n, 4)`` counters under uint32 ``(n, 2)`` keys."""
    c0, c1, c2, c3 = (counter[:, i].astype(np.uint64) for i in range(4))
    k0 = key[:, 0].astype(np.uint64)
    k1 = key[:, 1].astype(np.uint64)
    for r in range(rounds):
        if r:
            k0 = (k0 + np.uint64(PHILOX_W0)) & _LO32
            k1 = (k1 + np.uint64(PHILOX_W1)) & _LO32
        p0 = PHILOX_M0 * c0  # exact: both factors < 2**32
        p1 = PHILOX_M1 * c2
        c0, c1, c2, c3 = (p1 >> _SHIFT) ^ c1 ^ k0, p1 & _LO32, (p0 >> _SHIFT) ^ c3 ^ k1, p0 & _LO32
    return np.stack([c0, c1, c2, c3], axis=1).astype(np.uint32)


def element_counters(n: int, seed: int, stream: int, step: int, tensor: int) -> tuple[np.ndarray, np.ndarray]:
    """Counters ``(i // 4, tensor, step, stream)`` and key ``(seed lo, seed hi)`` of each 4-element block."""
    blocks = (n + 3) // 4
    counter = np.empty((blocks, 4), dtype=np.uint32)
    counter[:, 0] = np.arange(blocks, dtype=np.uint32)
    counter[:, 1] = tensor
    counter[:, 2] = step
    counter[:, 3] = stream
    key = np.empty((blocks, 2), dtype=np.uint32)
    key[:, 0] = seed & 0xFFFFFFFF
    key[:, 1] = seed >> 32
    return counter, key


def philox_bits(n: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
    """Word ``i % 4`` of block ``i // 4`` for each element ``i < n``."""
    counter, key = element_counters(n, seed, stream, step, tensor)
    return philox4x32(counter, key, 10).reshape(-1)[:n].copy()


def uniform_f32(n: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
    """Top 24 bits of each element's word times 2**-24, as float32 in [0, 1)."""
    top = (philox_bits(n, seed, stream, step, tensor) >> np.uint32(8)).astype(np.float32)
    return top * np.float32(2.0**-24)


KERNELS = {"philox4x32": philox4x32, "philox_bits": philox_bits, "uniform_f32": uniform_f32}
