"""Identity properties of the foundation: randomness, reductions, ternary quantization and packing.

Each check runs a Hypothesis test asserting that the public operation returns
the same bytes on ``candidate`` as on ``reference``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .. import reductions, rng, ternary
from ..backend import to_device
from . import assert_bit_equal
from .strategies import float32_arrays, lengths, matmul_operands, seeds, trit_arrays, u32

__all__ = ["PROPERTIES"]


def check_philox(candidate: Any, reference: Any) -> None:
    """philox4x32 on random counters and keys, any round count."""

    @given(
        hnp.arrays(np.uint32, st.tuples(st.integers(0, 20), st.just(4))),
        hnp.arrays(np.uint32, st.just((2,))),
        st.integers(1, 16),
    )
    def prop(counter: np.ndarray, key: np.ndarray, rounds: int) -> None:
        want = rng.philox4x32(counter, key, rounds, backend=reference)
        assert_bit_equal(rng.philox4x32(to_device(candidate, counter), to_device(candidate, key), rounds, backend=candidate),
                         to_device(candidate, want), "philox4x32")

    prop()


def check_draws(candidate: Any, reference: Any) -> None:
    """random_bits and uniform over the whole seed and counter-word ranges."""

    @given(lengths(), seeds(), u32(), u32(), u32())
    def prop(n: int, seed: int, stream: int, step: int, tensor: int) -> None:
        for fn in (rng.random_bits, rng.uniform):
            want = fn(n, seed, stream, step, tensor, backend=reference)
            assert_bit_equal(fn(n, seed, stream, step, tensor, backend=candidate), to_device(candidate, want), fn.__name__)

    prop()


def check_reductions(candidate: Any, reference: Any) -> None:
    """abs_sum and abs_max on edge-case float arrays."""

    @given(float32_arrays())
    def prop(x: np.ndarray) -> None:
        assert_bit_equal(reductions.abs_stats(to_device(candidate, x), backend=candidate),
                         reductions.abs_stats(x, backend=reference), "abs_stats")

    prop()


def check_quantize_deterministic(candidate: Any, reference: Any) -> None:
    """Threshold ternarization, relative and absolute thresholds."""

    @given(float32_arrays(), st.one_of(st.none(), st.floats(0, 10, width=32)), st.floats(0, 4))
    def prop(x: np.ndarray, threshold: float | None, ratio: float) -> None:
        t_ref, s_ref = ternary.quantize_deterministic(x, threshold, ratio, backend=reference)
        t, s = ternary.quantize_deterministic(to_device(candidate, x), threshold, ratio, backend=candidate)
        assert_bit_equal(t, to_device(candidate, t_ref), "trits")
        assert_bit_equal(s, s_ref, "scale")

    prop()


def check_quantize_stochastic(candidate: Any, reference: Any) -> None:
    """TernGrad ternarization under every seed and counter word."""

    @given(float32_arrays(), seeds(), u32(), u32(), u32())
    def prop(x: np.ndarray, seed: int, stream: int, step: int, tensor: int) -> None:
        t_ref, s_ref = ternary.quantize_stochastic(x, seed, stream, step, tensor, backend=reference)
        t, s = ternary.quantize_stochastic(to_device(candidate, x), seed, stream, step, tensor, backend=candidate)
        assert_bit_equal(t, to_device(candidate, t_ref), "trits")
        assert_bit_equal(s, s_ref, "scale")

    prop()


def check_packing(candidate: Any, reference: Any) -> None:
    """pack / unpack in both encodings, and rejection of the same malformed bytes."""

    @given(trit_arrays(), st.sampled_from(sorted(ternary.ENCODINGS)), st.binary(max_size=40))
    def prop(t: np.ndarray, encoding: str, junk: bytes) -> None:
        packed = ternary.pack(t, encoding, backend=reference)
        assert_bit_equal(ternary.pack(to_device(candidate, t), encoding, backend=candidate), to_device(candidate, packed), "pack")
        got = ternary.unpack(to_device(candidate, packed), t.size, encoding, backend=candidate)
        assert_bit_equal(got, to_device(candidate, ternary.unpack(packed, t.size, encoding, backend=reference)), "unpack")
        out = to_device(candidate, np.full(t.size, 7, np.int8))  # bytes the decode must overwrite
        assert ternary.unpack(to_device(candidate, packed), t.size, encoding, out=out, backend=candidate) is out
        assert_bit_equal(out, got, "unpack(out=)")
        raw = np.frombuffer(junk, dtype=np.uint8)
        n = raw.size * ternary.ENCODINGS[encoding]
        outcomes = []
        for be, arr in ((reference, raw), (candidate, to_device(candidate, raw))):
            try:
                outcomes.append(ternary.unpack(arr, n, encoding, backend=be))
            except Exception as exc:  # the same typed error must come from both
                outcomes.append(type(exc).__name__)
        if isinstance(outcomes[0], str) or isinstance(outcomes[1], str):
            assert outcomes[0] == outcomes[1], f"unpack of malformed data: {outcomes[0]} vs {outcomes[1]}"
        else:
            assert_bit_equal(outcomes[1], to_device(candidate, outcomes[0]), "unpack of arbitrary bytes")

    prop()


def check_matmul_ordered(candidate: Any, reference: Any) -> None:
    """The training harness's matmul_ordered kernel on edge-value operands, cancelling columns included."""

    @given(matmul_operands())
    def prop(ab: tuple[np.ndarray, np.ndarray]) -> None:
        a, b = ab
        got = candidate.matmul_ordered(to_device(candidate, a), to_device(candidate, b))
        assert_bit_equal(got, to_device(candidate, reference.matmul_ordered(a, b)), "matmul_ordered")

    prop()


#: Property name -> ``check(candidate, reference)``.
PROPERTIES = {
    "philox4x32": check_philox,
    "random_bits/uniform": check_draws,
    "abs_sum/abs_max": check_reductions,
    "quantize_deterministic": check_quantize_deterministic,
    "quantize_stochastic": check_quantize_stochastic,
    "pack/unpack": check_packing,
    "matmul_ordered": check_matmul_ordered,
}
