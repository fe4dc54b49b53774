"""``out=`` of ternary.unpack and trit bind/unbind: results written where the caller says, bad buffers refused before a write."""

import numpy as np
import pytest

from vsaopt import ternary
from vsaopt.errors import BackendError, ConfigError, DTypeError, EncodingError, ShapeError
from vsaopt.vsa import trit

N = 203  # word and byte paths, a partial last byte in both encodings


def _trits(seed=0, n=N):
    return np.random.default_rng(seed).integers(-1, 2, n, dtype=np.int8)


@pytest.mark.parametrize("encoding", sorted(ternary.ENCODINGS))
def test_unpack_into_out_overwrites_every_byte_and_returns_it(backend, encoding):
    t = backend.xp.asarray(_trits())
    packed = ternary.pack(t, encoding, backend=backend)
    out = backend.xp.full(N, 5, dtype=np.int8)
    assert ternary.unpack(packed, N, encoding, out=out, backend=backend) is out
    assert backend.to_host(out).tobytes() == backend.to_host(t).tobytes()


@pytest.mark.parametrize("op", [trit.bind, trit.unbind])
def test_bind_into_out_keeps_the_shape_and_the_bytes(backend, op):
    a = backend.xp.asarray(_trits(1, 240).reshape(12, 20))
    b = backend.xp.asarray(_trits(2, 240).reshape(12, 20))
    out = backend.xp.full((12, 20), 9, dtype=np.int8)
    assert op(a, b, out=out, backend=backend) is out
    assert backend.to_host(out).tobytes() == backend.to_host(op(a, b, backend=backend)).tobytes()


def _bad_outs():
    base = np.zeros(2 * N, np.int8)
    read_only = np.zeros(N, np.int8)
    read_only.flags.writeable = False
    return [
        (np.zeros(N, np.int16), DTypeError),
        (np.zeros(N + 1, np.int8), ShapeError),
        (base[::2], ShapeError),  # strided
        (read_only, DTypeError),
        ([0] * N, DTypeError),
    ]


@pytest.mark.parametrize("out, error", _bad_outs())
def test_a_bad_out_is_refused_before_anything_is_written(out, error):
    packed = ternary.pack(_trits(), "2bit", backend="numpy")
    snapshot = np.array(out, copy=True)
    with pytest.raises(error):
        ternary.unpack(packed, N, "2bit", out=out, backend="numpy")
    with pytest.raises(error):
        trit.bind(_trits(1), _trits(2), out=out, backend="numpy")
    assert np.array_equal(np.asarray(out), snapshot)


def test_an_out_overlapping_an_input_is_refused():
    a, b = _trits(1), _trits(2)
    with pytest.raises(ConfigError, match="shares memory"):
        trit.bind(a, b, out=a, backend="numpy")
    packed = ternary.pack(_trits(), "2bit", backend="numpy")
    buf = np.zeros(N + 64, np.uint8)
    buf[: packed.size] = packed
    with pytest.raises(ConfigError, match="shares memory"):  # the decode would overwrite bytes it has yet to read
        ternary.unpack(buf[: packed.size], N, "2bit", out=buf[packed.size - 1 : packed.size - 1 + N].view(np.int8), backend="numpy")


def test_a_host_out_for_a_gpu_backend_names_the_backend():
    class FakeGPU:
        name, xp = "fake", np
        array_type = type(None)

        def owns(self, a):
            return False

    from vsaopt._arrays import out_array

    with pytest.raises(BackendError, match="fake"):
        out_array(np.zeros(3, np.int8), "out", FakeGPU(), np.int8, (3,))


def test_malformed_bytes_still_raise_with_out():
    out = np.zeros(8, np.int8)
    with pytest.raises(EncodingError):
        ternary.unpack(np.array([0xFF, 0xFF], np.uint8), 8, "2bit", out=out, backend="numpy")
