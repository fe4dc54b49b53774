"""The numba word kernels (SWAR packing, bind, paired Philox words) give the bytes of the definitions they replace.

Each fast path is compared byte for byte with the numpy reference on valid
input and with the numba byte kernels (the definition the word kernels
stand in for) on arbitrary bytes, on the serial and the ``prange`` path,
at lengths around word, chunk and tile boundaries and on misaligned views.
Also the benchmark's multiply limit and the Philox rows' ratio.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

numba = pytest.importorskip("numba")

from vsaopt.backends.numba import accum as nb_accum  # noqa: E402
from vsaopt.backends.numba import pack as nb_pack  # noqa: E402
from vsaopt.backends.numba import parallel_threshold  # noqa: E402
from vsaopt.backends.numba import philox as nb_philox  # noqa: E402
from vsaopt.backends.numba import ternary as nb_ternary  # noqa: E402
from vsaopt.backends.numba import vsa as nb_vsa  # noqa: E402
from vsaopt.backends.numpy import accum as ref_accum  # noqa: E402
from vsaopt.backends.numpy import pack as ref_pack  # noqa: E402
from vsaopt.backends.numpy import philox as ref_philox  # noqa: E402
from vsaopt.backends.numpy import ternary as ref_ternary  # noqa: E402
from vsaopt.backends.numpy import vsa as ref_vsa  # noqa: E402

PATHS = [pytest.param(10**15, id="serial"), pytest.param(1, id="prange")]
# lengths around words (8 trits, 40 trits), several parallel chunks of each word kernel, and odd tails
LENGTHS = [*range(0, 90), 319, 320, 321, 1003, 40 * nb_pack.WORD_CHUNK * 2 + 77, 8 * nb_pack.WORD_CHUNK * 3 + 5]


def _same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes()


def _byte_pack(kernel, trits, per):
    """What the byte kernels alone make of ``trits`` (zero-padded last byte)."""
    n = trits.shape[0]
    full, rest = divmod(n, per)
    out = np.empty(full + (rest > 0), dtype=np.uint8)
    bad = bool(kernel(trits[: full * per], out[:full])) if full else False
    if rest:
        pad = np.zeros(per, dtype=np.int8)
        pad[:rest] = trits[full * per :]
        bad |= bool(kernel(pad, out[full:]))
    return out, not bad


def _byte_unpack(kernel, packed, n, per):
    """What the byte kernels alone make of ``packed`` (pad positions checked)."""
    full, rest = divmod(n, per)
    out = np.empty(n, dtype=np.int8)
    bad = bool(kernel(packed[:full], out[: full * per])) if full else False
    if rest:
        tail = np.empty(per, dtype=np.int8)
        bad |= bool(kernel(packed[full:], tail))
        out[full * per :] = tail[:rest]
        bad |= bool(tail[rest:].any())
    return out, not bad


PACKERS = [
    pytest.param(nb_pack.pack_2bit, ref_pack.pack_2bit, nb_pack.pack2, 4, id="2bit"),
    pytest.param(nb_pack.pack_base3, ref_pack.pack_base3, nb_pack.pack3, 5, id="base3"),
]
UNPACKERS = [
    pytest.param(nb_pack.unpack_2bit, ref_pack.unpack_2bit, nb_pack.unpack2, 4, id="2bit"),
    pytest.param(nb_pack.unpack_base3, ref_pack.unpack_base3, nb_pack.unpack3, 5, id="base3"),
]


@pytest.mark.parametrize("threshold", PATHS)
@pytest.mark.parametrize("fast, ref, byte_kernel, per", PACKERS)
def test_pack_words_equal_reference_and_byte_kernels(threshold, fast, ref, byte_kernel, per):
    rng = np.random.default_rng(per)
    with parallel_threshold(threshold):
        for n in LENGTHS:
            for off in (0, 3):  # a misaligned view: the words are read unaligned
                t = rng.integers(-1, 2, n + off, dtype=np.int8)[off:]
                got, ok = fast(t)
                want, ok_ref = ref(t)
                assert ok and ok_ref
                _same(got, want)
            if n:  # one value that is no trit, anywhere: the byte kernels' bytes and flag
                bad = t.copy()
                bad[rng.integers(0, n)] = rng.choice([2, -2, 3, 127, -128, 64, -3])
                got, ok = fast(bad)
                want, ok_byte = _byte_pack(byte_kernel, bad, per)
                assert not ok and not ok_byte
                _same(got, want)


@pytest.mark.parametrize("fast, ref, byte_kernel, per", PACKERS)
def test_pack_every_byte_value_at_every_word_position(fast, ref, byte_kernel, per):
    values = np.arange(-128, 128, dtype=np.int8)
    t = np.concatenate([np.roll(np.resize(values, 40 * 256), k) for k in range(40)])
    got, ok = fast(t)
    want, ok_byte = _byte_pack(byte_kernel, t, per)
    assert ok == ok_byte is False
    _same(got, want)
    valid = np.resize(np.array([-1, 0, 1], np.int8), 40 * 97)
    _same(fast(valid)[0], ref(valid)[0])


@pytest.mark.parametrize("threshold", PATHS)
@pytest.mark.parametrize("fast, ref, byte_kernel, per", UNPACKERS)
def test_unpack_words_equal_reference_and_byte_kernels(threshold, fast, ref, byte_kernel, per):
    rng = np.random.default_rng(10 + per)
    with parallel_threshold(threshold):
        for n in LENGTHS:
            nbytes = -(-n // per)
            for off in (0, 1):
                valid = (nb_pack.pack_2bit if per == 4 else nb_pack.pack_base3)(rng.integers(-1, 2, n, dtype=np.int8))[0]
                packed = np.concatenate([np.zeros(off, np.uint8), valid])[off:]
                got, ok = fast(packed, n)
                want, ok_ref = ref(packed, n)
                assert ok and ok_ref
                _same(got, want)
                arbitrary = rng.integers(0, 256, nbytes + off, dtype=np.uint8)[off:]
                got, ok = fast(arbitrary, n)
                want, ok_byte = _byte_unpack(byte_kernel, arbitrary, n, per)
                assert ok == ok_byte == ref(arbitrary, n)[1]
                _same(got, want)


@pytest.mark.parametrize("fast, ref, byte_kernel, per", UNPACKERS)
def test_unpack_every_byte_value_at_every_word_position(fast, ref, byte_kernel, per):
    packed = np.concatenate([np.roll(np.resize(np.arange(256, dtype=np.uint8), 8 * 64), k) for k in range(8)])
    n = per * packed.size
    got, ok = fast(packed, n)
    want, ok_byte = _byte_unpack(byte_kernel, packed, n, per)
    assert ok == ok_byte is False
    _same(got, want)


@given(raw=st.binary(max_size=200), encoding=st.sampled_from([4, 5]), cut=st.integers(0, 7))
def test_unpack_arbitrary_bytes_as_byte_kernels(raw, encoding, cut):
    packed = np.frombuffer(raw, np.uint8)
    n = max(0, encoding * packed.size - cut % encoding)
    fast, kernel = (nb_pack.unpack_2bit, nb_pack.unpack2) if encoding == 4 else (nb_pack.unpack_base3, nb_pack.unpack3)
    got, ok = fast(packed, n)
    want, ok_byte = _byte_unpack(kernel, packed, n, encoding)
    assert ok == ok_byte
    _same(got, want)


def test_non_contiguous_and_wide_inputs_take_the_byte_kernels():
    rng = np.random.default_rng(3)
    t = rng.integers(-1, 2, 2 * 1001, dtype=np.int8)[::2]
    for fast, ref in ((nb_pack.pack_2bit, ref_pack.pack_2bit), (nb_pack.pack_base3, ref_pack.pack_base3)):
        _same(fast(t)[0], ref(t)[0])
        _same(fast(t.astype(np.int16))[0], ref(t)[0])


@pytest.mark.parametrize("threshold", PATHS)
def test_trit_bind_words_equal_reference_and_byte_kernel(threshold):
    rng = np.random.default_rng(5)
    lengths = [*range(0, 70), 8 * nb_vsa.WORD_CHUNK * 3 + 13]
    with parallel_threshold(threshold):
        for n in lengths:
            a = rng.integers(-1, 2, n + 1, dtype=np.int8)[1:]
            b = rng.integers(-1, 2, n, dtype=np.int8)
            for fast, ref, sign in ((nb_vsa.trit_bind, ref_vsa.trit_bind, -1), (nb_vsa.trit_unbind, ref_vsa.trit_unbind, 1)):
                _same(fast(a, b), ref(a, b))
                if n:  # non-trits: the byte kernel's bytes (only its chunk falls back)
                    wild = a.copy()
                    wild[rng.integers(0, n)] = 5
                    want = np.empty(n, np.int8)
                    nb_vsa._bind_serial(wild, b, np.int8(sign), want)
                    _same(fast(wild, b), want)
        x = rng.integers(-128, 128, 4099, dtype=np.int8)
        y = rng.integers(-128, 128, 4099, dtype=np.int8)
        want = np.empty(x.size, np.int8)
        nb_vsa._bind_serial(x, y, np.int8(-1), want)
        _same(nb_vsa.trit_bind(x, y), want)


SEEDS = [0, 1, 2**32 - 1, 2**32, 2**64 - 1, 0x0123456789ABCDEF]


@pytest.mark.parametrize("threshold", PATHS)
def test_philox_bits_pairs_equal_reference(threshold):
    with parallel_threshold(threshold):
        for n in [*range(0, 13), 1001, 4 * nb_philox.CHUNK_BLOCKS * 2 + 7]:
            for seed in SEEDS:
                for words in ((0, 0, 0), (7, 2**32 - 1, 5), (2**32 - 1, 3, 2**32 - 1)):
                    _same(nb_philox.philox_bits(n, seed, *words), ref_philox.philox_bits(n, seed, *words))


@pytest.mark.parametrize("threshold", PATHS)
def test_stochastic_tiles_equal_reference(threshold):
    rng = np.random.default_rng(6)
    sizes = [0, 1, 5, 4 * nb_ternary.TILE_BLOCKS + 3, 4 * nb_philox.CHUNK_BLOCKS + 4 * nb_ternary.TILE_BLOCKS + 1]
    with parallel_threshold(threshold):
        for n in sizes:
            x = rng.standard_normal(n).astype(np.float32)
            x[::7] = 0.0
            for scale in (float(np.abs(x).max()) if n else 1.0, 1e-30, 3.0):
                for seed in (0, 2**64 - 1):
                    _same(nb_ternary.quantize_stochastic(x, scale, seed, 3, 2**32 - 1, 9),
                          ref_ternary.quantize_stochastic(x, scale, seed, 3, 2**32 - 1, 9))


@pytest.mark.parametrize("threshold", PATHS)
def test_accum_add_stochastic_tiles_equal_reference(threshold):
    rng = np.random.default_rng(7)
    sizes = [0, 3, 4 * nb_accum.TILE_BLOCKS + 2, 4 * nb_accum.CHUNK_BLOCKS * 2 + 4 * nb_accum.TILE_BLOCKS + 3]
    with parallel_threshold(threshold):
        for n in sizes:
            g = rng.standard_normal(n).astype(np.float32)
            counts = rng.integers(-100, 100, n, dtype=np.int8)
            for inv in (0.25, 1.0):
                got = nb_accum.accum_add_stochastic(counts.copy(), g, inv, 2**64 - 1, 7, 2**32 - 1, 3)
                want = ref_accum.accum_add_stochastic(counts.copy(), g, inv, 2**64 - 1, 7, 2**32 - 1, 3)
                _same(got, want)


def test_multiply_limit_and_philox_ratio():
    from vsaopt.benchmarks import kernels as kb

    rate, row = kb.multiply_throughput(tasks=4, repeat=1)
    assert rate > 0 and row.seconds > 0
    assert len(set(kb.MULTIPLIERS)) == 4 * kb.PHILOX_MULTIPLIES_PER_ELEMENT and all(int(c) % 2 and int(c) < 2**32 for c in kb.MULTIPLIERS)
    assert rate == pytest.approx(len(kb.MULTIPLIERS) * 4 * kb.MULTIPLY_TILE * kb.MULTIPLY_PASSES / row.seconds)
    assert row.gelem_per_s == pytest.approx(rate / kb.PHILOX_MULTIPLIES_PER_ELEMENT / 1e9, rel=1e-6)
    rows = {r.name: r for r in kb.kernel_throughput(4096, 1e10, "numba", repeat=1)}
    limit = rows["multiply limit: 5 x (32x32 -> 64) a Philox element"]
    for name in ("philox_bits", "quantize_stochastic (Philox)"):
        r = rows[name]
        assert r.fraction_of_bandwidth == pytest.approx(r.gelem_per_s / limit.gelem_per_s)
    assert all(r.seconds > 0 and r.fraction_of_bandwidth > 0 for r in rows.values())
