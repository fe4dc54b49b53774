"""The reduce-scatter scheme of the ternary comm hook: the spec's arithmetic, simulated ranks, resume from a state dict.

Ranks are simulated in one process by calling the scheme's array steps with
the collectives replaced by concatenation; the real collectives run in
``test_torch_comm_ranks.py``.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsaopt.backend import get_backend  # noqa: E402
from vsaopt.torch import trit_reduce_scatter as rs  # noqa: E402
from vsaopt.torch.comm_hook import COMM_HOOK_STREAM, TernaryCommState  # noqa: E402

BACKENDS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(not __import__("importlib").util.find_spec("numba"), reason="numba absent"))]


def reference(xs, seed, step, index, bounds):
    """spec/comm.md written out with the numpy reference kernels, for all ranks at once."""
    be = get_backend("numpy")
    world, n = xs.shape
    bits = [int((xs[:, lo:hi].view(np.uint32) & 0x7FFFFFFF).max()) for lo, hi in bounds]
    sums = np.zeros(n, np.int64)
    for r in range(world):
        for c, (lo, hi) in enumerate(bounds):
            s = np.uint32(bits[c]).view(np.float32)
            if np.isfinite(s):
                sums[lo:hi] += be.quantize_stochastic(xs[r, lo:hi], s, seed, COMM_HOOK_STREAM, step, (r << 20) | (index << 10) | c)
    shift = rs.sum_shift(world)
    if shift:
        m = rs.shard_length(n, world)
        w = np.concatenate([be.philox_bits(m, seed, rs.COMM_SUM_STREAM, step, (j << 20) | (index << 10)) for j in range(world)])[:n]
        sums = (sums >> shift) + (w.astype(np.int64) < ((sums % 2**shift) << (32 - shift)))
    out = np.empty(n, np.float32)
    for c, (lo, hi) in enumerate(bounds):
        s = np.float64(np.uint32(bits[c]).view(np.float32))
        out[lo:hi] = (sums[lo:hi].astype(np.float64) * (s * 2.0**shift)) / np.float64(world) if np.isfinite(s) else np.nan
    return out


def simulate(xs, seed, step, index, bounds, backend):
    """Every rank's steps of the scheme, the collectives replaced by concatenation; returns rank 0's output."""
    be = get_backend(backend)
    world, n = xs.shape
    m = rs.shard_length(n, world)
    chunk = bounds[0][1] - bounds[0][0]
    bits = np.max([rs.chunk_scale_bits(x, None, chunk, be) for x in xs], axis=0)  # all_reduce MAX
    packed = [rs.encode(xs[r], None, bits, chunk, world, be, seed, COMM_HOOK_STREAM, step, (r << 20) | (index << 10))[0]
              for r in range(world)]
    q = m // 4
    shards = [rs.reduce_shard(np.concatenate([p[j * q : (j + 1) * q] for p in packed]), world, be, seed, step, (j << 20) | (index << 10))
              for j in range(world)]  # all_to_all, then each owner
    return rs.decode(np.concatenate(shards), n, bits, chunk, world, be, np.empty(n, np.float32))  # all_gather


def gradients(world, n, seed=0):
    g = np.random.default_rng(seed)
    return (g.standard_normal((world, n)) * np.linspace(0.01, 3.0, n)).astype(np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("world", [1, 3, 4, 8, 15, 200])
def test_simulated_ranks_follow_the_spec(world, backend):
    n = 1001
    xs = gradients(world, n, seed=world)
    bounds = TernaryCommState(chunk_size=300).chunk_bounds(n)
    got = simulate(xs, 5, 7, 3, bounds, backend)
    want = reference(xs, 5, 7, 3, bounds)
    assert got.tobytes() == want.tobytes()


def test_large_worlds_round_sums_into_a_nibble():
    # 200 ranks: sums up to 200 need the int32 path (past int8) and a shift of 5
    assert rs.sum_shift(200) == 5
    xs = np.ones((200, 64), np.float32)  # every trit +1: sums of 200, rounded to 200 / 32 = 6.25
    out = simulate(xs, 0, 0, 0, [(0, 64)], "numpy")
    assert set(np.unique(out).tolist()) <= {float(np.float32(6 * 32 / 200)), float(np.float32(7 * 32 / 200))}
    # unbiased rounding: the mean over elements is close to 1
    assert abs(float(out.mean()) - 1.0) < 0.1


def test_non_finite_chunk_decodes_to_nan_and_others_stay_finite():
    xs = gradients(4, 900, seed=1)
    xs[2, 450] = np.inf
    bounds = [(0, 300), (300, 600), (600, 900)]
    out = simulate(xs, 0, 0, 0, bounds, "numpy")
    assert np.isnan(out[300:600]).all() and np.isfinite(out[:300]).all() and np.isfinite(out[600:]).all()


def test_simulated_average_is_unbiased():
    world, n, repeats = 4, 600, 300
    xs = gradients(world, n, seed=2)
    bounds = [(0, n)]
    total = np.zeros(n)
    for k in range(repeats):
        total += simulate(xs, 1, k, 0, bounds, "numpy")
    exact = xs.astype(np.float64).mean(0)
    s = np.abs(xs).max()
    var = (s * np.abs(xs) - xs.astype(np.float64) ** 2).sum(0) / world**2  # variance of one output, per element
    mse_ratio = ((total / repeats - exact) ** 2).sum() / (var / repeats).sum()
    assert 0.75 < mse_ratio < 1.33

    def slope_z(mean):  # regression slope of the mean on the exact average, in standard errors from 1
        w = exact * exact
        return ((mean * exact).sum() / w.sum() - 1) / (np.sqrt((w * var / repeats).sum()) / w.sum())

    assert abs(slope_z(total / repeats)) < 4.0
    assert abs(slope_z(0.97 * total / repeats)) > 4.0  # the same statistic flags a 3 % bias


@pytest.mark.parametrize("world", [2, 4, 8, 16, 64, 256])
def test_bytes_per_rank_stay_over_ten_times_below_fp32(world):
    n = 1_126_250  # the MLP of the comm benchmark
    chunks = len(TernaryCommState().chunk_bounds(n))
    fp32 = 2 * (world - 1) * 4 * n // world
    best = min(rs.reduce_scatter_bytes(n, chunks, world), rs.all_gather_bytes(n, chunks, world))
    assert best * 10 <= fp32
    state = TernaryCommState()
    assert state.scheme_for(n, world) == ("all_gather" if world == 2 else "reduce_scatter")


def test_scheme_option_is_validated():
    from vsaopt.errors import ConfigError

    with pytest.raises(ConfigError):
        TernaryCommState(scheme="ring")
    assert TernaryCommState(scheme="all_gather").scheme_for(10**6, 64) == "all_gather"
