"""The comm hook's kernels (``comm_*``, ``spec/comm.md``): every backend gives the reference's bytes.

Hypothesis properties run each fast backend (and numba's ``prange`` variants)
against the numpy reference on generated buckets: chunk sizes that are not
multiples of 4, chunks of zeros, non-finite chunks, subnormal and huge
values, shared scales larger than a rank's own, corrupted payloads.  The
cupy kernels run on the host under the emulation of ``test_cupy_backend.py``.
"""

from __future__ import annotations

import contextlib
import ctypes
import subprocess
import sys
import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vsaopt.testing import assert_bit_equal, to_host

SEED = 0x0123456789ABCDEF
HOOK_STREAM, SUM_STREAM = 0x5445524E, 0x5452534D
INF_BITS = 0x7F800000

SPECIAL = [0.0, -0.0, 1.0, -1.0, 1e-45, -1e-45, 1.17e-38, 3.4e38, -3.4e38, 1e-30, 0.75, -0.5]
FINITE = st.one_of(st.floats(-4.0, 4.0, width=32), st.floats(width=32, allow_nan=False, allow_infinity=False),
                   st.sampled_from(SPECIAL))
ANY = st.one_of(FINITE, st.sampled_from([np.inf, -np.inf, np.nan]))


@st.composite
def buckets(draw, max_len: int = 200):
    """A float32 bucket: mixed magnitudes, sometimes a few repeated values, sometimes NaN or Inf."""
    n = draw(st.one_of(st.sampled_from([0, 1, 3, 4, 5, 8, 63, 64, 65]), st.integers(0, max_len)))
    pool = draw(st.one_of(st.just(None), st.lists(FINITE, min_size=1, max_size=3)))
    elements = st.one_of(FINITE, FINITE, FINITE, ANY) if pool is None else st.sampled_from(pool)
    return draw(hnp.arrays(np.float32, n, elements=elements))


def chunks():
    """Chunk sizes: 1 to 3 (bytes shared by several chunks), multiples of 4 and not."""
    return st.one_of(st.sampled_from([1, 2, 3, 4, 5, 7, 8, 12, 64]), st.integers(1, 90))


def same(got, want, what):
    """Same dtype, shape and bytes (``None`` only for ``None``)."""
    if want is None:
        assert got is None, what
        return
    assert_bit_equal(to_host(got), to_host(want), what)


def on(be, a):
    """``a`` where ``be`` computes (a copy: kernels may update residuals in place)."""
    return None if a is None else be.xp.asarray(np.array(a, copy=True))


def payload_scales(bits):
    """What the all-gather scheme sends as scales: the float32 of each bit pattern, NaN for a non-finite chunk."""
    return np.where(bits >= INF_BITS, 0x7FC00000, bits).astype(np.int32).view(np.float32)


@contextlib.contextmanager
def variant(be, name):
    """The kernels as they run by default, or (numba) their prange variants forced for every size."""
    if name == "serial":
        yield
        return
    if be.name != "numba":
        pytest.skip("the parallel threshold is a numba setting")
    from vsaopt.backends.numba import parallel_threshold

    with parallel_threshold(1):
        yield


VARIANTS = pytest.mark.parametrize("path", ["serial", "prange"])


@VARIANTS
def test_scale_bits_identity(fast_backend, reference, path):
    @given(x=buckets(), with_r=st.booleans(), chunk=chunks(), data=st.data())
    def prop(x, with_r, chunk, data):
        r = data.draw(hnp.arrays(np.float32, x.shape[0], elements=ANY)) if with_r else None
        with np.errstate(all="ignore"):
            want = reference.comm_scale_bits(x, r, chunk)
            same(fast_backend.comm_scale_bits(on(fast_backend, x), on(fast_backend, r), chunk), want, "comm_scale_bits")
            v = x if r is None else x + r
        for c in range(want.shape[0]):
            assert int(want[c]) == int((v[c * chunk : (c + 1) * chunk].view(np.uint32) & 0x7FFFFFFF).max())

    with variant(fast_backend, path):
        prop()


@VARIANTS
def test_encode_identity(fast_backend, reference, path):
    @given(x=buckets(), with_r=st.booleans(), feedback=st.booleans(), shared=st.sampled_from(["local", "max", "above", "nonfinite"]),
           chunk=chunks(), pad=st.integers(0, 9), step=st.integers(0, 2**32 - 1), base=st.integers(0, 2**22 - 1), data=st.data())
    def prop(x, with_r, feedback, shared, chunk, pad, step, base, data):
        n = x.shape[0]
        r = data.draw(hnp.arrays(np.float32, n, elements=FINITE)) if with_r else None
        with np.errstate(all="ignore"):
            bits = None if shared == "local" else reference.comm_scale_bits(x, r, chunk)
        if shared == "above" and bits.size:  # another rank's larger maximum
            bits = np.maximum(bits, data.draw(hnp.arrays(np.int32, bits.shape, elements=st.integers(0, INF_BITS - 1))))
        if shared == "nonfinite" and bits.size:
            bits[data.draw(st.integers(0, bits.size - 1))] = data.draw(st.sampled_from([INF_BITS, 0x7FC00000, 0x7F800001]))
        args = (chunk, -(-n // 4) + pad, SEED, HOOK_STREAM, step, base << 10, feedback)
        ref_r, got_r = on(reference, r), on(fast_backend, r)
        with np.errstate(all="ignore"):
            want = reference.comm_encode(x, ref_r, bits, *args)
            got = fast_backend.comm_encode(on(fast_backend, x), got_r, on(fast_backend, bits), *args)
        for i, what in enumerate(("packed", "bits", "residual")):
            same(got[i], want[i], f"comm_encode {what}")
        if feedback and r is not None:  # the residual is updated in place
            assert want[2] is ref_r
            same(got_r, want[2], "residual updated in place")
        elif r is not None:
            same(got_r, r, "residual left as it was")
        if feedback:
            assert np.isfinite(to_host(want[2])).all()

    with variant(fast_backend, path):
        prop()


@VARIANTS
def test_decode_trits_identity(fast_backend, reference, path):
    @given(world=st.integers(1, 5), chunk=chunks(), n=st.integers(0, 150), corrupt=st.sampled_from([None, "code", "pad"]),
           data=st.data())
    def prop(world, chunk, n, corrupt, data):
        rows = []
        for rank in range(world):
            x = data.draw(hnp.arrays(np.float32, n, elements=st.one_of(FINITE, FINITE, ANY)))
            with np.errstate(all="ignore"):
                packed, bits, _ = reference.comm_encode(x, None, None, chunk, -(-n // 4), SEED, HOOK_STREAM, 5, rank << 20, False)
            rows.append(np.concatenate([payload_scales(bits).view(np.uint8), packed]))
        k = -(-n // chunk)
        payloads = np.stack(rows)
        if corrupt == "code" and n:  # a code 3 at some trit (or pad) position
            byte = 4 * k + data.draw(st.integers(0, -(-n // 4) - 1))
            payloads[data.draw(st.integers(0, world - 1)), byte] |= 3 << (2 * data.draw(st.integers(0, 3)))
        if corrupt == "pad" and n % 4:
            payloads[data.draw(st.integers(0, world - 1)), -1] |= 0x40
        scales = np.ascontiguousarray(payloads[:, : 4 * k]).view(np.float32)
        want = np.empty(n, np.float32)
        got = fast_backend.xp.empty(n, dtype=fast_backend.xp.float32)
        with np.errstate(all="ignore"):
            ok = reference.comm_decode_trits(payloads, 4 * k, scales, chunk, want)
            got_ok = fast_backend.comm_decode_trits(on(fast_backend, payloads), 4 * k, on(fast_backend, scales), chunk, got)
        assert got_ok == ok
        assert ok == (corrupt is None or not n or (corrupt == "pad" and n % 4 == 0))
        same(got, want, "comm_decode_trits")

    with variant(fast_backend, path):
        prop()


@VARIANTS
def test_reduce_shard_identity(fast_backend, reference, path):
    from vsaopt.torch.trit_reduce_scatter import sum_shift

    @given(world=st.one_of(st.integers(1, 9), st.sampled_from([15, 127, 128, 200, 4096])), q=st.integers(0, 70),
           shift=st.one_of(st.just(None), st.integers(0, 12)), step=st.integers(0, 2**32 - 1), data=st.data())
    def prop(world, q, shift, step, data):
        received = data.draw(hnp.arrays(np.uint8, world * q, elements=st.integers(0, 255)))
        args = (world, sum_shift(world) if shift is None else shift, SEED, SUM_STREAM, step, (3 << 20) | (7 << 10))
        same(fast_backend.comm_reduce_shard(on(fast_backend, received), *args), reference.comm_reduce_shard(received, *args),
             "comm_reduce_shard")

    with variant(fast_backend, path):
        prop()


@VARIANTS
def test_decode_nibbles_identity(fast_backend, reference, path):
    special = st.sampled_from([0, 1, 0x00800000, 0x3F800000, 0x7F7FFFFF, INF_BITS, 0x7FC00000])

    @given(n=st.integers(0, 200), chunk=chunks(), world=st.integers(1, 300), shift=st.integers(0, 10), data=st.data())
    def prop(n, chunk, world, shift, data):
        gathered = data.draw(hnp.arrays(np.uint8, (n + 1) // 2 + data.draw(st.integers(0, 3)), elements=st.integers(0, 255)))
        bits = data.draw(hnp.arrays(np.int32, -(-n // chunk), elements=st.one_of(st.integers(0, INF_BITS - 1), special)))
        want = np.empty(n, np.float32)
        got = fast_backend.xp.empty(n, dtype=fast_backend.xp.float32)
        with np.errstate(all="ignore"):
            reference.comm_decode_nibbles(gathered, bits, chunk, world, shift, want)
            out = fast_backend.comm_decode_nibbles(on(fast_backend, gathered), on(fast_backend, bits), chunk, world, shift, got)
        assert out is got
        same(got, want, "comm_decode_nibbles")

    with variant(fast_backend, path):
        prop()


def test_encode_follows_the_quantizer_and_packing(reference):
    """comm_encode is the per-chunk quantize_stochastic, packed 2-bit, with the spec's residual."""
    from vsaopt.ternary import pack, quantize_stochastic

    rng = np.random.default_rng(3)
    x = (rng.standard_normal(1003) * np.geomspace(1e-6, 3, 1003)).astype(np.float32)
    x[400:500] = -0.0
    r = (rng.standard_normal(1003) * 1e-3).astype(np.float32)
    r[400:500] = -0.0
    chunk, base = 100, (2 << 20) | (9 << 10)
    packed, bits, res = reference.comm_encode(x, r.copy(), None, chunk, 251, SEED, HOOK_STREAM, 77, base, True)
    v = x + r
    trits = np.concatenate([quantize_stochastic(v[lo : lo + chunk], SEED, HOOK_STREAM, 77, base | (lo // chunk), backend="numpy")[0]
                            for lo in range(0, 1003, chunk)])
    assert packed.tobytes() == pack(trits, backend="numpy").tobytes()
    scales = np.repeat(payload_scales(bits), chunk)[:1003]
    assert res.tobytes() == (v - trits.astype(np.float32) * scales).tobytes()
    assert int(bits[4]) == 0 and res[400:500].tobytes() == v[400:500].tobytes()  # a chunk of -0.0: scale 0, no trits
    assert np.signbit(res[400:500]).all()


def test_non_finite_chunks_send_no_trits_and_keep_a_zero_residual(backend):
    x = np.linspace(-1, 1, 40, dtype=np.float32)
    x[13] = np.inf  # chunk 1 (elements 8..15, bytes 2..3)
    x[25] = np.nan  # chunk 3 (elements 24..31, bytes 6..7)
    r = np.full(40, 0.25, np.float32)
    with np.errstate(all="ignore"):
        packed, bits, res = backend.comm_encode(on(backend, x), on(backend, r), None, 8, 10, 1, HOOK_STREAM, 0, 0, True)
    packed, bits, res = to_host(packed), to_host(bits), to_host(res)
    assert [int(b) >= INF_BITS for b in bits] == [False, True, False, True, False]
    assert not packed[2:4].any() and not packed[6:8].any() and packed[:2].any() and packed[8:].any()
    assert res[8:16].tobytes() == res[24:32].tobytes() == np.zeros(8, np.float32).tobytes() and np.isfinite(res).all()


def test_planted_ties_and_range_edges(backend, reference):
    check_planted(backend, reference)


def check_planted(backend, reference):
    """Inputs random draws almost never produce: ``u == |v| / s``, ``w == (C mod 2**shift) << (32 - shift)``, sums past the float range."""
    # encode: |v| / s equals the element's uniform exactly (scale 1): not kept; one ulp above: kept
    n, base = 64, (2 << 20) | (5 << 10)
    u = reference.uniform_f32(n, SEED, HOOK_STREAM, 3, base)
    x = np.where(np.arange(n) % 2 == 0, u, np.nextafter(u, np.float32(1))).astype(np.float32)
    x[1::4] *= -1
    x[0] = 1.0  # the chunk's maximum: scale 1 (u[0] < 1, so element 0 is kept)
    want = reference.comm_encode(x, None, None, n, n // 4, SEED, HOOK_STREAM, 3, base, True)
    codes = (want[0][:, None] >> np.arange(0, 8, 2, dtype=np.uint8)) & 3
    kept = codes.reshape(-1) != 0
    assert kept[0] and not kept[2::2].any() and kept[1::2].all()
    got = backend.comm_encode(on(backend, x), None, None, n, n // 4, SEED, HOOK_STREAM, 3, base, True)
    for i in range(3):
        same(got[i], want[i], f"planted encode [{i}]")
    # shard sums: element 8 of step 113399 draws w = 99 << 22; 99 ranks vote +1 there, so C mod 2**10 << 22 == w (no round up)
    world, shift, step, tensor = 128, 10, 113399, (3 << 20) | (7 << 10)
    assert int(reference.philox_bits(12, SEED, SUM_STREAM, step, tensor)[8]) == 99 << 22
    received = np.zeros((world, 3), np.uint8)
    received[:99, 2] = 1  # code 1 (+1) of element 8 in each of 99 shards
    received[:, 0] = np.random.default_rng(0).integers(0, 256, world).astype(np.uint8) & 0x55  # +1 / 0 codes elsewhere
    args = (world, shift, SEED, SUM_STREAM, step, tensor)
    want = reference.comm_reduce_shard(received.reshape(-1), *args)
    assert want[4] & 15 == 0
    same(backend.comm_reduce_shard(on(backend, received.reshape(-1)), *args), want, "planted reduce_shard")
    # decode: sums that overflow to Inf, subnormal scales whose halves round to zero, three ranks
    big, tiny = np.float32(3.4028235e38), np.float32(1e-45)
    for world, scale in ((2, big), (2, tiny), (3, big), (3, tiny), (4, np.float32(3e-39))):
        payloads = np.zeros((world, 8), np.uint8)
        payloads[:, :4] = np.array([scale], np.float32).view(np.uint8)
        payloads[:, 4:] = 0x55  # every trit +1
        payloads[-1, 5] = 0xAA  # the last rank sends -1 for elements 4..7
        scales = np.ascontiguousarray(payloads[:, :4]).view(np.float32)
        want = np.empty(16, np.float32)
        with np.errstate(all="ignore"):
            assert reference.comm_decode_trits(payloads, 4, scales, 16, want)
            got = backend.xp.empty(16, dtype=backend.xp.float32)
            assert backend.comm_decode_trits(on(backend, payloads), 4, on(backend, scales), 16, got)
        same(got, want, f"planted decode W={world} s={scale}")


# --- the cupy kernels on the host emulation of test_cupy_backend.py ------------------------------


@pytest.fixture(scope="module")
def comm_library(tmp_path_factory):
    """``(library, {kernel: parameter types})`` of ``comm.cu`` compiled for the host against the CUDA emulation."""
    tcb = pytest.importorskip("test_cupy_backend")
    if tcb.GXX is None:
        pytest.skip("g++ is not on PATH: the host emulation cannot be built")
    text = tcb._build().source_text("comm.cu")
    sigs = {name: tcb._param_types(params) for name, params in tcb.KERNEL_SIG.findall(text)}
    thunks = [f'extern "C" void emu_{name}(unsigned g, unsigned b, void** a) '
              f"{{ emu_launch(g, b, [&] {{ {name}({', '.join(f'*({t}*)a[{i}]' for i, t in enumerate(types))}); }}); }}"
              for name, types in sigs.items()]
    out = tmp_path_factory.mktemp("emu_comm")
    cpp, so = out / "comm.cpp", out / "comm.so"
    cpp.write_text(tcb.EMU_SHIM + "\n" + text + "\n" + "\n".join(thunks) + "\n", encoding="utf-8")
    proc = subprocess.run([tcb.GXX, "-std=c++17", "-O1", "-ffp-contract=off", "-fno-fast-math", "-fno-strict-aliasing", "-fPIC",
                           "-shared", "-w", "-o", str(so), str(cpp)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[:3000]
    return ctypes.CDLL(str(so)), sigs


@pytest.fixture(params=[64, 256], ids=["64 threads", "256 threads"])
def emu_comm(request, comm_library, monkeypatch):
    """The cupy ``comm_*`` wrappers launching the host-compiled kernels on numpy stand-ins for cupy arrays."""
    import importlib

    tcb = sys.modules["test_cupy_backend"]
    bld = importlib.import_module("vsaopt.backends.cupy._build")
    lib, sigs = comm_library
    monkeypatch.setitem(sys.modules, "cupy", tcb._fake_cupy_namespace())
    monkeypatch.setattr(bld, "function", lambda src, name: tcb._EmuKernel(lib, name, sigs[name]))
    monkeypatch.setattr(bld, "multiprocessors", lambda: 1)
    monkeypatch.setattr(bld, "BLOCKS_PER_SM", 2)  # at most two blocks: every grid-stride loop wraps
    monkeypatch.setattr(bld, "THREADS", request.param)
    return importlib.import_module("vsaopt.backends.cupy.comm").KERNELS, tcb._dev


def test_emulated_comm_kernels(emu_comm, reference):
    kernels, dev = emu_comm
    check_planted(types.SimpleNamespace(name="cupy", xp=sys.modules["cupy"], **kernels), reference)
    rng = np.random.default_rng(12)
    for n, chunk in ((1, 1), (7, 3), (1001, 300), (1030, 5), (4099, 4096), (9000, 4500), (50, 64)):
        x = (rng.standard_normal(n) * 2.0 ** rng.integers(-20, 20, n)).astype(np.float32)
        x[::9] = 0.0
        x[1::11] = -0.0
        r = (rng.standard_normal(n) * 1e-2).astype(np.float32)
        if n > 1000:
            x[n // 2] = np.inf
            x[: min(chunk, 200)] = 0.0
        with np.errstate(all="ignore"):
            for res in (None, r):
                want = reference.comm_scale_bits(x, res, chunk)
                same(kernels["comm_scale_bits"](dev(x), None if res is None else dev(res), chunk), want, f"scale_bits n={n}")
            for res, bits, feedback in ((None, None, False), (r, None, True), (None, want, True), (r, want, False)):
                args = (chunk, -(-n // 4) + 3, SEED, HOOK_STREAM, 11, (1 << 20) | (4 << 10), feedback)
                ref_r, emu_r = (None, None) if res is None else (res.copy(), dev(res))
                expect = reference.comm_encode(x, ref_r, bits, *args)
                got = kernels["comm_encode"](dev(x), emu_r, None if bits is None else dev(bits), *args)
                for i in range(3):
                    same(None if got[i] is None else np.asarray(got[i]), expect[i], f"encode[{i}] n={n} chunk={chunk}")
        for world in (1, 2, 3):
            rows = []
            for rank in range(world):
                with np.errstate(all="ignore"):
                    p, bt, _ = reference.comm_encode(np.roll(x, rank), None, None, chunk, -(-n // 4), SEED, HOOK_STREAM, 2, rank << 20,
                                                     False)
                rows.append(np.concatenate([payload_scales(bt).view(np.uint8), p]))
            payloads, k = np.stack(rows), -(-n // chunk)
            scales = np.ascontiguousarray(payloads[:, : 4 * k]).view(np.float32)
            for bad in (False, True):
                if bad:
                    payloads[world - 1, -1] |= 0xC0
                want = np.empty(n, np.float32)
                with np.errstate(all="ignore"):
                    ok = reference.comm_decode_trits(payloads, 4 * k, scales, chunk, want)
                out = dev(np.empty(n, np.float32))
                assert kernels["comm_decode_trits"](dev(payloads), 4 * k, dev(scales), chunk, out) == ok
                same(np.asarray(out), want, f"decode_trits n={n} W={world}")
    for world in (1, 2, 4, 8, 15, 200):
        from vsaopt.torch.trit_reduce_scatter import sum_shift

        received = rng.integers(0, 256, world * 37, dtype=np.uint8)
        args = (world, sum_shift(world), SEED, SUM_STREAM, 9, 5 << 10)
        same(np.asarray(kernels["comm_reduce_shard"](dev(received), *args)), reference.comm_reduce_shard(received, *args),
             f"reduce_shard W={world}")
        for n, chunk in ((1, 1), (9, 2), (301, 100), (1000, 333)):
            gathered = rng.integers(0, 256, (n + 1) // 2, dtype=np.uint8)
            bits = rng.integers(0, INF_BITS, -(-n // chunk)).astype(np.int32)
            bits[0] = 0x7FC00000 if n > 100 else bits[0]
            want = np.empty(n, np.float32)
            with np.errstate(all="ignore"):
                reference.comm_decode_nibbles(gathered, bits, chunk, world, sum_shift(world), want)
            out = dev(np.empty(n, np.float32))
            kernels["comm_decode_nibbles"](dev(gathered), dev(bits), chunk, world, sum_shift(world), out)
            same(np.asarray(out), want, f"decode_nibbles n={n} W={world}")
