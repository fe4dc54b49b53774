"""float32 bit-pattern helpers (vsaopt._bits)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vsaopt import _bits

finite_positive = st.floats(min_value=0.0, max_value=float(np.finfo(np.float32).max), width=32, allow_subnormal=True)


@given(st.integers(0, 2**32 - 1))
def test_f32_from_bits_inverts_the_bit_view(bits):
    v = _bits.f32_from_bits(bits)
    assert isinstance(v, np.float32)
    assert int(np.array(v).view(np.uint32)) == bits


@given(st.integers(0, 2**32 - 1))
def test_sign_cleared_bits_is_the_pattern_of_abs(bits):
    cleared = _bits.sign_cleared_bits(bits)
    assert cleared == bits % 2**31
    v, a = _bits.f32_from_bits(bits), _bits.f32_from_bits(cleared)
    assert not np.signbit(a)
    assert math.isnan(v) or a == abs(v)


@given(finite_positive)
def test_ceil_exponent_is_the_smallest_power_of_two_at_or_above(v):
    bits = int(np.array(np.float32(v)).view(np.uint32))
    e = _bits.ceil_exponent(bits)
    if bits == 0:
        assert e == 0
        return
    assert math.ldexp(1.0, e) >= v > math.ldexp(1.0, e - 1)


@pytest.mark.parametrize("value, expected", [(1.0, 0), (0.5, -1), (3.0, 2), (2.0**-149, -149), (np.finfo(np.float32).max, 128)])
def test_ceil_exponent_examples(value, expected):
    assert _bits.ceil_exponent(int(np.array(np.float32(value)).view(np.uint32))) == expected
