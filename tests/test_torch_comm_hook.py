"""The ternary DDP comm hook on a one-process gloo group: exact arithmetic, counter layout, error feedback, fallbacks."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

from vsaopt.errors import ConfigError  # noqa: E402
from vsaopt.ternary import quantize_stochastic  # noqa: E402
from vsaopt.torch.comm_hook import (  # noqa: E402
    COMM_HOOK_STREAM,
    MAX_CHUNKS,
    CommStats,
    TernaryCommState,
    ternary_comm_hook,
)

if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    if dist.is_initialized():
        pytest.skip("a default process group already exists in this process")
    store = tmp_path_factory.mktemp("pg") / "store"
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)
    try:
        yield dist.group.WORLD
    finally:
        dist.destroy_process_group()


class Bucket:
    """What the hook reads of a torch.distributed.GradBucket."""

    def __init__(self, tensor, index=0, last=True):
        self._t, self._i, self._last = tensor, index, last

    def buffer(self):
        return self._t

    def index(self):
        return self._i

    def is_last(self):
        return self._last


def run(state, x, index=0, last=True):
    return ternary_comm_hook(state, Bucket(x, index, last)).wait()


def expected(x, state, index, step):
    """scale * trits per chunk, from the library quantizer and the documented counter layout (rank 0)."""
    flat = x.detach().to(torch.float32).numpy().reshape(-1)
    out = np.empty_like(flat)
    for c, (lo, hi) in enumerate(state.chunk_bounds(flat.size)):
        t, s = quantize_stochastic(flat[lo:hi], state.seed, COMM_HOOK_STREAM, step, (index << 10) | c, backend="numpy")
        out[lo:hi] = t.astype(np.float32) * s
    return out


def grad(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=g) * torch.linspace(0.01, 2.0, n)


def test_stream_tag_is_ascii_tern():
    assert COMM_HOOK_STREAM.to_bytes(4, "big") == b"TERN"


def test_decoded_bucket_is_the_documented_quantization(group):
    state = TernaryCommState(seed=11, chunk_size=1000, backend="numpy")
    x = grad(2500)
    got = run(state, x.clone(), index=3)
    assert got.dtype == torch.float32 and got.shape == x.shape
    assert np.array_equal(got.numpy(), expected(x, state, 3, 0))
    # the next call of the same bucket uses step 1: other trits, still as documented
    got1 = run(state, x.clone(), index=3)
    assert np.array_equal(got1.numpy(), expected(x, state, 3, 1))
    assert not torch.equal(got, got1)
    # another bucket index draws other trits
    other = run(TernaryCommState(seed=11, chunk_size=1000, backend="numpy"), x.clone(), index=4)
    assert not torch.equal(other, got)


def test_same_seed_reproduces_and_other_seed_differs(group):
    x = grad(3000, seed=1)
    a = run(TernaryCommState(seed=5, backend="numpy"), x.clone())
    b = run(TernaryCommState(seed=5, backend="numpy"), x.clone())
    c = run(TernaryCommState(seed=6, backend="numpy"), x.clone())
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_numba_backend_gives_the_same_bytes(group):
    pytest.importorskip("numba")
    x = grad(5000, seed=2)
    a = run(TernaryCommState(seed=9, chunk_size=777, backend="numpy"), x.clone())
    b = run(TernaryCommState(seed=9, chunk_size=777, backend="numba"), x.clone())
    assert a.numpy().tobytes() == b.numpy().tobytes()


def test_values_are_trits_times_chunk_scale(group):
    state = TernaryCommState(seed=0, chunk_size=512, backend="numpy")
    x = grad(2048, seed=3)
    got = run(state, x.clone())
    for lo, hi in state.chunk_bounds(2048):
        s = x[lo:hi].abs().max()
        vals = set(got[lo:hi].unique().tolist())
        assert vals <= {-s.item(), 0.0, s.item()}
        # elements with |x| == max are always kept
        k = int(x[lo:hi].abs().argmax())
        assert got[lo + k] == x[lo + k]


def test_chunk_bounds_cap_the_number_of_chunks():
    state = TernaryCommState(chunk_size=1)
    bounds = state.chunk_bounds(MAX_CHUNKS * 3 + 1)
    assert len(bounds) <= MAX_CHUNKS
    assert bounds[0][0] == 0 and bounds[-1][1] == MAX_CHUNKS * 3 + 1
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))


def test_error_feedback_carries_what_the_trits_dropped(group):
    def errors(error_feedback):
        state = TernaryCommState(seed=3, chunk_size=256, error_feedback=error_feedback, backend="numpy")
        total_in = torch.zeros(1024, dtype=torch.float64)
        total_out = torch.zeros(1024, dtype=torch.float64)
        err = {}
        for k in range(1, 101):
            x = grad(1024, seed=100 + k)
            total_in += x.double()
            total_out += run(state, x.clone()).double()
            if k in (20, 100):
                err[k] = float((total_out - total_in).norm())
        return state, total_in, total_out, err

    state, total_in, total_out, ef = errors(True)
    r = state.residual(0)
    assert r is not None and r.shape == (1024,) and bool(torch.isfinite(r).all())
    # sum of outputs + remaining residual == sum of inputs (telescoping, float32 rounding only)
    assert torch.allclose(total_out + r.double(), total_in, atol=1e-3)
    # the error of the running sum stays bounded with feedback and grows like sqrt(steps) without
    _, _, _, plain = errors(False)
    assert ef[100] < 1.25 * ef[20]
    assert plain[100] > 1.8 * plain[20]
    assert plain[100] > 1.8 * ef[100]


def test_error_feedback_resets_when_a_bucket_changes_size(group):
    state = TernaryCommState(seed=3, error_feedback=True, backend="numpy")
    run(state, grad(2000))
    assert state.residual(0).shape == (2000,)
    x = grad(1500, seed=4)
    got = run(state, x.clone())
    assert np.array_equal(got.numpy(), expected(x, state, 0, 1))
    assert state.residual(0).shape == (1500,)


def test_non_finite_chunk_becomes_nan_on_every_rank(group):
    state = TernaryCommState(seed=0, chunk_size=100, error_feedback=True, backend="numpy")
    x = grad(1200)
    x[150] = float("inf")
    got = run(state, x.clone())
    assert bool(torch.isnan(got[100:200]).all())
    assert bool(torch.isfinite(got[:100]).all()) and bool(torch.isfinite(got[200:]).all())
    assert bool(torch.isfinite(state.residual(0)).all())


def test_half_precision_buckets_keep_their_dtype(group):
    for dtype in (torch.float16, torch.bfloat16):
        state = TernaryCommState(seed=1, backend="numpy")
        x = grad(2048).to(dtype)
        got = run(state, x.clone())
        assert got.dtype == dtype
        want = torch.from_numpy(expected(x, state, 0, 0)).to(dtype)
        assert torch.equal(got, want)


def test_small_buckets_use_the_fp32_all_reduce(group):
    state = TernaryCommState(seed=1, min_compress_numel=1000, backend="numpy")
    x = grad(999)
    got = run(state, x.clone())
    assert torch.equal(got, x)  # the mean over one rank
    s = state.stats()
    assert (s.fallback_buckets, s.compressed_buckets, s.steps, s.elements) == (1, 0, 1, 999)
    run(state, grad(1000), last=False)
    s = state.stats()
    assert (s.fallback_buckets, s.compressed_buckets, s.steps) == (1, 1, 1)
    state.reset_stats()
    assert state.stats().elements == 0


def test_comm_stats_ratios():
    s = CommStats(steps=4, compressed_buckets=4, fallback_buckets=0, elements=400, bytes_sent=100, fp32_bytes=1600, world_size=2)
    assert s.compression_ratio == 16.0 and s.bytes_per_step == 25.0
    d = s.to_dict()
    assert d["compression_ratio"] == 16.0 and d["world_size"] == 2
    assert CommStats(0, 0, 0, 0, 0, 0, 0).compression_ratio == 0.0


def test_stats_time_each_stage_of_the_compute(group):
    x = grad(5000, seed=5)
    for scheme, reduces in (("all_gather", False), ("reduce_scatter", True)):
        state = TernaryCommState(seed=2, chunk_size=1000, error_feedback=True, scheme=scheme, backend="numpy")
        run(state, x.clone())
        s = state.stats()
        assert s.encode_seconds > 0 and s.decode_seconds > 0 and (s.reduce_seconds > 0) == reduces
        assert {"encode_seconds", "reduce_seconds", "decode_seconds"} <= set(s.to_dict())
        state.reset_stats()
        s = state.stats()
        assert (s.encode_seconds, s.reduce_seconds, s.decode_seconds) == (0.0, 0.0, 0.0)


def test_residual_is_updated_in_place_and_matches_the_spec(group):
    state = TernaryCommState(seed=4, chunk_size=700, error_feedback=True, backend="numpy")
    x0, x1 = grad(3000, seed=6), grad(3000, seed=7)
    run(state, x0.clone())
    r0 = state.residual(0).clone()
    held = state.residual(0)
    got = run(state, x1.clone())
    v = x1 + r0  # float32
    want = expected(v, state, 0, 1)
    assert np.array_equal(got.numpy(), want)
    assert held.data_ptr() == state.residual(0).data_ptr()  # no new array per step
    assert state.residual(0).numpy().tobytes() == (v.numpy() - want).tobytes()


@pytest.mark.parametrize(
    "kwargs",
    [{"seed": -1}, {"seed": 1.5}, {"error_feedback": 1}, {"chunk_size": 0}, {"min_compress_numel": -1}, {"chunk_size": True}],
)
def test_state_rejects_bad_options(kwargs):
    with pytest.raises(ConfigError):
        TernaryCommState(**kwargs)


def test_hook_passes_ddp_signature_check(group):
    model = torch.nn.Linear(40, 30)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    state = TernaryCommState(seed=0, min_compress_numel=10, backend="numpy")
    ddp.register_comm_hook(state, ternary_comm_hook)
    x = torch.randn(8, 40)
    ddp(x).square().mean().backward()
    assert state.stats().compressed_buckets >= 1 and state.stats().steps == 1
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
