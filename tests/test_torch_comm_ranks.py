"""The reduce-scatter scheme on 4 real gloo processes: the spec's bytes on every rank, both backends, resume, DDP training.

One launch (start-up dominates the cost) runs every check on each rank.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
pytest.importorskip("sklearn")

from test_torch_comm_scheme import gradients, reference  # noqa: E402

if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

WORLD = 4
N = 2501
BOUNDS_CHUNK = 300
TIMEOUT_S = 240.0


class Bucket:
    """What the hook reads of a torch.distributed.GradBucket."""

    def __init__(self, tensor, index=0):
        self._t, self._i = tensor, index

    def buffer(self):
        return self._t

    def index(self):
        return self._i

    def is_last(self):
        return True


def _hook(state, x, index=0):
    from vsaopt.torch import ternary_comm_hook

    return ternary_comm_hook(state, Bucket(x, index)).wait().clone()


def _train(rank, world):
    from torch.nn.parallel import DistributedDataParallel as DDP

    from vsaopt.torch import TernaryCommState, ternary_comm_hook
    from vsaopt.torch.demo import load_digits_split

    xtr, ytr, xte, yte = load_digits_split(0)
    x, y = xtr[rank::world], ytr[rank::world]
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    ddp = DDP(model)
    state = TernaryCommState(seed=7, chunk_size=512, error_feedback=True, backend="numpy")
    ddp.register_comm_hook(state, ternary_comm_hook)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.5)
    order = torch.Generator().manual_seed(3 + rank)
    for _ in range(6):
        perm = torch.randperm(x.shape[0], generator=order)
        for s in range(0, x.shape[0] - 15, 16):
            idx = perm[s : s + 16]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(ddp(x[idx]), y[idx]).backward()
            opt.step()
    with torch.no_grad():
        acc = float((model(xte).argmax(1) == yte).float().mean())
    params = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return {"accuracy": acc, "params": params.numpy(), "stats": state.stats().to_dict()}


def _worker(rank, world):
    from vsaopt.torch import TernaryCommState

    xs = gradients(world, N, seed=11)
    x = torch.from_numpy(xs[rank].copy())
    out = {}
    for backend in ("numpy", "numba"):
        state = TernaryCommState(seed=5, chunk_size=BOUNDS_CHUNK, backend=backend)
        out[backend] = [_hook(state, x.clone(), index=3).numpy() for _ in range(2)]
        out[backend + "_stats"] = state.stats().to_dict()
    bad = x.clone()
    if rank == 2:
        bad[450] = float("inf")
    out["non_finite"] = _hook(TernaryCommState(seed=5, chunk_size=BOUNDS_CHUNK, backend="numpy"), bad).numpy()
    bf16 = _hook(TernaryCommState(seed=5, chunk_size=BOUNDS_CHUNK, backend="numpy"), x.to(torch.bfloat16))
    # plain arrays cross the result queue (a tensor would travel as a shared-memory handle the exiting worker closes)
    out["bf16"] = (str(bf16.dtype), bf16.view(torch.int16).numpy())

    # resume: a state restored from state_dict() continues bit-identically (residuals and step counters)
    def make():
        return TernaryCommState(seed=9, chunk_size=BOUNDS_CHUNK, error_feedback=True, scheme="reduce_scatter", backend="numpy")

    inputs = [torch.from_numpy(gradients(world, N, seed=100 + k)[rank].copy()) for k in range(4)]
    a = make()
    for t in inputs[:2]:
        _hook(a, t.clone(), index=1)
    saved = a.state_dict()
    out["resumed_reference"] = [_hook(a, t.clone(), index=1).numpy() for t in inputs[2:]]
    b = make()
    b.load_state_dict(saved)
    out["resumed"] = [_hook(b, t.clone(), index=1).numpy() for t in inputs[2:]]
    out["residuals_equal"] = bool(torch.equal(a.residual(1), b.residual(1)))
    out["train"] = _train(rank, world)
    return out


@pytest.fixture(scope="module")
def results():
    from vsaopt.torch import run_local_processes

    return run_local_processes(_worker, WORLD, timeout=TIMEOUT_S)


def test_every_rank_decodes_the_spec_bytes(results):
    from vsaopt.torch import TernaryCommState

    xs = gradients(WORLD, N, seed=11)
    bounds = TernaryCommState(chunk_size=BOUNDS_CHUNK).chunk_bounds(N)
    for step in (0, 1):
        want = reference(xs, 5, step, 3, bounds).tobytes()
        for r in results:
            assert r["numpy"][step].tobytes() == want
            assert r["numba"][step].tobytes() == want


def test_auto_scheme_and_bytes_at_four_ranks(results):
    from vsaopt.torch import trit_reduce_scatter as rs

    for r in results:
        s = r["numpy_stats"]
        assert s["reduce_scatter_buckets"] == s["compressed_buckets"] == 2
        assert s["bytes_sent"] == 2 * rs.reduce_scatter_bytes(N, 9, WORLD)
        assert s["bytes_sent"] * 10 <= s["fp32_bytes"]


def test_non_finite_chunk_is_nan_on_every_rank(results):
    for r in results:
        v = r["non_finite"]
        assert np.isnan(v[300:600]).all() and np.isfinite(v[:300]).all() and np.isfinite(v[600:]).all()
        assert v.tobytes() == results[0]["non_finite"].tobytes()


def test_bf16_bucket_keeps_its_dtype(results):
    from vsaopt.torch import TernaryCommState

    xs = torch.stack([torch.from_numpy(x).to(torch.bfloat16).float() for x in gradients(WORLD, N, seed=11)]).numpy()
    want = torch.from_numpy(reference(xs, 5, 0, 0, TernaryCommState(chunk_size=BOUNDS_CHUNK).chunk_bounds(N))).to(torch.bfloat16)
    for r in results:
        dtype, bits = r["bf16"]
        assert dtype == "torch.bfloat16" and bits.tobytes() == want.view(torch.int16).numpy().tobytes()


def test_resumed_state_continues_bit_identically(results):
    for r in results:
        assert r["residuals_equal"]
        for a, b in zip(r["resumed_reference"], r["resumed"]):
            assert a.tobytes() == b.tobytes()


def test_ddp_training_with_the_reduce_scatter_scheme(results):
    for r in results:
        t = r["train"]
        assert t["stats"]["reduce_scatter_buckets"] > 0 and t["stats"]["fallback_buckets"] == 0
        assert np.array_equal(t["params"], results[0]["train"]["params"])
    assert results[0]["train"]["accuracy"] >= 0.90
