"""Hyperdimensional (VSA) algebra: the trit model's vocabulary, re-exported from :mod:`vsaopt.vsa.trit`, and the MAP model.

:mod:`vsaopt.vsa.trit` holds the ternary model (int8 trit vectors, residues
mod 3); its functions are importable from here (``vsaopt.vsa.bind`` and so
on).  The real-valued MAP model (torchhd's ``MAPTensor``) is
:mod:`vsaopt.vsa.map`.  The arithmetic of both is written in ``spec/vsa.md``.

Examples
--------
>>> from vsaopt import vsa
>>> a = vsa.random(1, 12, seed=3, backend="numpy")[0]
>>> b = vsa.random(1, 12, seed=4, backend="numpy")[0]
>>> bool((vsa.unbind(vsa.bind(a, b, backend="numpy"), b, backend="numpy") == a).all())
True
"""

from . import map, trit
from .trit import (
    MAX_BUNDLE,
    bind,
    bundle,
    cosine_similarity,
    dot_similarity,
    hamming_similarity,
    permute,
    random,
    unbind,
)

# the submodules are reached as ``vsaopt.vsa.trit`` and ``vsaopt.vsa.map``; a star import must not shadow the builtin ``map``
__all__ = list(trit.__all__)
