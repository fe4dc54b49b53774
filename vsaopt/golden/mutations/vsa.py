"""Mutations of the vsa family: the trit algebra (bind, bundle, permute, similarities, random hypervectors)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import mutation

_TRIT = np.array([0, 1, -1], dtype=np.int8)


@mutation("vsa", "rule", "kernel:trit_bind")
def bind_is_sum(orig: Any) -> Any:
    """bind computes (a + b) mod 3 (bind and unbind exchanged)."""
    return lambda a, b: _TRIT[np.mod(a.astype(np.int16) + b, 3)]


@mutation("vsa", "rule", "kernel:trit_bind")
def bind_operands_swapped(orig: Any) -> Any:
    """bind computes (b - a) mod 3."""
    return lambda a, b: _TRIT[np.mod(b.astype(np.int16) - a, 3)]


@mutation("vsa", "rule", "kernel:trit_bind")
def bind_is_product(orig: Any) -> Any:
    """bind is the elementwise product a * b (the MAP rule)."""
    return lambda a, b: (a.astype(np.int16) * b).astype(np.int8)


@mutation("vsa", "rounding", "kernel:trit_bind")
def bind_c_remainder(orig: Any) -> Any:
    """(a - b) % 3 with C's truncated remainder, a negative residue mapped through |r|."""
    return lambda a, b: _TRIT[np.abs(np.fmod(a.astype(np.int16) - b, 3))]


@mutation("vsa", "rule", "kernel:trit_unbind")
def unbind_is_difference(orig: Any) -> Any:
    """unbind computes (a - b) mod 3."""
    return lambda a, b: _TRIT[np.mod(a.astype(np.int16) - b, 3)]


@mutation("vsa", "rounding", "kernel:trit_unbind")
def unbind_c_remainder(orig: Any) -> Any:
    """(a + b) % 3 with C's truncated remainder, a negative residue mapped through |r|."""
    return lambda a, b: _TRIT[np.abs(np.fmod(a.astype(np.int16) + b, 3))]


def _bundle(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def bundle_sum(vectors: np.ndarray) -> np.ndarray:
            total = orig(vectors)
            if vectors.dtype != np.int8:
                return total
            if rule == "tie_plus":
                return np.where(total == 0, 1, total).astype(np.int32)
            if rule == "tie_first":
                return np.where(total == 0, vectors[0].astype(np.int32) if vectors.shape[0] else 0, total).astype(np.int32)
            return vectors.sum(axis=0, dtype=np.int8).astype(np.int32)

        return bundle_sum

    return make


@mutation("vsa", "boundary", "kernel:bundle_sum")
def bundle_tie_is_plus_one(orig: Any) -> Any:
    """A tie in the majority gives +1 instead of 0."""
    return _bundle("tie_plus")(orig)


@mutation("vsa", "boundary", "kernel:bundle_sum")
def bundle_tie_takes_first_vector(orig: Any) -> Any:
    """A tie in the majority takes the first vector's trit."""
    return _bundle("tie_first")(orig)


@mutation("vsa", "rounding", "kernel:bundle_sum")
def bundle_sum_in_int8(orig: Any) -> Any:
    """The trit sum accumulates in int8 (wraps beyond 127 vectors)."""
    return _bundle("int8")(orig)


def _roll(rule: str) -> Any:
    def make(orig: Any) -> Any:
        from ...vsa.trit import check_int  # noqa: PLC0415

        def roll_last(x: Any, shifts: Any, be: Any) -> Any:
            out = orig(x, shifts, be)
            s = check_int(shifts, "shifts", -(2**63), 2**63 - 1)
            d = x.shape[-1] if x.ndim else 0
            if d == 0:
                return out
            if rule == "reversed":
                return np.ascontiguousarray(np.roll(x, -(s % d), axis=-1))
            if rule == "int32":
                s32 = int(np.array(s & 0xFFFFFFFF, np.uint32).view(np.int32))
                return np.ascontiguousarray(np.roll(x, s32 % d, axis=-1))
            if rule == "flat":
                return np.ascontiguousarray(np.roll(x.reshape(-1), s % d).reshape(x.shape))
            u = (s & (2**64 - 1)) % d  # the shift as an unsigned 64-bit integer
            return np.ascontiguousarray(np.roll(x, u, axis=-1))

        return roll_last

    return make


for _rule, _cls, _doc in (
    ("reversed", "rule", "permute shifts toward lower indices (out[i] = x[(i + s) mod D])."),
    ("int32", "rounding", "The shift is held in a signed 32-bit integer."),
    ("flat", "layout", "A 2-d array is rolled as one flat vector instead of row by row."),
    ("unsigned", "rounding", "A negative shift is reduced as an unsigned 64-bit integer (s + 2**64) mod D."),
):
    _m = _roll(_rule)
    _m.__name__, _m.__doc__ = f"permute_{_rule}", _doc
    mutation("vsa", _cls, "vsaopt.vsa.trit:_roll_last")(_m)


def _cosine(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def cosine_similarity(a: Any, b: Any, *, backend: Any = None) -> Any:
            from ...vsa.trit import _trit_pair  # noqa: PLC0415

            ref = orig(a, b, backend=backend)
            be, ta, tb, out_shape = _trit_pair(a, b, backend)
            dots = be.dot(ta, tb).astype(np.float64)
            na, nb = be.row_sumsq(ta).astype(np.float64), be.row_sumsq(tb).astype(np.float64)
            with np.errstate(all="ignore"):
                if rule == "sqrt_each":
                    cos = dots / (np.sqrt(na)[:, None] * np.sqrt(nb)[None, :])
                elif rule == "f32":
                    cos = dots.astype(np.float32) / np.sqrt((na[:, None] * nb[None, :]).astype(np.float32))
                else:
                    cos = dots / np.sqrt(na[:, None] * nb[None, :])
                if rule != "nan_zero":
                    cos = np.where((na[:, None] * nb[None, :]) > 0, cos, 0.0)
            return np.asarray(cos, np.float64).astype(np.float32).reshape(np.shape(ref))

        return cosine_similarity

    return make


for _rule, _cls, _doc in (
    ("sqrt_each", "precision", "cos = dot / (sqrt(nnz a) * sqrt(nnz b)): two roundings instead of sqrt of the product."),
    ("f32", "precision", "The cosine computed in float32."),
    ("nan_zero", "path", "An all-zero vector gives NaN (0/0) instead of 0."),
):
    _m = _cosine(_rule)
    _m.__name__, _m.__doc__ = f"cosine_{_rule}", _doc
    mutation("vsa", _cls, "vsaopt.vsa.trit:cosine_similarity")(_m)


@mutation("vsa", "rule", "vsaopt.vsa.trit:hamming_similarity")
def hamming_counts_differences(orig: Any) -> Any:
    """hamming_similarity returns the number of positions that differ."""

    def hamming_similarity(a: Any, b: Any, *, backend: Any = None) -> Any:
        same = orig(a, b, backend=backend)
        return np.asarray(a).shape[-1] - same

    return hamming_similarity


@mutation("vsa", "rule", "vsaopt.vsa.trit:hamming_similarity")
def hamming_ignores_zeros(orig: Any) -> Any:
    """Only nonzero positions that agree are counted."""

    def hamming_similarity(a: Any, b: Any, *, backend: Any = None) -> Any:
        same = orig(a, b, backend=backend)
        a2, b2 = np.asarray(a), np.asarray(b)
        both_zero = np.atleast_2d(a2 == 0).astype(np.int64) @ np.atleast_2d(b2 == 0).astype(np.int64).T
        return same - both_zero.reshape(np.shape(same))

    return hamming_similarity


def _random(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def random(n: int, dim: int, seed: int, sparsity: float = 1 / 3, *, backend: Any = None) -> Any:
            from ...backend import resolve_backend  # noqa: PLC0415

            ref = orig(n, dim, seed, sparsity, backend=backend)
            be = resolve_backend(backend)
            stream = 0 if rule == "stream0" else 0x56534152
            w = be.philox_bits(n * dim, seed, stream, 0, 0)
            u = (w >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)
            bit = {"sign_bit31": 31, "sign_bit8": 8}.get(rule, 0)
            signs = np.where(((w >> np.uint32(bit)) & np.uint32(1)) == 0, 1, -1)
            s32 = np.float32(sparsity)
            zero = {"le": u <= s32, "f64": u.astype(np.float64) < float(sparsity)}.get(rule, u < s32)
            out = np.where(zero, 0, signs).astype(np.int8).reshape(n, dim)
            if rule == "row_tensor":
                out = np.stack([orig(1, dim, seed, sparsity, backend=backend)[0] if r == 0 else
                                _row(be, dim, seed, s32, r) for r in range(n)]) if n else ref
            return out

        return random

    return make


def _row(be: Any, dim: int, seed: int, s32: np.float32, r: int) -> np.ndarray:
    w = be.philox_bits(dim, seed, 0x56534152, 0, r)
    u = (w >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)
    return np.where(u < s32, 0, np.where((w & np.uint32(1)) == 0, 1, -1)).astype(np.int8)


for _rule, _cls, _doc in (
    ("le", "boundary", "A trit is 0 when u <= sparsity (u == sparsity gives 0)."),
    ("f64", "precision", "u compared with the float64 sparsity instead of its float32 rounding."),
    ("sign_bit31", "layout", "The sign taken from the word's top bit instead of bit 0."),
    ("sign_bit8", "layout", "The sign taken from bit 8 (the lowest bit of the uniform) instead of bit 0."),
    ("stream0", "layout", "Hypervectors drawn on stream 0 instead of VSAR."),
    ("row_tensor", "layout", "Row r drawn with tensor index r, each row from element 0."),
):
    _m = _random(_rule)
    _m.__name__, _m.__doc__ = f"random_{_rule}", _doc
    mutation("vsa", _cls, "vsaopt.vsa.trit:random")(_m)


@mutation("vsa", "check", "vsaopt.vsa.trit:_stack_rows")
def bundle_of_zero_vectors_gives_zeros(orig: Any) -> Any:
    """Bundling k = 0 vectors returns zeros instead of raising ShapeError."""

    def stack_rows(v: Any, name: str) -> Any:
        if v.ndim >= 2 and v.shape[0] == 0:
            return np.zeros((1, int(np.prod(v.shape[1:]))), np.int8)
        return orig(v, name)

    return stack_rows
