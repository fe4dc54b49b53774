"""Golden cases: the MAP hyperdimensional model (:mod:`vsaopt.vsa.map`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..vsa import map as hd
from . import cosine_midpoint_pair, on, sample_f32


def _pair_op(fn: Any) -> Any:
    def op(be: Any, a: Any, b: Any) -> dict:
        return {"out": fn(on(be, a), on(be, b), backend=be)}

    return op


def _bundle(be: Any, vectors: Any) -> dict:
    return {"out": hd.bundle(on(be, vectors), backend=be)}


def _permute(be: Any, x: Any, shifts: int) -> dict:
    return {"out": hd.permute(on(be, x), shifts, backend=be)}


def _hard_quantize(be: Any, x: Any) -> dict:
    return {"out": hd.hard_quantize(on(be, x), backend=be)}


OPS = {
    "bind": _pair_op(hd.bind),
    "unbind": _pair_op(hd.unbind),
    "bundle": _bundle,
    "permute": _permute,
    "dot_similarity": _pair_op(hd.dot_similarity),
    "cosine_similarity": _pair_op(hd.cosine_similarity),
    "hamming_similarity": _pair_op(hd.hamming_similarity),
    "hard_quantize": _hard_quantize,
}


def _bipolar(shape: tuple[int, ...], seed: int, dtype: Any = np.int8) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64))
    return np.where(sample_f32(n, seed) > 0, 1, -1).astype(dtype).reshape(shape)


def cases() -> list[dict]:
    """The map family's cases."""
    f32, i8 = np.float32, np.int8
    out: list[dict] = []

    def case(op: str, comment: str, **inputs: Any) -> None:
        out.append({"op": op, "comment": comment, "inputs": inputs})

    case("bind", "float32 products: signed zero, underflow to 0, overflow to Inf, subnormal",
         a=np.array([-0.0, 1e-30, 3e38, 1e-45, 1.5], f32), b=np.array([2.0, 1e-30, 2.0, 0.5, -3.0], f32))
    case("bind", "int8 products wrap: -128 * -1 = -128, 127 * 127 = 1", a=np.array([-128, 127, -1, 1], i8),
         b=np.array([-1, 127, -1, -1], i8))
    case("unbind", "float64 operands are rounded to float32 first", a=np.array([0.1, -2.0]), b=np.array([1.0, -1.0]))
    case("bind", "one float and one int8 operand", a=np.array([1.0, -1.0], f32), b=np.array([1, -1], i8))
    case("bind", "an int16 operand", a=np.array([1, -1], np.int16), b=np.array([1, -1], np.int16))
    case("bind", "shapes differ", a=np.ones(3, f32), b=np.ones(4, f32))
    case("bundle", "float32 row order: (1e8 + 1) + -1e8 = 0, not 1",
         vectors=np.array([[1e8, 1.0], [1.0, 1.0], [-1e8, 1.0]], f32))
    case("bundle", "stack of 3 float32 arrays of shape (2, 4)", vectors=sample_f32(24, 31, 10.0).reshape(3, 2, 4))
    case("bundle", "int8 sums into int32 without wrapping", vectors=np.array([[100, -128], [100, -128], [100, -128]], i8))
    case("bundle", "zero vectors", vectors=np.zeros((0, 3), f32))
    case("permute", "shift 2 of a (2, 5) float32 array", x=sample_f32(10, 32).reshape(2, 5), shifts=2)
    case("dot_similarity", "float32 (2, 50) against (3, 50)", a=sample_f32(100, 33, 4.0).reshape(2, 50),
         b=sample_f32(150, 34, 4.0).reshape(3, 50))
    long_a = sample_f32(8200, 35, 1e6) * sample_f32(8200, 36, 1e-6)
    case("dot_similarity", "float32 rows of 8200: two blocks of the spec's sum, with cancellation",
         a=long_a, b=np.where(np.arange(8200) % 2 == 0, 1.0, -1.0).astype(f32))
    case("dot_similarity", "int8 bipolar (3, 64) against (64,): exact int64", a=_bipolar((3, 64), 37), b=_bipolar((64,), 38))
    case("dot_similarity", "a sum beyond the float32 range rounds to Inf", a=np.array([3e38, 3e38], f32),
         b=np.array([3e38, 1.0], f32))
    case("cosine_similarity", "float32 (3, 40) against (2, 40), one all-zero row (norm clamped to 1e-8)",
         a=np.concatenate([sample_f32(80, 39).reshape(2, 40), np.zeros((1, 40), f32)]), b=sample_f32(80, 40).reshape(2, 40))
    case("cosine_similarity", "int8 bipolar (64,) against (4, 64)", a=_bipolar((64,), 41), b=_bipolar((4, 64), 42))
    case("cosine_similarity", "NaN in an operand", a=np.array([1.0, np.nan], f32), b=np.ones(2, f32))
    case("hamming_similarity", "float32: -0.0 equals +0.0", a=np.array([[0.0, 1.0, -2.0]], f32),
         b=np.array([[-0.0, 1.0, 2.0], [0.0, 0.0, -2.0]], f32))
    case("hamming_similarity", "a 3-d operand", a=np.ones((2, 2, 3), f32), b=np.ones(3, f32))
    case("hard_quantize", "float32: > 0 is +1, zeros and negatives are -1",
         x=np.array([[0.5, 0.0, -0.0], [-1e-45, 1e-45, 7.0]], f32))
    case("hard_quantize", "int8 keeps its dtype", x=np.array([3, 0, -5, 127, -128], i8))
    case("hard_quantize", "Inf in the input", x=np.array([np.inf, 1.0], f32))
    _v7_cases(case)
    return out


def _v7_cases(case: Any) -> None:
    """Spec v7 map cases (appended after the v6 ones, whose tcIds they keep)."""
    f32 = np.float32
    case("unbind", "float32 unbind is the product a * b (b = 2, 0.5, 3, -0.25 are not their own inverses)",
         a=np.array([3.0, 3.0, 1.0, 0.1], f32), b=np.array([2.0, 0.5, 3.0, -0.25], f32))
    case("unbind", "float32 unbind of random rows by a random row: a * b, not a / b", a=sample_f32(24, 51, 4.0).reshape(3, 8),
         b=sample_f32(24, 52, 4.0).reshape(3, 8))
    case("bundle", "four float32 rows added in row order: ((1e8 + 1) + -1e8) + 1 = 1 (pairwise gives 0)",
         vectors=np.array([[1e8, 1.0], [1.0, 1e8], [-1e8, 1.0], [1.0, -1e8]], f32))
    case("bundle", "five float32 rows added in row order (pairwise or reversed folds round elsewhere)",
         vectors=np.array([[1e8, 3.0, 1.0], [1.0, 1e8, 1e8], [1.0, -1e8, 1.0], [-1e8, 1.0, -1e8], [2.0, 1.0, 1.0]], f32))
    small = np.zeros((2, 4), f32)
    small[0, 0], small[1, :2] = 1e-5, (3e-9, 4e-9)
    case("cosine_similarity", "norm products 1e-9 and 5e-13 below 1e-8: the product of the norms is clamped to 1e-8 "
         "(not each norm, not 1e-8 added)", a=small, b=np.array([1e-4, 1e-4, 0.0, 0.0], f32))
    case("cosine_similarity", "norm product 1e-8 * 4 just above the clamp: divided by the product itself",
         a=np.array([2e-4, 0.0, 0.0], f32), b=np.array([1e-4, 1e-4, 0.0], f32))
    row = np.zeros(40, f32)
    row[0], row[1], row[32] = 1e20, 1.0, -1e20
    case("dot_similarity", "lane order: lane 0 holds 1e20 and -1e20 (elements 0 and 32), lane 1 holds 1: the dot is 1 "
         "(a sequential float64 sum absorbs the 1 and gives 0)", a=row, b=np.ones(40, f32))
    for i, j in ((0, 2), (1, 3)):
        a, b = cosine_midpoint_pair(i, j)
        case("cosine_similarity", f"|a|^2 = |b|^2 = 2, b is a with entries {i} and {j} swapped: the exact cosine is a "
             "float32 midpoint; dot / (sqrt(A) * sqrt(B)) lies one float64 ulp below it and rounds down (sqrt(A * B) "
             "is exact and rounds the tie to even, up)", a=a, b=b)
    i8 = np.int8
    case("bind", "int8 products wrap: -128 * 1 = -128, 100 * 2 = -56, -100 * 2 = 56",
         a=np.array([-128, 100, -100, 127], i8), b=np.array([1, 2, 2, -1], i8))
    case("bundle", "300 int8 vectors of 127 and -128: sums 38100 and -38400 need int32 (int16 wraps)",
         vectors=np.tile(np.array([127, -128], i8), (300, 1)))
    case("hamming_similarity", "float32: +0.0 equals -0.0 in both orders", a=np.array([-0.0, 0.0, 5.0, -0.0], f32),
         b=np.array([0.0, -0.0, 5.0, 1.0], f32))
    case("cosine_similarity", "norms 1e-6 and 1e-3, each above 1e-8, product 1e-9 below it: the product is clamped",
         a=np.array([1e-6, 0.0], f32), b=np.array([1e-3, 0.0], f32))
    row = np.zeros(70, f32)
    row[3], row[4], row[35] = 1e20, 1.0, -1e20
    case("dot_similarity", "lane order: lane 3 holds 1e20 and -1e20 (elements 3 and 35), lane 4 holds 1: the dot is 1",
         a=row, b=np.ones(70, f32))
