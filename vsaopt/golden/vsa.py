"""Golden cases of the trit algebra (:mod:`vsaopt.vsa.trit`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import vsa
from ..backend import get_backend
from . import on


def _number(value: Any) -> Any:
    """A float input as a Python float (vector files store floats as f64 arrays of one element)."""
    return float(np.asarray(value).reshape(())) if isinstance(value, np.ndarray) else value


def _pair_op(fn: Any) -> Any:
    def op(be: Any, a: Any, b: Any) -> dict:
        return {"out": fn(on(be, a), on(be, b), backend=be)}

    return op


def _bundle(be: Any, vectors: Any) -> dict:
    return {"out": vsa.bundle(on(be, vectors), backend=be)}


def _permute(be: Any, x: Any, shifts: int) -> dict:
    return {"out": vsa.permute(on(be, x), shifts, backend=be)}


def _random(be: Any, n: int, dim: int, seed: int, sparsity: Any) -> dict:
    return {"out": vsa.random(n, dim, seed, _number(sparsity), backend=be)}


OPS = {
    "bind": _pair_op(vsa.bind),
    "unbind": _pair_op(vsa.unbind),
    "bundle": _bundle,
    "permute": _permute,
    "dot_similarity": _pair_op(vsa.dot_similarity),
    "cosine_similarity": _pair_op(vsa.cosine_similarity),
    "hamming_similarity": _pair_op(vsa.hamming_similarity),
    "random": _random,
}


def _trits(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Deterministic uniform trits (the spec's own generator, so no library RNG is involved)."""
    n = int(np.prod(shape, dtype=np.int64))
    return (get_backend("numpy").philox_bits(n, seed, 0, 0, 0) % np.uint32(3)).astype(np.int8).reshape(shape) - np.int8(1)


def cases() -> list[dict]:
    """The vsa family's cases."""
    i8 = np.int8
    grid_a, grid_b = (g.reshape(-1).astype(i8) for g in np.meshgrid([-1, 0, 1], [-1, 0, 1], indexing="ij"))
    out: list[dict] = []

    def case(op: str, comment: str, **inputs: Any) -> None:
        out.append({"op": op, "comment": comment, "inputs": inputs})

    case("bind", "all nine trit pairs: (a - b) mod 3 as a trit", a=grid_a, b=grid_b)
    case("unbind", "all nine trit pairs: (a + b) mod 3 as a trit", a=grid_a, b=grid_b)
    case("bind", "2-d operands keep their shape", a=_trits((2, 5), 1), b=_trits((2, 5), 2))
    case("bind", "shapes differ", a=_trits((4,), 1), b=_trits((5,), 2))
    case("bind", "a value outside {-1, 0, 1}", a=np.array([2, 0], i8), b=np.array([0, 0], i8))
    case("unbind", "a float operand", a=np.array([1.0, 0.0]), b=np.array([0, 1], i8))
    case("bundle", "majority of three vectors", vectors=np.array([[1, 1, -1, 0, 0], [1, -1, -1, 0, 1], [0, 1, 1, -1, 1]], i8))
    case("bundle", "four vectors: ties give 0",
         vectors=np.array([[1, 1, -1, 0], [-1, 1, 1, 0], [1, -1, -1, 1], [-1, -1, 1, -1]], i8))
    case("bundle", "one vector is returned unchanged", vectors=_trits((1, 9), 3))
    case("bundle", "stack of 7 vectors of shape (2, 3)", vectors=_trits((7, 2, 3), 4))
    case("bundle", "zero vectors", vectors=np.zeros((0, 5), i8))
    case("permute", "shift 3 of each row of a (2, 7) array", x=_trits((2, 7), 5), shifts=3)
    case("permute", "shift -2**40 (taken mod 7)", x=_trits((7,), 6), shifts=-(2**40))
    case("permute", "shifts must be an integer", x=_trits((5,), 6), shifts=True)
    case("dot_similarity", "(3, 37) against (4, 37)", a=_trits((3, 37), 7), b=_trits((4, 37), 8))
    case("cosine_similarity", "(37,) against (4, 37) with an all-zero row",
         a=_trits((37,), 9), b=np.concatenate([_trits((3, 37), 10), np.zeros((1, 37), i8)]))
    case("cosine_similarity", "(2, 5) against (5,): [1,0,0,0,0] vs [1,1,1,0,0] is 1/sqrt(3)",
         a=np.array([[1, 0, 0, 0, 0], [1, 1, 1, 0, 0]], i8), b=np.array([1, 1, 1, 0, 0], i8))
    case("hamming_similarity", "(3, 37) against (37,)", a=_trits((3, 37), 11), b=_trits((37,), 12))
    case("dot_similarity", "last dimensions differ", a=_trits((2, 5), 1), b=_trits((3, 6), 2))
    case("random", "3 x 16, default sparsity 1/3", n=3, dim=16, seed=42, sparsity=1 / 3)
    case("random", "2 x 37, largest seed, no zeros", n=2, dim=37, seed=2**64 - 1, sparsity=0.0)
    case("random", "1 x 40, sparsity 0.9", n=1, dim=40, seed=7, sparsity=0.9)
    case("random", "negative n", n=-1, dim=4, seed=0, sparsity=1 / 3)
    case("random", "seed beyond 64 bits", n=1, dim=4, seed=2**64, sparsity=1 / 3)
    case("random", "sparsity above 1", n=1, dim=4, seed=0, sparsity=1.5)
    _v7_cases(case)
    return out


def _drawn_uniforms(n: int, seed: int) -> np.ndarray:
    """The uniforms ``u = (w >> 8) * 2**-24`` that :func:`vsaopt.vsa.random` draws for its first ``n`` elements (float64)."""
    from ..rng import Stream

    w = get_backend("numpy").philox_bits(n, seed, int(Stream.VSA_RANDOM), 0, 0)
    return (w >> np.uint32(8)).astype(np.float64) * 2.0**-24


def _v7_cases(case: Any) -> None:
    """Spec v7 vsa cases (appended after the v6 ones, whose tcIds they keep)."""
    i8 = np.int8
    ones = np.ones((200, 6), i8)
    ones[:, 3:] = -1
    ones[150:, 5] = 1  # sums 200, 200, 200, -200, -200, -100
    case("bundle", "200 vectors: sums of +-200 (int32 sums; an int8 sum wraps past 127 and flips the sign)", vectors=ones)
    mixed = np.concatenate([np.ones((130, 4), i8), -np.ones((129, 4), i8)])
    mixed[:, 1] *= -1
    mixed[:, 3] = 0
    case("bundle", "259 vectors: sums +1 and -1 after 130 equal terms (an int8 running sum wraps at the 128th)",
         vectors=mixed)
    u = _drawn_uniforms(8, 21)
    case("random", f"sparsity = the uniform element 0 draws ({u[0]!r}): u < f32(sparsity) is strict, element 0 is not 0",
         n=1, dim=8, seed=21, sparsity=float(u[0]))
    above = float(u[1]) + 2.0**-32  # f32(sparsity) rounds down to u[1]
    case("random", f"sparsity {above!r}: a hair above the uniform of element 1, its float32 rounding is that uniform: "
         "element 1 is not 0 (compared with f32(sparsity), not the float64 value)", n=1, dim=8, seed=21, sparsity=above)
    a = np.zeros(40, i8)
    a[:2] = 1
    b = np.zeros(40, i8)
    b[:8] = 1
    b[1] = -1
    case("cosine_similarity", "nnz 2 and 8: sqrt(2 * 8) = 4 exactly; dot 0 and 2 / 4", a=np.stack([a, np.roll(a, 1)]), b=b)
    c = np.zeros((3, 12), i8)
    c[0, 0], c[1, 0], c[2, :2] = 1, -1, 1
    d = np.zeros(12, i8)
    d[:6] = 1
    d[:3] = -1
    case("cosine_similarity", "nnz 1 or 2 against nnz 6: +-1 / sqrt(6) and 0 / sqrt(12) in float64, rounded once to float32 "
         "(a float32 quotient differs)", a=c, b=d)

    for nnz_a, nnz_b, dot in _COSINE_NEAR_MIDPOINT:
        a, b = _trits_with(nnz_a, nnz_b, dot)
        case("cosine_similarity", f"nnz {nnz_a} and {nnz_b}, dot {dot}: the cosine lies within a float64 ulp of a "
             "float32 midpoint, where dot / sqrt(nnz_a * nnz_b) (one square root) and dot / (sqrt(nnz_a) * "
             "sqrt(nnz_b)) round to different float32 values", a=a, b=b)
    case("unbind", "random (3, 20) trits: (a + b) mod 3 as a trit", a=_trits((3, 20), 13), b=_trits((3, 20), 14))
    case("bundle", "128 vectors of +1 (and of -1) in two columns: the sums +-128 do not fit an int8",
         vectors=np.stack([np.ones(128, i8), -np.ones(128, i8), np.zeros(128, i8)], axis=1))
    case("permute", "shift -2**63 (the int64 minimum, taken mod 7 as 6)", x=_trits((7,), 15), shifts=-(2**63))
    case("permute", "shift 1 of each row of a (3, 5) array (rows roll on their own)", x=_trits((3, 5), 16), shifts=1)
    case("cosine_similarity", "an all-zero (2, 9) operand against (9,): cosine 0, not NaN",
         a=np.zeros((2, 9), i8), b=_trits((9,), 17))
    case("hamming_similarity", "zeros agree with zeros; +1 and -1 differ", a=np.array([0, 0, 1, -1, 1, 0], i8),
         b=np.array([[0, 1, 1, 1, -1, 0], [0, 0, 0, -1, 1, 0]], i8))
    u = _drawn_uniforms(8, 22)
    above = float(u[3]) + 2.0**-32
    case("random", f"sparsity {above!r}: a hair above the uniform of element 3 (seed 22), its float32 rounding is "
         "that uniform: element 3 is not 0", n=1, dim=8, seed=22, sparsity=above)
    case("bundle", "zero vectors of shape (2, 3)", vectors=np.zeros((0, 2, 3), i8))


#: ``(nnz a, nnz b, dot)`` whose cosine ``dot / sqrt(nnz_a nnz_b)`` sits within a float64 ulp of a float32 midpoint
#: (found by an exhaustive search over nnz up to 6500).
_COSINE_NEAR_MIDPOINT = ((2372, 3279, 2333), (2942, 4515, 1059))


def _trits_with(nnz_a: int, nnz_b: int, dot: int) -> tuple[np.ndarray, np.ndarray]:
    """Trit vectors with ``nnz_a`` and ``nnz_b`` nonzeros and dot product ``dot`` (``dot <= nnz_a <= nnz_b``).

    The support of ``a`` overlaps that of ``b`` in ``o`` positions (``o = nnz_a`` or ``nnz_a - 1``, of the parity of
    ``dot``), ``(o + dot) / 2`` of them agreeing; the other nonzeros alternate in sign.
    """
    o = nnz_a if (nnz_a - dot) % 2 == 0 else nnz_a - 1
    dim = nnz_a + nnz_b - o
    a = np.zeros(dim, np.int8)
    b = np.zeros(dim, np.int8)
    a[:nnz_a] = 1
    a[o:nnz_a] = np.where(np.arange(nnz_a - o) % 2 == 0, 1, -1)
    agree = (o + dot) // 2
    b[:o] = np.where(np.arange(o) < agree, 1, -1)
    b[nnz_a:] = np.where(np.arange(dim - nnz_a) % 2 == 0, 1, -1)
    return a, b
