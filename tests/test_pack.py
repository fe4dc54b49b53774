"""Trit packing: round trips, sizes, the byte layout, malformed data."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vsaopt import ternary
from vsaopt.errors import ConfigError, DTypeError, EncodingError, ShapeError
from vsaopt.testing import assert_bit_equal, to_host
from vsaopt.testing.strategies import trit_arrays

ENCODINGS = sorted(ternary.ENCODINGS)


@pytest.mark.parametrize("encoding", ENCODINGS)
@given(t=trit_arrays())
def test_round_trip(encoding, t):
    packed = ternary.pack(t, encoding, backend="numpy")
    assert packed.dtype == np.uint8 and packed.size == ternary.packed_size(t.size, encoding)
    assert_bit_equal(ternary.unpack(packed, t.size, encoding, backend="numpy"), np.ascontiguousarray(t).reshape(-1))


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_round_trip_each_backend(backend, encoding):
    t = np.resize(np.array([1, 0, -1, -1, 1], np.int8), 1003)
    packed = ternary.pack(backend.xp.asarray(t), encoding, backend=backend)
    assert_bit_equal(to_host(ternary.unpack(packed, t.size, encoding, backend=backend)), t)


def test_layout():
    assert ternary.pack(np.array([1, -1, 0, 1], np.int8), backend="numpy").tolist() == [1 | 2 << 2 | 0 << 4 | 1 << 6]
    assert ternary.pack(np.array([1, -1, 0, 1, -1], np.int8), "base3", backend="numpy").tolist() == [1 + 6 + 0 + 27 + 162]


@given(st.binary(max_size=64), st.sampled_from(ENCODINGS))
def test_arbitrary_bytes_decode_or_raise(raw, encoding):
    """Every byte string either decodes to trits that re-pack to it, or raises EncodingError."""
    data = np.frombuffer(raw, np.uint8)
    n = data.size * ternary.ENCODINGS[encoding]
    try:
        t = ternary.unpack(data, n, encoding, backend="numpy")
    except EncodingError:
        return
    assert_bit_equal(ternary.pack(t, encoding, backend="numpy"), data)


@pytest.mark.parametrize(
    "packed, n, encoding, error",
    [
        ([3], 4, "2bit", EncodingError),
        ([0b01000000], 3, "2bit", EncodingError),
        ([243], 5, "base3", EncodingError),
        ([81], 4, "base3", EncodingError),
        ([0, 0], 4, "2bit", ShapeError),
        ([0], 6, "base3", ShapeError),
        ([0], 1, "3bit", EncodingError),
        ([0.5], 1, "2bit", DTypeError),
        ([300], 4, "2bit", ConfigError),
    ],
)
def test_malformed(backend, packed, n, encoding, error):
    with pytest.raises(error):
        ternary.unpack(backend.xp.asarray(np.array(packed)), n, encoding, backend=backend)


@pytest.mark.parametrize("trits, error", [([0, 2], ConfigError), ([0.0, 1.0], DTypeError), ([-2], ConfigError)])
def test_pack_rejects_non_trits(trits, error):
    with pytest.raises(error, match="trits"):
        ternary.pack(np.array(trits), backend="numpy")


def test_packed_size():
    assert [ternary.packed_size(n) for n in (0, 1, 4, 5)] == [0, 1, 1, 2]
    assert [ternary.packed_size(n, "base3") for n in (0, 1, 5, 6)] == [0, 1, 1, 2]
    with pytest.raises(EncodingError):
        ternary.packed_size(3, "4bit")
