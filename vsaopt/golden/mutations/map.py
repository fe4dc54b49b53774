"""Mutations of the map family: the MAP model's float32 bundling order, products, cosine and quantization."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import mutation


def _bundle(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def bundle_sum(vectors: np.ndarray) -> np.ndarray:
            if vectors.dtype == np.int8 or vectors.shape[0] < 2:
                out = orig(vectors)
                return out.astype(np.int16) if rule == "int16" and vectors.dtype == np.int8 else out
            if rule == "reversed":
                return orig(np.ascontiguousarray(vectors[::-1]))
            if rule == "f64":
                return vectors.astype(np.float64).sum(axis=0).astype(np.float32)
            if rule == "pairwise":
                rows = list(vectors)
                while len(rows) > 1:
                    rows = [rows[i] + rows[i + 1] if i + 1 < len(rows) else rows[i] for i in range(0, len(rows), 2)]
                return rows[0].astype(np.float32)
            return orig(vectors)

        return bundle_sum

    return make


for _rule, _cls, _doc in (
    ("reversed", "order", "float32 vectors are added last to first."),
    ("f64", "precision", "float32 vectors are summed in float64 and rounded once."),
    ("pairwise", "order", "float32 vectors are added pairwise ((v0 + v1) + (v2 + v3))."),
    ("int16", "rounding", "int8 vectors are summed into int16 instead of int32."),
):
    _m = _bundle(_rule)
    _m.__name__, _m.__doc__ = f"bundle_{_rule}", _doc
    mutation("map", _cls, "kernel:bundle_sum")(_m)


def _bind(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def bind(a: Any, b: Any, *, backend: Any = None) -> Any:
            out = orig(a, b, backend=backend)
            if rule == "saturate" and out.dtype == np.int8:
                wide = np.asarray(a).astype(np.int32) * np.asarray(b).astype(np.int32)
                return np.clip(wide, -128, 127).astype(np.int8).reshape(out.shape)
            if rule == "f64" and out.dtype == np.float32:
                a64 = np.asarray(a).astype(np.float32).astype(np.float64)
                return (a64 * np.asarray(b).astype(np.float32).astype(np.float64)).astype(np.float32).reshape(out.shape)
            return out

        return bind

    return make


@mutation("map", "rounding", "vsaopt.vsa.map:bind")
def bind_int8_saturates(orig: Any) -> Any:
    """int8 products saturate at -128 and 127 instead of wrapping."""
    return _bind("saturate")(orig)


@mutation("map", "precision", "vsaopt.vsa.map:bind",
          equivalent="the product of two float32 values is exact in float64, so rounding it once to float32 is the float32 product")
def bind_float_in_f64(orig: Any) -> Any:
    """float32 products formed in float64 and rounded to float32."""
    return _bind("f64")(orig)


@mutation("map", "rule", "vsaopt.vsa.map:unbind")
def unbind_divides(orig: Any) -> Any:
    """unbind(a, b) = a / b (the inverse of a product) instead of a * b."""

    def unbind(a: Any, b: Any, *, backend: Any = None) -> Any:
        out = orig(a, b, backend=backend)
        if out.dtype != np.float32:
            return out
        with np.errstate(all="ignore"):
            return (np.asarray(a, np.float32) / np.asarray(b, np.float32)).astype(np.float32).reshape(out.shape)

    return unbind


def _quantize(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def hard_quantize(x: Any, *, backend: Any = None) -> Any:
            out = orig(x, backend=backend)
            m = np.asarray(x)
            if rule == "ge":
                return np.where(m >= 0, 1, -1).astype(out.dtype)
            return np.where(np.signbit(m), -1, 1).astype(out.dtype)

        return hard_quantize

    return make


for _rule, _doc in (("ge", "Zero quantizes to +1 (x >= 0)."), ("signbit", "The sign bit decides: +0.0 gives +1, -0.0 gives -1.")):
    _m = _quantize(_rule)
    _m.__name__, _m.__doc__ = f"hard_quantize_{_rule}", _doc
    mutation("map", "boundary", "vsaopt.vsa.map:hard_quantize")(_m)


def _cosine(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def cosine_similarity(a: Any, b: Any, *, backend: Any = None) -> Any:
            from ...vsa.map import _similarity_pair  # noqa: PLC0415

            ref = orig(a, b, backend=backend)
            be, ra, rb, out_shape = _similarity_pair(a, b, backend)
            dots = be.dot(ra, rb).astype(np.float64)
            sa, sb = be.row_sumsq(ra).astype(np.float64), be.row_sumsq(rb).astype(np.float64)
            if rule == "one_sqrt":
                mag = np.maximum(np.sqrt(sa[:, None] * sb[None, :]), 1e-8)
            elif rule == "eps_each":
                mag = np.maximum(np.sqrt(sa), 1e-8)[:, None] * np.maximum(np.sqrt(sb), 1e-8)[None, :]
            elif rule == "eps_added":
                mag = np.sqrt(sa)[:, None] * np.sqrt(sb)[None, :] + 1e-8
            else:
                mag = np.maximum(np.sqrt(sa.astype(np.float32))[:, None] * np.sqrt(sb.astype(np.float32))[None, :], np.float32(1e-8))
                return (dots.astype(np.float32) / mag).astype(np.float32).reshape(np.shape(ref))
            return (dots / mag).astype(np.float32).reshape(np.shape(ref))

        return cosine_similarity

    return make


for _rule, _cls, _doc in (
    ("one_sqrt", "precision", "|a| |b| computed as sqrt(|a|^2 |b|^2) (one square root)."),
    ("eps_each", "boundary", "Each norm clamped to 1e-8 instead of their product."),
    ("eps_added", "rule", "1e-8 added to the product of the norms instead of a clamp."),
    ("f32", "precision", "Norms and the quotient in float32."),
):
    _m = _cosine(_rule)
    _m.__name__, _m.__doc__ = f"cosine_{_rule}", _doc
    mutation("map", _cls, "vsaopt.vsa.map:cosine_similarity")(_m)


@mutation("map", "rule", "kernel:equal_count")
def hamming_compares_bits(orig: Any) -> Any:
    """Float positions compared by bit pattern (-0.0 differs from +0.0)."""

    def equal_count(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.dtype == np.float32:
            return orig(a.view(np.int32), b.view(np.int32))
        return orig(a, b)

    return equal_count


@mutation("map", "precision", "vsaopt.vsa.map:dot_similarity")
def dot_float_kept_f64(orig: Any) -> Any:
    """A float dot product returned as float64 instead of rounded to float32."""

    def dot_similarity(a: Any, b: Any, *, backend: Any = None) -> Any:
        from ...vsa.map import _similarity_pair  # noqa: PLC0415

        out = orig(a, b, backend=backend)
        if out.dtype != np.float32:
            return out
        be, ra, rb, out_shape = _similarity_pair(a, b, backend)
        return be.dot(ra, rb).reshape(out_shape)

    return dot_similarity


@mutation("map", "order", "kernel:dot")
def dot_sequential(orig: Any) -> Any:
    """Float dot products summed sequentially in float64."""

    def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.dtype == np.int8:
            return orig(a, b)
        out = np.empty((a.shape[0], b.shape[0]), np.float64)
        for i in range(a.shape[0]):
            for j in range(b.shape[0]):
                acc = 0.0
                for p in (a[i].astype(np.float64) * b[j].astype(np.float64)).tolist():
                    acc += p
                out[i, j] = acc
        return out

    return dot


@mutation("map", "check", "vsaopt.vsa.map:_check_finite")
def nan_not_rejected(orig: Any) -> Any:
    """NaN and Inf operands are not rejected."""
    return lambda x, name, be: None
