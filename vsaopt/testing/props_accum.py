"""Identity properties of ternary accumulation (not quantization), the matrix-free projection and VSA compression.

Each check runs a Hypothesis test asserting that the operation returns the
same bytes on ``candidate`` as on ``reference``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..accumulator import TernaryGradientAccumulator
from ..backend import to_device, to_host
from ..compressor import VSAGradientCompressor
from ..config import TernaryConfig, VSAConfig
from ..projection import SRHTProjection
from . import assert_bit_equal
from .strategies import float32_arrays, float32_values, lengths, seeds, shapes, trit_arrays, u32

__all__ = ["PROPERTIES"]


def _flat(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).reshape(-1)


#: Magnitudes the projection handles without overflow (the compressor prescales to |x| <= 1).
_moderate = st.floats(-(2.0**100), 2.0**100, width=32, allow_subnormal=True)


def check_random_signs(candidate: Any, reference: Any) -> None:
    """random_signs on float32 (signed zeros, subnormals, huge) and int8 trits."""

    @given(float32_arrays(), trit_arrays(), seeds(), u32(), u32(), u32())
    def prop(x: np.ndarray, t: np.ndarray, seed: int, stream: int, step: int, tensor: int) -> None:
        for a in (_flat(x), _flat(t)):
            want = reference.random_signs(a, seed, stream, step, tensor)
            assert_bit_equal(candidate.random_signs(to_device(candidate, a), seed, stream, step, tensor), to_device(candidate, want), "random_signs")

    prop()


def check_fwht(candidate: Any, reference: Any) -> None:
    """fwht of 1..4 blocks of 1..1024 elements, any float32 scale."""

    @given(st.integers(0, 10), st.integers(1, 4), st.data(), st.floats(2**-20, 4, width=32))
    def prop(k: int, blocks: int, data: Any, scale: float) -> None:
        n = blocks << k
        x = data.draw(hnp.arrays(np.float32, n, elements=_moderate))
        want = reference.fwht(x, 1 << k, scale)
        assert_bit_equal(candidate.fwht(to_device(candidate, x), 1 << k, scale), to_device(candidate, want), "fwht")

    prop()


def check_projection(candidate: Any, reference: Any) -> None:
    """SRHTProjection forward and transpose, both gains, any n, d, seed and step."""

    @given(
        st.data(), st.integers(1, 3000), seeds(), st.sampled_from(["unbiased", "unit"]), u32(), st.integers(0, 2**32 - 1)
    )
    def prop(data: Any, d: int, seed: int, gain: str, step: int, tensor: int) -> None:
        x = data.draw(hnp.arrays(np.float32, data.draw(lengths(2500)), elements=_moderate))
        ref = SRHTProjection(x.size, d, seed, gain=gain, tensor_index=tensor, backend=reference)
        cand = SRHTProjection(x.size, d, seed, gain=gain, tensor_index=tensor, backend=candidate)
        y = ref.forward(x, step)
        assert_bit_equal(cand.forward(to_device(candidate, x), step), to_device(candidate, y), "forward")
        assert_bit_equal(cand.transpose(to_device(candidate, y), step), to_device(candidate, ref.transpose(y, step)), "transpose")

    prop()


def check_abs_sum_above(candidate: Any, reference: Any) -> None:
    """Masked spec-order |x| sum and count, thresholds including 0 and ties."""

    @given(float32_arrays(max_side=60), st.one_of(st.just(0.0), float32_values()))
    def prop(x: np.ndarray, t: float) -> None:
        t = abs(t)
        a = _flat(x)
        assert candidate.abs_sum_above(to_device(candidate, a), t) == reference.abs_sum_above(a, t)

    prop()


def check_accum_kernels(candidate: Any, reference: Any) -> None:
    """accum_add_stochastic / accum_add_threshold / accum_rescale / accum_mean on arbitrary int8 counts."""

    @given(st.data(), lengths(), seeds(), u32(), u32(), st.integers(1, 32), st.integers(-130, 130))
    def prop(data: Any, n: int, seed: int, step: int, tensor: int, shift: int, e: int) -> None:
        counts = data.draw(hnp.arrays(np.int8, n, elements=st.integers(-126, 126)))
        g = data.draw(hnp.arrays(np.float32, n, elements=float32_values()))
        inv = float(np.ldexp(np.float32(1), min(max(e, -126), 126)))
        with np.errstate(over="ignore"):
            want = reference.accum_add_stochastic(counts.copy(), g, inv, seed, 7, step, tensor)
        got = candidate.accum_add_stochastic(to_device(candidate, counts.copy()), to_device(candidate, g), inv, seed, 7, step, tensor)
        assert_bit_equal(got, to_device(candidate, want), "accum_add_stochastic")
        t = abs(data.draw(float32_values()))
        want = reference.accum_add_threshold(counts.copy(), g, t)
        assert_bit_equal(candidate.accum_add_threshold(to_device(candidate, counts.copy()), to_device(candidate, g), t), to_device(candidate, want), "accum_add_threshold")
        want = reference.accum_rescale(counts.copy(), shift, seed, 9, step, tensor)
        assert_bit_equal(candidate.accum_rescale(to_device(candidate, counts.copy()), shift, seed, 9, step, tensor), to_device(candidate, want), "accum_rescale")
        unit = float(np.ldexp(1.0, e)) * data.draw(st.floats(0.5, 2.0))
        div = float(data.draw(st.integers(1, 10**6)))
        with np.errstate(over="ignore"):
            want = reference.accum_mean(counts, unit, div)
        assert_bit_equal(candidate.accum_mean(to_device(candidate, counts), unit, div), to_device(candidate, want), "accum_mean")

    prop()


def check_count_abs_max(candidate: Any, reference: Any) -> None:
    """count_abs_max of any int8 counts (-128 included), and of long zero runs with planted maxima (every chunk path)."""

    @given(st.data(), lengths(), st.integers(0, 3 * 2**16 + 5), st.lists(st.integers(-128, 127), max_size=4))
    def prop(data: Any, n: int, long_n: int, planted: list[int]) -> None:
        counts = data.draw(hnp.arrays(np.int8, n))
        long = np.zeros(long_n, np.int8)
        if long_n:
            for v in planted:
                long[data.draw(st.integers(0, long_n - 1))] = v
        for c in (counts, long):
            got = candidate.count_abs_max(to_device(candidate, c))
            want = reference.count_abs_max(c)
            assert type(got) is int and got == want, ("count_abs_max", got, want)

    prop()


@st.composite
def _long_runs(draw: Any) -> tuple[int, bool, np.ndarray, list[float]]:
    """Many micro-batches of one direction (scaled, sometimes negated or zero): runs that reach the count maximum."""
    bits = draw(st.sampled_from([4, 4, 8]))  # 8-bit runs need 128+ steps to reach the maximum: drawn less often
    stochastic = draw(st.booleans())
    base = draw(hnp.arrays(np.float32, draw(st.integers(1, 9)), elements=st.floats(-4, 4, width=32)))
    factors = st.sampled_from([1.0, 1.0, 1.0, 1.0, 0.5, 2.0, 0.75, -1.0, 0.0, 8.0])
    lo, hi = (6, 40) if bits == 4 else (128, 150)
    return bits, stochastic, base, draw(st.lists(factors, min_size=lo, max_size=hi))


def check_accumulator_long_runs(candidate: Any, reference: Any) -> None:
    """TernaryGradientAccumulator over enough steps for measured halvings: counts, exponents, bounds and means."""

    @given(_long_runs(), seeds())
    def prop(run: Any, seed: int) -> None:
        bits, stochastic, base, factors = run
        cfg = TernaryConfig(use_stochastic_rounding=stochastic, ternary_threshold=0.5, seed=seed)
        decl = [("g", base.shape)]
        ref = TernaryGradientAccumulator(decl, cfg, backend=reference, count_bits=bits)
        cand = TernaryGradientAccumulator(decl, cfg, backend=candidate, count_bits=bits)
        for f in factors:
            g = (base * np.float32(f)).astype(np.float32)
            ref.accumulate({"g": g})
            cand.accumulate({"g": to_device(candidate, g)})
        rs, cs = ref.state_dict()["arrays"], cand.state_dict()["arrays"]
        for key in ("counts.0", "exp", "bound"):
            assert_bit_equal(cs[key], rs[key], key)
        assert_bit_equal(cand.get_accumulated()["g"], to_device(candidate, ref.get_accumulated()["g"]), "mean")

    prop()


def check_nibbles(candidate: Any, reference: Any) -> None:
    """nibble_pack of counts in [-8, 7] and nibble_unpack of any bytes."""

    @given(st.data(), lengths())
    def prop(data: Any, n: int) -> None:
        counts = data.draw(hnp.arrays(np.int8, n, elements=st.integers(-8, 7)))
        packed = data.draw(hnp.arrays(np.uint8, (n + 1) // 2))
        assert_bit_equal(candidate.nibble_pack(to_device(candidate, counts)), to_device(candidate, reference.nibble_pack(counts)), "nibble_pack")
        assert_bit_equal(candidate.nibble_unpack(to_device(candidate, packed), n), to_device(candidate, reference.nibble_unpack(packed, n)), "nibble_unpack")

    prop()


@st.composite
def _grad_sequences(draw: Any) -> tuple[list[tuple[str, tuple[int, ...]]], list[dict[str, np.ndarray]]]:
    k = draw(st.integers(1, 3))
    decl = [(f"p{i}", draw(shapes(max_dims=2, max_side=12))) for i in range(k)]
    steps = []
    for _ in range(draw(st.integers(1, 5))):
        scale = np.float32(2.0 ** draw(st.integers(-40, 40)))
        step = {}
        for name, shp in decl:
            base = draw(hnp.arrays(np.float32, shp, elements=st.floats(-4, 4, width=32)))
            step[name] = (base * scale).astype(np.float32)
        steps.append(step)
    return decl, steps


def check_accumulator(candidate: Any, reference: Any) -> None:
    """TernaryGradientAccumulator in both modes and both count widths: counts, exponents and means."""

    @given(_grad_sequences(), seeds(), st.booleans(), st.floats(0, 2), st.sampled_from([8, 4]))
    def prop(seq: Any, seed: int, stochastic: bool, thr: float, bits: int) -> None:
        decl, steps = seq
        cfg = TernaryConfig(use_stochastic_rounding=stochastic, ternary_threshold=thr, seed=seed)
        ref = TernaryGradientAccumulator(decl, cfg, backend=reference, count_bits=bits)
        cand = TernaryGradientAccumulator(decl, cfg, backend=candidate, count_bits=bits)
        for step in steps:
            ref.accumulate(step)
            cand.accumulate({k: to_device(candidate, v) for k, v in step.items()})
        rs, cs = ref.state_dict()["arrays"], cand.state_dict()["arrays"]
        for i in range(len(decl)):
            assert_bit_equal(cs[f"counts.{i}"], rs[f"counts.{i}"], "counts")
        assert_bit_equal(cs["exp"], rs["exp"], "exponents")
        rm, cm = ref.get_accumulated(), cand.get_accumulated()
        for name, _ in decl:
            assert_bit_equal(cm[name], to_device(candidate, rm[name]), f"mean {name}")

    prop()


def check_compressor(candidate: Any, reference: Any) -> None:
    """VSAGradientCompressor: payload bytes, metadata and decompressed arrays, every mode."""

    @given(
        _grad_sequences(),
        st.integers(1, 600),
        st.floats(0.01, 1.0),
        st.booleans(),
        seeds(),
        st.sampled_from(["bundled", "per_tensor", "per_tensor+ef"]),
    )
    def prop(seq: Any, dim: int, ratio: float, ternary: bool, seed: int, mode: str) -> None:
        decl, steps = seq
        cfg = VSAConfig(dimension=dim, compression_ratio=ratio, use_ternary=ternary, seed=seed)
        kind, ef = mode.split("+")[0], mode.endswith("+ef")
        ref = VSAGradientCompressor(decl, cfg, reference, mode=kind, error_feedback=ef)
        cand = VSAGradientCompressor(decl, cfg, candidate, mode=kind, error_feedback=ef)
        for step in steps[:2]:
            mr = ref.compress(step)
            mc = cand.compress({k: to_device(candidate, v) for k, v in step.items()})
            assert mc.tensors == mr.tensors, "metadata"
            for a, b in zip(mc.payload, mr.payload):
                assert_bit_equal(to_host(a), to_host(b), "payload")
            dr, dc = ref.decompress(mr), cand.decompress(mc)
            for name, _ in decl:
                assert_bit_equal(dc[name], to_device(candidate, dr[name]), f"decompressed {name}")

    prop()


#: Property name -> ``check(candidate, reference)``.
PROPERTIES = {
    "random_signs": check_random_signs,
    "fwht": check_fwht,
    "projection": check_projection,
    "abs_sum_above": check_abs_sum_above,
    "accum_kernels": check_accum_kernels,
    "count_abs_max": check_count_abs_max,
    "nibbles": check_nibbles,
    "accumulator": check_accumulator,
    "accumulator_long_runs": check_accumulator_long_runs,
    "compressor": check_compressor,
}
