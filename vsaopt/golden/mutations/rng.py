"""Mutations of the rng family: the Philox block function, the counter layout, uniforms, argument checks."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import mutation

_LO32 = np.uint64(0xFFFFFFFF)
_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)


def _philox(m0: Any = _M0, m1: Any = _M1, w0: Any = _W0, w1: Any = _W1, bump_first: bool = False,
            out_order: tuple[int, int, int, int] = (0, 1, 2, 3), xor_words: tuple[int, int] = (1, 3), extra: int = 0, mask_product: bool = False) -> Any:
    """A Philox4x32 block function with the given constants and wiring (the reference's are the defaults)."""

    def philox4x32(counter: np.ndarray, key: np.ndarray, rounds: int) -> np.ndarray:
        c = [counter[:, i].astype(np.uint64) for i in range(4)]
        k0, k1 = key[:, 0].astype(np.uint64), key[:, 1].astype(np.uint64)
        for r in range(rounds + extra):
            if r or bump_first:
                k0, k1 = (k0 + w0) & _LO32, (k1 + w1) & _LO32
            p0, p1 = m0 * c[0], m1 * c[2]
            if mask_product:
                p0, p1 = p0 & _LO32, p1 & _LO32
            a, b = xor_words
            c = [(p1 >> np.uint64(32)) ^ c[a] ^ k0, p1 & _LO32, (p0 >> np.uint64(32)) ^ c[b] ^ k1, p0 & _LO32]
        return np.stack([c[i] for i in out_order], axis=1).astype(np.uint32)

    return philox4x32


@mutation("rng", "precision", "kernel:philox4x32")
def multipliers_swapped(orig: Any) -> Any:
    """The round multipliers M0 and M1 exchanged."""
    return _philox(m0=_M1, m1=_M0)


@mutation("rng", "precision", "kernel:philox4x32")
def weyl_increments_swapped(orig: Any) -> Any:
    """The key increments W0 and W1 exchanged."""
    return _philox(w0=_W1, w1=_W0)


@mutation("rng", "rule", "kernel:philox4x32")
def key_bumped_before_first_round(orig: Any) -> Any:
    """The key is bumped before every round, the first included."""
    return _philox(bump_first=True)


@mutation("rng", "layout", "kernel:philox4x32")
def output_low_words_swapped(orig: Any) -> Any:
    """The output words 1 and 3 (the two low product halves) written in each other's place."""
    return _philox(out_order=(0, 3, 2, 1))


@mutation("rng", "layout", "kernel:philox4x32")
def xor_words_swapped(orig: Any) -> Any:
    """The high product halves xored with c3 and c1 instead of c1 and c3."""
    return _philox(xor_words=(3, 1))


@mutation("rng", "rule", "kernel:philox4x32")
def one_round_more(orig: Any) -> Any:
    """Rounds counted from 0 to R inclusive (one round too many)."""
    return _philox(extra=1)


@mutation("rng", "precision", "kernel:philox4x32")
def product_high_half_truncated(orig: Any) -> Any:
    """The 64-bit product formed in 32-bit arithmetic (its high half is lost)."""
    return _philox(mask_product=True)


def _counters(layout: str) -> Any:
    def element_counters(n: int, seed: int, stream: int, step: int, tensor: int) -> tuple[np.ndarray, np.ndarray]:
        blocks = (n + 3) // 4
        counter = np.empty((blocks, 4), dtype=np.uint32)
        key = np.empty((blocks, 2), dtype=np.uint32)
        words = {"tensor_step_swapped": (tensor, stream, step), "stream_first": (stream, step, tensor),
                 "tensor16": (tensor & 0xFFFF, step, stream)}.get(layout, (tensor, step, stream))
        counter[:, 0] = np.arange(blocks, dtype=np.uint32)
        counter[:, 1], counter[:, 2], counter[:, 3] = words
        lo, hi = seed & 0xFFFFFFFF, seed >> 32
        key[:, 0], key[:, 1] = {"key_swapped": (hi, lo), "seed32": (lo, 0)}.get(layout, (lo, hi))
        return counter, key

    return element_counters


@mutation("rng", "layout", ".philox:element_counters")
def counter_step_stream_swapped(orig: Any) -> Any:
    """Counter words 2 and 3 hold the stream and the step (swapped)."""
    return _counters("tensor_step_swapped")


@mutation("rng", "layout", ".philox:element_counters")
def counter_stream_in_word1(orig: Any) -> Any:
    """Counter words 1..3 hold stream, step, tensor (the order reversed)."""
    return _counters("stream_first")


@mutation("rng", "layout", ".philox:element_counters")
def key_halves_swapped(orig: Any) -> Any:
    """The key is (seed >> 32, seed & 0xFFFFFFFF)."""
    return _counters("key_swapped")


@mutation("rng", "layout", ".philox:element_counters")
def seed_truncated_to_32_bits(orig: Any) -> Any:
    """The seed is stored in a 32-bit integer: the key's high word is 0."""
    return _counters("seed32")


@mutation("rng", "layout", ".philox:element_counters")
def tensor_index_16_bits(orig: Any) -> Any:
    """The tensor index is kept in 16 bits."""
    return _counters("tensor16")


@mutation("rng", "layout", "kernel:philox_bits")
def words_reversed_in_block(orig: Any) -> Any:
    """Element i takes word 3 - i mod 4 of its block."""

    def philox_bits(n: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
        blocks = orig(-(-n // 4) * 4, seed, stream, step, tensor).reshape(-1, 4)[:, ::-1]
        return np.ascontiguousarray(blocks).reshape(-1)[:n].copy()

    return philox_bits


@mutation("rng", "layout", "kernel:philox_bits")
def one_block_per_element(orig: Any) -> Any:
    """Element i takes word 0 of block i (one block per element, three words wasted)."""

    def philox_bits(n: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
        from ...backends.numpy.philox import element_counters, philox4x32  # noqa: PLC0415 - the current (maybe mutated) ones

        counter, key = element_counters(4 * n, seed, stream, step, tensor)
        counter[:, 0] = np.arange(counter.shape[0], dtype=np.uint32)
        return philox4x32(counter[:n], key[:n], 10)[:, 0].copy()

    return philox_bits


@mutation("rng", "layout", "kernel:philox_bits")
def block_index_starts_at_one(orig: Any) -> Any:
    """The block counter of element i is i div 4 + 1."""

    def philox_bits(n: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
        return orig(n + 4, seed, stream, step, tensor)[4:].copy()

    return philox_bits


def _uniform(rule: str) -> Any:
    def uniform_f32(n: int, seed: int, stream: int, step: int, tensor: int) -> np.ndarray:
        from ...backends.numpy.philox import philox_bits  # noqa: PLC0415

        w = philox_bits(n, seed, stream, step, tensor)
        if rule == "f32_times_2m32":
            return w.astype(np.float32) * np.float32(2.0**-32)
        if rule == "low24":
            return (w & np.uint32(0xFFFFFF)).astype(np.float32) * np.float32(2.0**-24)
        if rule == "f64_then_f32":
            return (w.astype(np.float64) * 2.0**-32).astype(np.float32)
        return (w >> np.uint32(9)).astype(np.float32) * np.float32(2.0**-23)

    return uniform_f32


@mutation("rng", "rounding", "kernel:uniform_f32")
def uniform_from_f32_word(orig: Any) -> Any:
    """u = f32(w) * 2**-32: the word rounded to float32 first (can give 1.0)."""
    return _uniform("f32_times_2m32")


@mutation("rng", "layout", "kernel:uniform_f32")
def uniform_from_low_bits(orig: Any) -> Any:
    """u from the low 24 bits of the word instead of the top 24."""
    return _uniform("low24")


@mutation("rng", "rounding", "kernel:uniform_f32")
def uniform_f64_rounded(orig: Any) -> Any:
    """u = f32(w * 2**-32) in float64, rounded once to float32."""
    return _uniform("f64_then_f32")


@mutation("rng", "rounding", "kernel:uniform_f32")
def uniform_23_bits(orig: Any) -> Any:
    """u from the top 23 bits times 2**-23."""
    return _uniform("23")


def _check_int_variant(names: tuple[str, ...], lo_shift: int = 0, hi_shift: int = 0) -> Any:
    def make(orig: Any) -> Any:
        def check_int(value: Any, name: str, lo: int, hi: int) -> int:
            if name in names:
                return orig(value, name, lo + lo_shift, hi + hi_shift)
            return orig(value, name, lo, hi)

        return check_int

    return make


@mutation("rng", "boundary", "vsaopt._arrays:check_int")
def rounds_upper_bound_exclusive(orig: Any) -> Any:
    """rounds must be below 65536 (the bound read as exclusive)."""
    return _check_int_variant(("rounds",), hi_shift=-1)(orig)


@mutation("rng", "boundary", "vsaopt._arrays:check_int")
def rounds_unbounded(orig: Any) -> Any:
    """rounds above 65536 accepted."""
    return _check_int_variant(("rounds",), hi_shift=2**20)(orig)


@mutation("rng", "check", "vsaopt._arrays:check_int")
def seed_bound_2_to_63(orig: Any) -> Any:
    """seed held in a signed 64-bit integer: seeds from 2**63 rejected."""
    return _check_int_variant(("seed",), hi_shift=-(2**63))(orig)


@mutation("rng", "check", "vsaopt._arrays:check_int")
def stream_bound_inclusive_2_32(orig: Any) -> Any:
    """stream = 2**32 accepted (the bound off by one)."""
    return _check_int_variant(("stream",), hi_shift=1)(orig)


@mutation("rng", "check", "vsaopt.rng:_as_uint32")
def counter_dtype_not_checked(orig: Any) -> Any:
    """Counters and keys of any integer dtype are accepted and cast to uint32."""

    def as_uint32(a: Any, name: str, be: Any) -> Any:
        return np.asarray(a).astype(np.uint32)

    return as_uint32
