"""The MAP model (Multiply-Add-Permute, torchhd's ``MAPTensor``) on float32 or int8 vectors.

Hypervectors are float32 arrays (float16 and float64 inputs are rounded to
float32) or int8 bipolar arrays (values ``-1``/``+1``; other int8 values are
accepted and follow the int8 arithmetic below).  Any other dtype raises
:class:`~vsaopt.errors.DTypeError`; two-argument operations need both arguments
in the same family (float or int8).

Float results are single IEEE operations (bind, bundle) or float64 sums in the
spec's order rounded once to float32 (similarities), so every backend gives the
same bytes.  The arithmetic is written in ``spec/vsa.md``.

Examples
--------
>>> import numpy as np
>>> from vsaopt.vsa import map as hd
>>> a = np.array([1, -1, 1, 1], np.float32)
>>> b = np.array([-1, -1, 1, -1], np.float32)
>>> hd.unbind(hd.bind(a, b, backend="numpy"), b, backend="numpy").tolist()
[1.0, -1.0, 1.0, 1.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._arrays import NOT_FINITE_AS_FLOAT32, _as_backend_array, float32_array, integer_array, same_shape
from ..backend import Backend, resolve_backend
from ..errors import DTypeError, NonFiniteError
from .trit import _query_rows, _roll_last, _stack_rows

__all__ = [
    "bind",
    "unbind",
    "bundle",
    "permute",
    "dot_similarity",
    "cosine_similarity",
    "hamming_similarity",
    "hard_quantize",
    "EPS",
]

#: Lower bound of the norm product in :func:`cosine_similarity` (torchhd's ``eps``), as float64.
EPS = 1e-8


def _map_array(x: Any, name: str, be: Any) -> Any:
    """``x`` as C-contiguous float32 (from any float dtype) or int8; other dtypes raise DTypeError."""
    arr = _as_backend_array(x, name, be)
    shape = tuple(arr.shape)  # the converters return 0-d inputs as 1-d; keep the caller's shape
    if arr.dtype.kind == "f":
        return float32_array(arr, name, be).reshape(shape)
    if arr.dtype == np.int8:
        return integer_array(arr, name, be, np.int8).reshape(shape)
    raise DTypeError(f"{name}: expected a float (float16/32/64) or int8 bipolar array, got dtype {arr.dtype}")


def _map_pair(a: Any, b: Any, be: Any) -> tuple[Any, Any]:
    ma, mb = _map_array(a, "a", be), _map_array(b, "b", be)
    if ma.dtype != mb.dtype:
        raise DTypeError(f"a, b: both float or both int8 expected, got {ma.dtype} and {mb.dtype}")
    return ma, mb


def _check_finite(x: Any, name: str, be: Any) -> None:
    if x.dtype.kind == "f" and x.size and not bool(be.xp.isfinite(x).all()):
        raise NonFiniteError(f"{name}: {NOT_FINITE_AS_FLOAT32}")


def bind(a: Any, b: Any, *, backend: Backend | str | None = None) -> Any:
    """Bind two MAP hypervectors: the elementwise product.

    .. math:: \\mathrm{bind}(a, b)_i = a_i \\, b_i

    float32: one correctly rounded IEEE multiplication per element (finite
    inputs may overflow to +-Inf).  int8: the product wraps modulo 2**8 like
    numpy's int8 arithmetic (``-128 * -1 == -128``); for bipolar inputs it
    never wraps.

    Parameters
    ----------
    a, b : float or int8 arrays of the same shape

    Returns
    -------
    float32 or int8 array of that shape

    Raises
    ------
    DTypeError
        A dtype other than float or int8, or one float and one int8 argument.
    ShapeError
        ``a`` and ``b`` differ in shape.
    NonFiniteError
        A float operand holding NaN or Inf (checked after the shapes), as in the similarities.

    Examples
    --------
    >>> import numpy as np
    >>> bind(np.array([1, -1, 1], np.int8), np.array([-1, -1, 1], np.int8), backend="numpy").tolist()
    [-1, 1, 1]
    """
    be = resolve_backend(backend, a, b)
    ma, mb = _map_pair(a, b, be)
    same_shape(ma, mb, "a, b")
    _check_finite(ma, "a", be)
    _check_finite(mb, "b", be)
    with np.errstate(over="ignore"):  # float32 overflow to +-Inf is the IEEE result, not an error
        return be.xp.multiply(ma.reshape(-1), mb.reshape(-1)).reshape(ma.shape)


def unbind(a: Any, b: Any, *, backend: Backend | str | None = None) -> Any:
    """Unbind ``b`` from ``a``; in MAP this is :func:`bind` again (exact inverse for bipolar ``b``).

    .. math:: \\mathrm{unbind}(a, b)_i = a_i \\, b_i

    Examples
    --------
    >>> import numpy as np
    >>> unbind(np.array([-0.5, 2.0], np.float32), np.array([-1.0, 1.0], np.float32), backend="numpy").tolist()
    [0.5, 2.0]
    """
    return bind(a, b, backend=backend)


def bundle(vectors: Any, *, backend: Backend | str | None = None) -> Any:
    """Bundle ``k`` MAP hypervectors: their sum over axis 0.

    .. math:: \\mathrm{bundle}(v)_i = \\big(\\cdots((v_{0,i} + v_{1,i}) + v_{2,i}) + \\cdots\\big) + v_{k-1,i}

    float32: accumulated in row order, one float32 rounding per addition,
    starting from ``v_0`` (so ``bundle`` of one vector is that vector, -0.0
    included).  int8: summed exactly into int32 (no wrapping).

    Parameters
    ----------
    vectors : float or int8 array of shape ``(k, d, ...)``, ``1 <= k <= MAX_BUNDLE``
        A stack of ``k`` vectors along axis 0.

    Returns
    -------
    float32 or int32 array of shape ``vectors.shape[1:]``

    Raises
    ------
    ShapeError
        Fewer than 2 dimensions (a lone vector), or ``k`` outside ``[1, MAX_BUNDLE]``.
    NonFiniteError
        A float stack holding NaN or Inf.

    Examples
    --------
    >>> import numpy as np
    >>> bundle(np.array([[1e8, 1.0], [1.0, 1.0], [-1e8, 1.0]], np.float32), backend="numpy").tolist()
    [0.0, 3.0]
    >>> bundle(np.array([[100, -1], [100, -1]], np.int8), backend="numpy").tolist()
    [200, -2]
    """
    be = resolve_backend(backend, vectors)
    v = _map_array(vectors, "vectors", be)
    rows = _stack_rows(v, "vectors")
    _check_finite(rows, "vectors", be)
    return be.bundle_sum(rows).reshape(v.shape[1:])


def permute(x: Any, shifts: int = 1, *, backend: Backend | str | None = None) -> Any:
    """Cyclically shift the last axis by ``shifts`` positions (like ``numpy.roll``).

    .. math:: \\mathrm{permute}(x, s)_{\\ldots, i} = x_{\\ldots, (i - s) \\bmod D}

    Parameters
    ----------
    x : float or int8 array, at least 1-d
    shifts : int, any sign

    Returns
    -------
    float32 or int8 array of ``x``'s shape

    Examples
    --------
    >>> import numpy as np
    >>> permute(np.array([1.0, 2.0, 3.0], np.float32), -1, backend="numpy").tolist()
    [2.0, 3.0, 1.0]
    """
    be = resolve_backend(backend, x)
    return _roll_last(_map_array(x, "x", be), shifts, be)


def _similarity_pair(a: Any, b: Any, backend: Any) -> tuple[Any, Any, Any, tuple[int, ...]]:
    be = resolve_backend(backend, a, b)
    ma, mb = _map_pair(a, b, be)
    ra, rb, out_shape = _query_rows(ma, mb)
    _check_finite(ra, "a", be)
    _check_finite(rb, "b", be)
    return be, ra, rb, out_shape


def dot_similarity(a: Any, b: Any, *, backend: Backend | str | None = None) -> Any:
    """Dot product of MAP hypervectors.

    .. math:: \\mathrm{dot}(a, b) = \\mathrm{f32}\\Big(\\textstyle\\sum^{\\mathrm{spec}}_i
              \\mathrm{f64}(a_i)\\,\\mathrm{f64}(b_i)\\Big)

    float32: each product is formed exactly in float64, the products are summed
    in the spec's float64 order (32 lanes per block of 8192, fixed folds), and
    the sum is rounded once to float32 (it may round to +-Inf when it exceeds
    the float32 range).  int8: the exact int64 sum.

    Parameters
    ----------
    a : float or int8 array, ``(D,)`` or ``(N, D)``
    b : same family, ``(D,)`` or ``(M, D)``

    Returns
    -------
    float32 or int64 array of shape ``()``, ``(M,)``, ``(N,)`` or ``(N, M)``

    Raises
    ------
    NonFiniteError
        A float input holds NaN or Inf.
    ShapeError
        An input that is not 1-d or 2-d, or last dimensions that differ.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[0.5, -1.0, 2.0], [1.0, 1.0, 1.0]], np.float32)
    >>> dot_similarity(a, np.array([2.0, 1.0, 0.25], np.float32), backend="numpy").tolist()
    [0.5, 3.25]
    """
    be, ra, rb, out_shape = _similarity_pair(a, b, backend)
    dots = be.dot(ra, rb)
    if ra.dtype == np.int8:
        return dots.reshape(out_shape)
    with np.errstate(over="ignore"):  # a sum beyond the float32 range rounds to +-Inf
        return dots.astype(be.xp.float32).reshape(out_shape)


def cosine_similarity(a: Any, b: Any, *, backend: Backend | str | None = None) -> Any:
    """Cosine similarity of MAP hypervectors, in float64, rounded once to float32.

    .. math:: \\cos(a, b) = \\mathrm{f32}\\Big(\\frac{\\mathrm{dot}_{64}(a, b)}
              {\\max\\big(\\sqrt{\\|a\\|^2_{64}}\\,\\sqrt{\\|b\\|^2_{64}},\\ 10^{-8}\\big)}\\Big)

    ``dot_64`` and the squared norms ``||x||^2_64`` are the float64 spec-order
    sums of exact float64 products (exact int64 for int8, then converted to
    float64); square roots, the norm product and the division are correctly
    rounded float64 operations; only the quotient is rounded to float32.  As in
    torchhd the norm product is clamped below at ``1e-8``, so an all-zero
    vector gives 0.  No clamping to ``[-1, 1]``.

    Shapes and errors as :func:`dot_similarity`; returns float32.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([3.0, 4.0], np.float32)
    >>> cosine_similarity(a, np.array([[4.0, 3.0], [3.0, 4.0], [0.0, 0.0]], np.float32), backend="numpy").tolist()
    [0.9599999785423279, 1.0, 0.0]
    """
    be, ra, rb, out_shape = _similarity_pair(a, b, backend)
    xp = be.xp
    dots = be.dot(ra, rb).astype(xp.float64)
    norm_a = xp.sqrt(be.row_sumsq(ra).astype(xp.float64))
    norm_b = xp.sqrt(be.row_sumsq(rb).astype(xp.float64))
    magnitude = xp.maximum(norm_a[:, None] * norm_b[None, :], EPS)
    return (dots / magnitude).astype(xp.float32).reshape(out_shape)


def hamming_similarity(a: Any, b: Any, *, backend: Backend | str | None = None) -> Any:
    """Number of positions where two MAP hypervectors are equal (int64).

    .. math:: \\mathrm{hamming}(a, b) = \\#\\{\\, i : a_i = b_i \\,\\}

    Float equality is IEEE ``==`` (``-0.0 == +0.0``).  Shapes and errors as
    :func:`dot_similarity`.

    Examples
    --------
    >>> import numpy as np
    >>> int(hamming_similarity(np.array([1, -1, 1], np.int8), np.array([1, 1, 1], np.int8), backend="numpy"))
    2
    """
    be, ra, rb, out_shape = _similarity_pair(a, b, backend)
    return be.equal_count(ra, rb).reshape(out_shape)


def hard_quantize(x: Any, *, backend: Backend | str | None = None) -> Any:
    """Quantize to bipolar: ``+1`` where ``x > 0``, else ``-1``, in ``x``'s (converted) dtype.

    .. math:: q(x)_i = \\begin{cases} +1 & x_i > 0 \\\\ -1 & \\text{otherwise} \\end{cases}

    Parameters
    ----------
    x : float or int8 array, any shape

    Returns
    -------
    float32 array (float inputs) or int8 array (int8 inputs) of ``x``'s shape; zeros map to -1.

    Raises
    ------
    NonFiniteError
        A float input holds NaN or Inf.

    Examples
    --------
    >>> import numpy as np
    >>> hard_quantize(np.array([0.3, 0.0, -2.0], np.float32), backend="numpy").tolist()
    [1.0, -1.0, -1.0]
    """
    be = resolve_backend(backend, x)
    xp = be.xp
    m = _map_array(x, "x", be)
    _check_finite(m, "x", be)
    one = xp.ones((), dtype=m.dtype)
    return xp.where(m > 0, one, -one).astype(m.dtype)
