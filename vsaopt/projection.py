"""Matrix-free seeded Johnson-Lindenstrauss projection: a subsampled randomized Hadamard transform.

A vector of ``n`` elements is zero-padded to ``N`` (:func:`padded_length`),
multiplied by random signs ``D`` (Philox), transformed blockwise by the
orthonormal Walsh-Hadamard matrix ``H`` (blocks of powers of two, at most
:data:`MAX_BLOCK`), and sampled at ``m = min(d, N)`` positions, one uniformly
chosen in each of ``m`` contiguous strata of ``[0, N)``:

.. math:: y = A\\,S\\,H\\,D\\,x, \\qquad x' = D\\,H\\,S^\\top A\\,y

where ``S`` picks the sampled coordinates and ``A`` holds one weight per
sample.  With ``gain="unbiased"`` the weight is ``sqrt(size of the stratum)``
so that ``E[S^T A^2 S] = I`` and the round trip ``x'`` is an unbiased estimate
of ``x``; with ``gain="unit"`` the weight is 1 and ``x' = R^T (HD)^T S^T S (HD) R x``
(``R`` pads, ``R^T`` truncates) is the orthogonal projection of ``x`` onto an
``m``-dimensional random subspace when ``n = N``, and in general a contraction:
``||x - x'||^2 <= ||x||^2 - ||y||^2``.  Nothing of size ``n x d``
is ever stored: time is ``O(N log MAX_BLOCK)``, memory ``O(N)``.

The exact arithmetic (bit-identical on every backend) is in
``spec/compressor.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .rng import Stream
from ._arrays import check_int, check_seed, check_u32, float32_array
from .backend import Backend, resolve_backend
from .errors import ConfigError, ShapeError

__all__ = [
    "MAX_BLOCK",
    "MIN_BLOCK",
    "MAX_LENGTH",
    "STREAM_SIGNS",
    "STREAM_SAMPLE",
    "padded_length",
    "hadamard_blocks",
    "ProjectionLayout",
    "SRHTProjection",
]

#: Largest Walsh-Hadamard block (2**16 float32 = 256 KiB, cache resident).
MAX_BLOCK = 1 << 16
#: Lengths above this are padded to a multiple of it (so no block is smaller).
MIN_BLOCK = 64
#: Longest vector a projection accepts (strata arithmetic stays inside 64 bits).
MAX_LENGTH = (1 << 32) - MAX_BLOCK
#: Philox stream of the random signs ``D`` ("PRJS").
STREAM_SIGNS = int(Stream.PROJ_SIGNS)
#: Philox stream of the sampled positions ``S`` ("PRJP").
STREAM_SAMPLE = int(Stream.PROJ_SAMPLE)


def padded_length(n: int) -> int:
    """``N``: ``n`` rounded up to a power of two when ``n <= 64``, else to a multiple of 64.

    Examples
    --------
    >>> [padded_length(n) for n in (0, 1, 3, 64, 65, 2359296)]
    [0, 1, 4, 64, 128, 2359296]
    """
    n = check_int(n, "n", 0, MAX_LENGTH)
    if n <= MIN_BLOCK:
        return 0 if n == 0 else 1 << (n - 1).bit_length()
    return -(-n // MIN_BLOCK) * MIN_BLOCK


def hadamard_blocks(nprime: int) -> tuple[tuple[int, int, int], ...]:
    """Segments ``(offset, block, count)`` of the blockwise transform of a padded length ``N``.

    ``N = q * MAX_BLOCK + r``: ``q`` blocks of :data:`MAX_BLOCK`, then one block
    for each set bit of ``r``, largest first.

    Examples
    --------
    >>> hadamard_blocks(65536 * 2 + 192)
    ((0, 65536, 2), (131072, 128, 1), (131200, 64, 1))
    """
    segs = []
    q, r = divmod(nprime, MAX_BLOCK)
    off = 0
    if q:
        segs.append((0, MAX_BLOCK, q))
        off = q * MAX_BLOCK
    for bit in range(r.bit_length() - 1, -1, -1):
        if r >> bit & 1:
            segs.append((off, 1 << bit, 1))
            off += 1 << bit
    return tuple(segs)


def _f32_sqrt(v: int) -> float:
    return float(np.float32(math.sqrt(v)))


@dataclass(frozen=True)
class ProjectionLayout:
    """Sizes and weights of one projection (host scalars; see :class:`SRHTProjection`)."""

    #: Input length.
    n: int
    #: Padded length ``N``.
    nprime: int
    #: Output length (hypervector dimension).
    d: int
    #: Sampled coordinates ``min(d, N)``; outputs ``m..d-1`` are zero.
    m: int
    #: ``(offset, block, count)`` segments of the blockwise transform.
    segments: tuple[tuple[int, int, int], ...]
    #: Weight of samples from strata of ``N // m`` and ``N // m + 1`` coordinates (f32 values).
    a_lo: float
    a_hi: float

    @classmethod
    def make(cls, n: int, d: int, gain: str = "unbiased") -> ProjectionLayout:
        """Layout of an ``n -> d`` projection with the given ``gain`` (``"unbiased"`` or ``"unit"``).

        Examples
        --------
        >>> lay = ProjectionLayout.make(1000, 100)
        >>> lay.nprime, lay.m, lay.segments, round(lay.a_lo ** 2, 4), round(lay.a_hi ** 2, 4)
        (1024, 100, ((0, 1024, 1),), 10.0, 11.0)
        """
        n = check_int(n, "n", 0, MAX_LENGTH)
        d = check_int(d, "d", 1, 2**31 - 1)
        if gain not in ("unbiased", "unit"):
            raise ConfigError(f"gain: expected 'unbiased' or 'unit', got {gain!r}")
        nprime = padded_length(n)
        m = min(d, nprime)
        if gain == "unit" or m == 0:
            a_lo = a_hi = 1.0
        else:
            q = nprime // m
            a_lo, a_hi = _f32_sqrt(q), _f32_sqrt(q + 1)
        return cls(n, nprime, d, m, hadamard_blocks(nprime), a_lo, a_hi)


def _fwht_segments(be: Any, x: Any, segments: tuple[tuple[int, int, int], ...]) -> Any:
    out = be.xp.empty_like(x)
    for off, block, count in segments:
        scale = float(np.float32(1.0 / math.sqrt(block)))
        out[off : off + block * count] = be.fwht(x[off : off + block * count], block, scale)
    return out


def forward(be: Any, x: Any, layout: ProjectionLayout, seed: int, step: int, tensor: int) -> Any:
    """``y = A S H D x`` of a validated flat float32 ``x`` (length ``layout.n``); float32 ``(d,)``."""
    xp = be.xp
    buf = xp.zeros(layout.nprime, dtype=xp.float32)
    buf[: layout.n] = x
    signed = be.random_signs(buf, seed, STREAM_SIGNS, step, tensor)
    z = _fwht_segments(be, signed, layout.segments)
    return be.srht_gather(z, layout.d, layout.m, layout.a_lo, layout.a_hi, seed, STREAM_SAMPLE, step, tensor)


def transpose(be: Any, y: Any, layout: ProjectionLayout, seed: int, step: int, tensor: int) -> Any:
    """``x' = D H S^T A y`` of a float32 ``y`` (length ``layout.d``), truncated to ``n``; float32 ``(n,)``."""
    v = be.srht_scatter(y, layout.nprime, layout.m, layout.a_lo, layout.a_hi, seed, STREAM_SAMPLE, step, tensor)
    z = _fwht_segments(be, v, layout.segments)
    signed = be.random_signs(z, seed, STREAM_SIGNS, step, tensor)
    return be.xp.ascontiguousarray(signed[: layout.n])


class SRHTProjection:
    """A seeded, matrix-free ``n -> d`` Johnson-Lindenstrauss map and its transpose.

    Parameters
    ----------
    n : int
        Input length (at most :data:`MAX_LENGTH`).
    d : int >= 1
        Output length.  When ``d >= N`` (:func:`padded_length`) the map is an
        isometry and the round trip is exact up to float32 rounding.
    seed : int in [0, 2**64)
        Philox key of the signs and the sampled positions.
    gain : {"unbiased", "unit"}
        ``"unbiased"``: ``E[transpose(forward(x))] = x`` over the seed.
        ``"unit"``: the round trip is a contraction (an orthogonal projection when ``n = N``).
    tensor_index : int in [0, 2**32)
        Counter word distinguishing projections of one seed.
    backend : backend, name or None

    Notes
    -----
    The cosine between ``x`` and ``transpose(forward(x))`` is about
    ``sqrt(m / N)`` (exactly ``||S H D x|| / ||x||`` with unit gain), against
    ``1 / sqrt(1 + n / d)`` for a dense Gaussian projection.  Values above about
    ``3e38 / 256`` may overflow in the transform; the compressor prescales its
    inputs by a power of two so that never happens there.

    Examples
    --------
    >>> import numpy as np
    >>> p = SRHTProjection(5, 8, seed=3, backend="numpy")
    >>> x = np.array([1.0, -2.0, 0.5, 0.0, 4.0], np.float32)
    >>> y = p.forward(x)
    >>> y.shape, bool(np.allclose(p.transpose(y), x, atol=1e-6))
    ((8,), True)
    """

    def __init__(
        self,
        n: int,
        d: int,
        seed: int,
        *,
        gain: str = "unbiased",
        tensor_index: int = 0,
        backend: Backend | str | None = None,
    ) -> None:
        self.layout = ProjectionLayout.make(n, d, gain)
        self.seed = check_seed(seed)
        self.gain = gain
        self.tensor_index = check_u32(tensor_index, "tensor_index")
        self._be = resolve_backend(backend)

    @property
    def n(self) -> int:
        """Input length."""
        return self.layout.n

    @property
    def d(self) -> int:
        """Output length."""
        return self.layout.d

    def forward(self, x: Any, step: int = 0) -> Any:
        """Project ``x`` (any shape with ``n`` elements, float) to float32 ``(d,)``; ``step`` selects a fresh draw."""
        be = resolve_backend(self._be, x)
        flat = float32_array(x, "x", be).reshape(-1)
        if flat.shape[0] != self.layout.n:
            raise ShapeError(f"x: expected {self.layout.n} elements, got {flat.shape[0]}")
        return forward(be, flat, self.layout, self.seed, check_u32(step, "step"), self.tensor_index)

    def transpose(self, y: Any, step: int = 0) -> Any:
        """Apply the transpose to float32 ``y`` of length ``d``: float32 ``(n,)``."""
        be = resolve_backend(self._be, y)
        flat = float32_array(y, "y", be).reshape(-1)
        if flat.shape[0] != self.layout.d:
            raise ShapeError(f"y: expected {self.layout.d} elements, got {flat.shape[0]}")
        return transpose(be, flat, self.layout, self.seed, check_u32(step, "step"), self.tensor_index)

    def __repr__(self) -> str:
        return f"SRHTProjection(n={self.n}, d={self.d}, gain={self.gain!r}, seed={self.seed})"
