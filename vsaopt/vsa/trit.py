"""Trit algebra (glossary: docs/architecture.md): the ternary hyperdimensional (VSA) model on int8 trit vectors, exact on every backend.

Hypervectors are int8 arrays of trits ``{-1, 0, +1}``, read as residues mod 3
(``-1`` is residue 2).  Binding subtracts residues, unbinding adds them back,
bundling is the elementwise majority, permutation is a cyclic shift of the last
axis.  Every result is an integer (or one float64 value rounded once to
float32), so all backends agree byte for byte; the arithmetic is written in
``spec/vsa.md``.

The real-valued MAP model (torchhd's ``MAPTensor``) lives in :mod:`vsaopt.vsa.map`.

Examples
--------
>>> import numpy as np
>>> from vsaopt.vsa import trit
>>> a = np.array([1, 0, -1, 1], np.int8)
>>> key = trit.random(1, 4, seed=2, backend="numpy")[0]
>>> trit.unbind(trit.bind(a, key, backend="numpy"), key, backend="numpy").tolist()
[1, 0, -1, 1]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._arrays import check_int, check_real, check_seed, out_array, same_shape, trit_array
from ..backend import Backend, resolve_backend
from ..errors import ConfigError, ShapeError
from ..rng import MAX_ELEMENTS, Stream

__all__ = [
    "bind",
    "unbind",
    "bundle",
    "permute",
    "dot_similarity",
    "cosine_similarity",
    "hamming_similarity",
    "random",
    "MAX_BUNDLE",
]

#: Most vectors one :func:`bundle` call sums (keeps every int32 sum exact, also for int8 MAP vectors).
MAX_BUNDLE = 2**24
_SHIFT_MIN, _SHIFT_MAX = -(2**63), 2**63 - 1


def bind(a: Any, b: Any, *, out: Any = None, backend: Backend | str | None = None) -> Any:
    """Bind two trit hypervectors: subtract their residues mod 3.

    .. math:: \\mathrm{bind}(a, b)_i = \\tau\\big((a_i - b_i) \\bmod 3\\big),
              \\quad \\tau(0) = 0,\\ \\tau(1) = +1,\\ \\tau(2) = -1

    Binding is not commutative: ``bind(b, a) == -bind(a, b)``.
    :func:`unbind` inverts it exactly.

    Parameters
    ----------
    a, b : int trit arrays (values -1, 0, +1) of the same shape
    out : int8 array of that shape, optional
        Receives the result (C-contiguous, writeable, of the backend, not
        overlapping ``a`` or ``b``): binding into a reused buffer costs no
        allocation.  A bad ``out`` raises before anything is written.

    Returns
    -------
    int8 array of that shape (``out`` when given)

    Raises
    ------
    DTypeError
        A non-integer array.
    ConfigError
        A value other than -1, 0, +1.
    ShapeError
        ``a`` and ``b`` differ in shape, or ``out`` has another shape.
    BackendError, ConfigError
        ``out`` is an array of another backend, or overlaps ``a`` or ``b``.

    Examples
    --------
    >>> import numpy as np
    >>> bind(np.array([1, 1, -1, 0], np.int8), np.array([-1, 1, 1, 1], np.int8), backend="numpy").tolist()
    [-1, 0, 1, -1]
    """
    return _bind_op(a, b, backend, "trit_bind", out)


def unbind(a: Any, b: Any, *, out: Any = None, backend: Backend | str | None = None) -> Any:
    """Unbind ``b`` from ``a``: add residues mod 3, so ``unbind(bind(x, b), b) == x``.

    .. math:: \\mathrm{unbind}(a, b)_i = \\tau\\big((a_i + b_i) \\bmod 3\\big)

    Shapes, dtypes, ``out`` and errors as :func:`bind`.

    Examples
    --------
    >>> import numpy as np
    >>> unbind(np.array([-1, 0, 1, -1], np.int8), np.array([-1, 1, 1, 1], np.int8), backend="numpy").tolist()
    [1, 1, -1, 0]
    """
    return _bind_op(a, b, backend, "trit_unbind", out)


def _trits(x: Any, name: str, be: Any) -> Any:
    """``x`` validated as trits, keeping its shape (a 0-d input stays 0-d)."""
    t = trit_array(x, name, be)
    return t.reshape(np.shape(x))


def _bind_op(a: Any, b: Any, backend: Any, kernel: str, out: Any) -> Any:
    be = resolve_backend(backend, a, b)
    ta = _trits(a, "a", be)
    tb = _trits(b, "b", be)
    same_shape(ta, tb, "a, b")
    if out is None:
        return getattr(be, kernel)(ta.reshape(-1), tb.reshape(-1)).reshape(ta.shape)
    out_array(out, "out", be, np.int8, ta.shape, ta, tb)
    getattr(be, kernel)(ta.reshape(-1), tb.reshape(-1), out.reshape(-1))
    return out


def bundle(vectors: Any, *, backend: Backend | str | None = None) -> Any:
    """Bundle ``k`` trit hypervectors: the elementwise majority (sign of the sum, a tie gives 0).

    .. math:: \\mathrm{bundle}(v)_i = \\operatorname{sign}\\Big(\\sum_{r=0}^{k-1} v_{r,i}\\Big)

    The sum is exact (int32), so the result does not depend on the order of the vectors.

    Parameters
    ----------
    vectors : int trit array of shape ``(k, d, ...)``, ``1 <= k <= MAX_BUNDLE``
        A stack of ``k`` vectors along axis 0.

    Returns
    -------
    int8 array of shape ``vectors.shape[1:]``

    Raises
    ------
    ShapeError
        ``vectors`` has fewer than 2 dimensions (a lone vector), or ``k`` is 0
        or above :data:`MAX_BUNDLE`.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array([[1, 1, -1, 0], [1, -1, -1, 0], [0, 1, 1, 1]], np.int8)
    >>> bundle(v, backend="numpy").tolist()
    [1, 1, -1, 1]
    """
    be = resolve_backend(backend, vectors)
    v = _trits(vectors, "vectors", be)
    v2 = _stack_rows(v, "vectors")
    total = be.bundle_sum(v2)
    return be.xp.sign(total).astype(be.xp.int8).reshape(v.shape[1:])


def _stack_rows(v: Any, name: str) -> Any:
    """A stack ``(k, d, ...)`` as ``(k, n)``, checking ``1 <= k <= MAX_BUNDLE``."""
    if v.ndim < 2:
        # a lone vector (d,) is not a stack of d scalars: bundle(x[None]) bundles one vector
        raise ShapeError(f"{name}: expected a stack of vectors of shape (k, d, ...) with k >= 1, got a {v.ndim}-d array")
    k = v.shape[0]
    if not 1 <= k <= MAX_BUNDLE:
        raise ShapeError(f"{name}: expected 1 to {MAX_BUNDLE} vectors along axis 0, got {k}")
    return v.reshape(k, int(np.prod(v.shape[1:], dtype=np.int64)))


def permute(x: Any, shifts: int = 1, *, backend: Backend | str | None = None) -> Any:
    """Cyclically shift the last axis by ``shifts`` positions (like ``numpy.roll``).

    .. math:: \\mathrm{permute}(x, s)_{\\ldots, i} = x_{\\ldots, (i - s) \\bmod D}

    Parameters
    ----------
    x : int trit array, at least 1-d, last axis of length ``D``
    shifts : int, any sign; ``permute(permute(x, s), -s) == x``

    Returns
    -------
    int8 array of ``x``'s shape

    Examples
    --------
    >>> import numpy as np
    >>> permute(np.array([1, 0, -1, 0], np.int8), 1, backend="numpy").tolist()
    [0, 1, 0, -1]
    """
    be = resolve_backend(backend, x)
    return _roll_last(_trits(x, "x", be), shifts, be)


def _roll_last(x: Any, shifts: Any, be: Any) -> Any:
    """Validated ``x`` rolled by a validated ``shifts`` on its last axis (a fresh C-contiguous array)."""
    if x.ndim < 1:
        raise ShapeError("x: expected an array of at least 1 dimension, got a 0-d array")
    s = check_int(shifts, "shifts", _SHIFT_MIN, _SHIFT_MAX)
    d = x.shape[-1]
    if d == 0:
        return x.copy()
    return be.xp.ascontiguousarray(be.xp.roll(x, s % d, axis=-1))


def _query_rows(a: Any, b: Any) -> tuple[Any, Any, tuple[int, ...]]:
    """``a`` ``(D,)|(N, D)`` and ``b`` ``(D,)|(M, D)`` as 2-d row blocks, and the result shape."""
    for arr, name in ((a, "a"), (b, "b")):
        if arr.ndim not in (1, 2):
            raise ShapeError(f"{name}: expected shape (D,) or (N, D), got {tuple(arr.shape)}")
    if a.shape[-1] != b.shape[-1]:
        raise ShapeError(f"a, b: last dimensions must match, got {tuple(a.shape)} and {tuple(b.shape)}")
    out_shape = tuple(a.shape[:-1]) + tuple(b.shape[:-1])
    d = a.shape[-1]
    return (a if a.ndim == 2 else a.reshape(1, d)), (b if b.ndim == 2 else b.reshape(1, d)), out_shape


def _trit_pair(a: Any, b: Any, backend: Any) -> tuple[Any, Any, Any, tuple[int, ...]]:
    be = resolve_backend(backend, a, b)
    ta, tb, out_shape = _query_rows(_trits(a, "a", be), _trits(b, "b", be))
    return be, ta, tb, out_shape


def dot_similarity(a: Any, b: Any, *, backend: Backend | str | None = None) -> Any:
    """Dot product of trit hypervectors (exact, int64).

    .. math:: \\mathrm{dot}(a, b) = \\sum_{i} a_i b_i

    Parameters
    ----------
    a : int trit array, ``(D,)`` or ``(N, D)``
    b : int trit array, ``(D,)`` or ``(M, D)``

    Returns
    -------
    int64 array of shape ``()``, ``(M,)``, ``(N,)`` or ``(N, M)`` (``a``'s leading axis first).

    Raises
    ------
    ShapeError
        An input that is not 1-d or 2-d, or last dimensions that differ.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([1, -1, 0, 1], np.int8)
    >>> int(dot_similarity(a, a, backend="numpy"))
    3
    >>> dot_similarity(a, np.array([[1, 1, 1, 1], [0, 0, 0, 0]], np.int8), backend="numpy").tolist()
    [1, 0]
    """
    be, ta, tb, out_shape = _trit_pair(a, b, backend)
    return be.dot(ta, tb).reshape(out_shape)


def cosine_similarity(a: Any, b: Any, *, backend: Backend | str | None = None) -> Any:
    """Cosine similarity of trit hypervectors, computed in float64 and rounded once to float32.

    .. math:: \\cos(a, b) = \\frac{\\sum_i a_i b_i}{\\sqrt{\\mathrm{nnz}(a)\\,\\mathrm{nnz}(b)}}

    where ``nnz`` counts nonzero trits (``= sum a_i^2``); the result is 0 where
    either vector is all zeros.  The product ``nnz(a) * nnz(b)`` is formed in
    float64, its square root and the division are correctly rounded float64
    operations, and the quotient is rounded to float32.  A nonzero vector has
    cosine exactly 1 with itself.

    Shapes as :func:`dot_similarity`; returns float32.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([1, -1, 0, 1], np.int8)
    >>> float(cosine_similarity(a, np.array([1, -1, 1, 1], np.int8), backend="numpy"))
    0.8660253882408142
    >>> float(cosine_similarity(a, np.zeros(4, np.int8), backend="numpy"))
    0.0
    """
    be, ta, tb, out_shape = _trit_pair(a, b, backend)
    xp = be.xp
    dots = be.dot(ta, tb).astype(xp.float64)
    nnz_a = be.row_sumsq(ta).astype(xp.float64)
    nnz_b = be.row_sumsq(tb).astype(xp.float64)
    p = nnz_a[:, None] * nnz_b[None, :]
    nonzero = p > 0
    cos = xp.where(nonzero, dots / xp.sqrt(xp.where(nonzero, p, 1.0)), 0.0)
    return cos.astype(xp.float32).reshape(out_shape)


def hamming_similarity(a: Any, b: Any, *, backend: Backend | str | None = None) -> Any:
    """Number of positions where two trit hypervectors agree (int64).

    .. math:: \\mathrm{hamming}(a, b) = \\#\\{\\, i : a_i = b_i \\,\\}

    Shapes as :func:`dot_similarity`.

    Examples
    --------
    >>> import numpy as np
    >>> int(hamming_similarity(np.array([1, 0, -1], np.int8), np.array([1, 1, -1], np.int8), backend="numpy"))
    2
    """
    be, ta, tb, out_shape = _trit_pair(a, b, backend)
    return be.equal_count(ta, tb).reshape(out_shape)


def random(
    n: int, dim: int, seed: int, sparsity: float = 1 / 3, *, backend: Backend | str | None = None
) -> Any:
    """``n`` seeded random trit hypervectors of dimension ``dim``.

    Element ``e`` (flat C-order index into the ``(n, dim)`` result) takes the
    Philox word ``w`` of element ``e`` with ``stream = Stream.VSA_RANDOM``,
    ``step = 0``, ``tensor_index = 0`` (:func:`vsaopt.rng.random_bits`) and

    .. math:: u = \\lfloor w / 2^8 \\rfloor \\cdot 2^{-24}, \\quad
              t = \\begin{cases} 0 & u < \\mathrm{f32}(\\text{sparsity}) \\\\
                                 +1 & w \\bmod 2 = 0 \\\\ -1 & \\text{otherwise} \\end{cases}

    so each trit is 0 with probability about ``sparsity`` and otherwise
    ``+1`` or ``-1`` with equal probability.  Row ``r`` of ``random(n, dim, s)``
    is not row ``r`` of ``random(n', dim', s)`` unless ``dim == dim'``.

    Parameters
    ----------
    n, dim : int >= 0, ``n * dim <= 2**34``
    seed : int in ``[0, 2**64)``
    sparsity : float in ``[0, 1]``, fraction of zeros (default 1/3: uniform trits)

    Returns
    -------
    int8 array ``(n, dim)`` on ``backend`` (default: the fastest CPU backend)

    Raises
    ------
    ConfigError
        Negative ``n`` or ``dim``, ``n * dim`` too large, ``sparsity`` or ``seed`` out of range.
    DTypeError
        ``n``, ``dim`` or ``seed`` not an integer, ``sparsity`` not a real number.

    Examples
    --------
    >>> h = random(2, 8, seed=42, backend="numpy")
    >>> h.shape, h.dtype
    ((2, 8), dtype('int8'))
    >>> bool((random(2, 8, seed=42, backend="numpy") == h).all())
    True
    """
    n = check_int(n, "n", 0, MAX_ELEMENTS)
    dim = check_int(dim, "dim", 0, MAX_ELEMENTS)
    if n * dim > MAX_ELEMENTS:
        raise ConfigError(f"n, dim: at most {MAX_ELEMENTS} elements in all, got {n} x {dim}")
    seed = check_seed(seed)
    s = np.float32(check_real(sparsity, "sparsity", 0.0, 1.0))
    be = resolve_backend(backend)
    xp = be.xp
    w = be.philox_bits(n * dim, seed, int(Stream.VSA_RANDOM), 0, 0)
    u = (w >> xp.uint32(8)).astype(xp.float32) * xp.float32(2.0**-24)
    signs = xp.where((w & xp.uint32(1)) == 0, xp.int8(1), xp.int8(-1))
    return xp.where(u < s, xp.int8(0), signs).astype(xp.int8).reshape(n, dim)

