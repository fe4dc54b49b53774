"""The ternary comm hook refuses what it cannot exchange correctly, with a typed error, and leaves its state as it was.

Checks on one process (a one-rank gloo group): bad buckets, bad arguments, a
tampered or foreign state dict, the agreement table.  One launch of 2 gloo
processes checks what only several ranks show: ranks built with other options,
a state of another world size, rank or step, a destroyed group; each case ends
with a typed error on every rank, no hang, and the ranks still exchange
correctly afterwards.
"""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

from vsaopt.checkpoint import frame  # noqa: E402
from vsaopt.errors import BackendError, CheckpointError, ConfigError, DTypeError, ShapeError  # noqa: E402
from vsaopt.torch import comm_hook  # noqa: E402
from vsaopt.torch.comm_hook import MAX_BUCKETS, PROTOCOL_VERSION, TernaryCommState, ternary_comm_hook  # noqa: E402
from test_torch_comm_hook import Bucket, group  # noqa: E402, F401  (group: the one-rank gloo fixture)

if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

WORLD = 2
N = 2000
TIMEOUT_S = 120.0


def run(state, x, index=0):
    return ternary_comm_hook(state, Bucket(x, index)).wait()


def make(**kw):
    options = {"seed": 4, "chunk_size": 300, "error_feedback": True, "backend": "numpy"}
    options.update(kw)
    return TernaryCommState(**options)


def snapshot(state):
    """Everything a failed call must leave as it was: counters, residual bytes, membership, byte counts."""
    residuals = {i: np.asarray(r).tobytes() for i, r in state._residuals.items()}
    return state._steps.copy(), residuals, state._membership, state._agreed_group, state.stats()


def grad(seed=0, n=N):
    return torch.randn(n, generator=torch.Generator().manual_seed(seed))


def reframe(saved, edit_header=None, arrays=None):
    """A state dict with its header edited and a valid digest again (what a deliberate tamperer writes)."""
    header = copy.deepcopy(saved["header"])
    if edit_header is not None:
        edit_header(header)
    fields = {k: v for k, v in header.items() if k not in ("format", "version", "kind", "sha256")}
    return frame(header["kind"], fields, saved["arrays"] if arrays is None else arrays)




@pytest.fixture
def used(group):
    """A state that has exchanged two buckets (step counters and a residual)."""
    state = make()
    run(state, grad(1), index=3)
    run(state, grad(2), index=3)
    return state


# --- validate first, then mutate -----------------------------------------------------------


def test_bucket_index_past_the_counter_layout_changes_nothing(used):
    before = snapshot(used)
    with pytest.raises(ConfigError, match="bucket index 1024"):
        run(used, grad(3), index=MAX_BUCKETS)
    assert snapshot(used) == before


@pytest.mark.parametrize(
    "bucket, error, match",
    [
        (Bucket(torch.ones(N, dtype=torch.int32)), DTypeError, "int32"),
        (Bucket(torch.ones(10, dtype=torch.int64)), DTypeError, "int64"),  # a fallback-sized bucket too
        (Bucket(torch.ones(N, dtype=torch.bool)), DTypeError, "bool"),
        (Bucket(torch.ones(N, dtype=torch.complex64)), DTypeError, "complex64"),
        (Bucket(torch.randn(N).to_sparse()), DTypeError, "sparse"),
        (Bucket(np.zeros(N, np.float32)), DTypeError, "torch.Tensor"),
        (Bucket(torch.randn(50, 40)), ShapeError, r"1-D.*\(50, 40\)"),
        (Bucket(torch.empty(N, device="meta")), BackendError, "meta"),
        (Bucket(torch.randn(N), index=-1), ConfigError, "bucket.index"),
        (Bucket(torch.randn(N), index=1.5), ConfigError, "bucket.index"),
        (Bucket(torch.randn(N), index=True), ConfigError, "bucket.index"),
        (torch.randn(N), ConfigError, "GradBucket"),
    ],
    ids=["int32", "int64-small", "bool", "complex", "sparse", "numpy", "2-D", "meta", "index-1", "index-1.5", "index-bool", "no-bucket"],
)
def test_bad_buckets_are_typed_errors_that_change_nothing(used, bucket, error, match):
    before = snapshot(used)
    with pytest.raises(error, match=match):
        ternary_comm_hook(used, bucket)
    assert snapshot(used) == before


def test_the_state_argument_is_checked(group):
    with pytest.raises(ConfigError, match="state: expected a TernaryCommState"):
        ternary_comm_hook(None, Bucket(grad()))


def test_float_buckets_of_every_width_are_exchanged(group):
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        x = grad(5).to(dtype)
        got = run(make(error_feedback=False), x.clone())
        want = run(make(error_feedback=False), x.to(torch.float32))
        assert got.dtype == dtype and torch.equal(got, want.to(dtype))


def test_non_finite_gradients_reach_the_output_and_spare_the_residual(group):
    state = make()
    x = grad(6)
    x[10], x[700] = float("nan"), float("-inf")
    got = run(state, x)
    assert bool(torch.isnan(got[:300]).all()) and bool(torch.isnan(got[600:900]).all())
    assert bool(torch.isfinite(got[300:600]).all())
    assert bool(torch.isfinite(state.residual(0)).all())
    state.load_state_dict(state.state_dict())  # a finite residual: the state still saves and loads


def test_one_state_serves_one_model(group):
    from torch.nn.parallel import DistributedDataParallel as DDP

    state = make(min_compress_numel=1)
    first, second = DDP(torch.nn.Linear(40, 30)), DDP(torch.nn.Linear(40, 30))
    for ddp in (first, second):
        ddp.register_comm_hook(state, ternary_comm_hook)
    for _ in range(2):  # the first model's buckets, before and after DDP rebuilds them
        first(torch.randn(8, 40)).square().mean().backward()
    before = snapshot(state)
    with pytest.raises(ConfigError, match="another model"):
        second(torch.randn(8, 40)).square().mean().backward()
    assert snapshot(state) == before
    first(torch.randn(8, 40)).square().mean().backward()
    assert state.stats().steps == 3


# --- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"process_group": "not a group"}, "process_group: expected None or a torch.distributed.ProcessGroup, got str"),
        ({"process_group": -100}, "process_group"),
        ({"backend": "bogus"}, "backend"),
        ({"backend": 3}, "backend"),
    ],
)
def test_construction_checks_the_group_and_backend(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TernaryCommState(**kwargs)


def test_a_group_this_process_is_not_in_is_named():
    with pytest.raises(ConfigError, match="not a member"):
        TernaryCommState(process_group=dist.GroupMember.NON_GROUP_MEMBER)


# --- state dicts -----------------------------------------------------------------------------


def test_state_dict_records_world_size_and_rank(used):
    state = used.state_dict()["header"]["state"]
    assert (state["world_size"], state["rank"], state["steps"]) == (1, 0, {"3": 2})
    fresh = make().state_dict()["header"]["state"]
    assert (fresh["world_size"], fresh["rank"]) == (None, None)


def _set(path, value):
    def edit(header):
        node = header["state"]
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _drop(key):
    return lambda header: header["state"].pop(key)


TAMPERED_HEADERS = {
    "steps-not-object": (_set(["steps"], [2]), "steps"),
    "steps-zero-with-residual": (_set(["steps", "3"], 0), r"steps\.3"),
    "steps-negative": (_set(["steps", "3"], -1), r"steps\.3"),
    "steps-float": (_set(["steps", "3"], 2.0), r"steps\.3"),
    "steps-bool": (_set(["steps", "3"], True), r"steps\.3"),
    "index-leading-zero": (_set(["steps"], {"03": 2}), "steps"),
    "index-unicode-digit": (_set(["steps"], {"\u0663": 2}), "steps"),
    "index-past-layout": (_set(["steps"], {"1024": 2}), "steps"),
    "world-zero": (_set(["world_size"], 0), "world_size"),
    "world-float": (_set(["world_size"], 1.0), "world_size"),
    "world-past-layout": (_set(["world_size"], 5000), "world_size"),
    "rank-past-world": (_set(["rank"], 1), "rank"),
    "rank-only": (_set(["world_size"], None), "world_size"),
    "world-missing": (_drop("world_size"), "world_size"),
    "rank-missing": (_drop("rank"), "rank"),
    "unknown-field": (_set(["extra"], 1), "extra"),
}


@pytest.mark.parametrize("name", sorted(TAMPERED_HEADERS))
def test_every_header_field_is_validated(used, name):
    edit, match = TAMPERED_HEADERS[name]
    target = make()
    before = snapshot(target)
    with pytest.raises(CheckpointError, match=match):
        target.load_state_dict(reframe(used.state_dict(), edit))
    assert snapshot(target) == before


TAMPERED_ARRAYS = {
    "nan": ({"residual.3": np.full(N, np.nan, np.float32)}, "NaN"),
    "inf": ({"residual.3": np.full(N, np.inf, np.float32)}, "NaN or Inf"),
    "float64": ({"residual.3": np.zeros(N, np.float64)}, "float32"),
    "2-D": ({"residual.3": np.zeros((2, N), np.float32)}, "shape"),
    "unknown-bucket": ({"residual.3": np.zeros(N, np.float32), "residual.4": np.zeros(N, np.float32)}, "residual.4"),
    "leading-zero": ({"residual.03": np.zeros(N, np.float32)}, "residual.03"),
    "other-name": ({"momentum.3": np.zeros(N, np.float32)}, "momentum.3"),
}


@pytest.mark.parametrize("name", sorted(TAMPERED_ARRAYS))
def test_every_residual_is_validated(used, name):
    arrays, match = TAMPERED_ARRAYS[name]
    target = make()
    before = snapshot(target)
    with pytest.raises(CheckpointError, match=match):
        target.load_state_dict(reframe(used.state_dict(), arrays=arrays))
    assert snapshot(target) == before


def test_a_state_of_another_world_size_or_rank_is_refused_at_load(used):
    for world, rank in ((2, 0), (2, 1), (4, 3)):
        saved = reframe(used.state_dict(), lambda h: h["state"].update(world_size=world, rank=rank))
        target = make()
        with pytest.raises(CheckpointError, match=f"world size {world} by rank {rank}.*world size 1 and this is rank 0"):
            target.load_state_dict(saved)
        assert target._steps == {}


def test_a_state_loaded_before_the_group_exists_is_checked_at_the_first_call(used, monkeypatch):
    saved = reframe(used.state_dict(), lambda h: h["state"].update(world_size=2, rank=1))
    target = make()
    with monkeypatch.context() as m:
        m.setattr(dist, "is_initialized", lambda: False)  # as in a job that loads before init_process_group
        target.load_state_dict(saved)
    before = snapshot(target)
    with pytest.raises(CheckpointError, match="rank 0 holds a state of world size 2 \\(rank 1\\)"):
        run(target, grad(3), index=3)
    assert snapshot(target) == before


def test_a_state_of_other_options_names_them(used):
    for option, value in (("scheme", "reduce_scatter"), ("chunk_size", 500), ("seed", 5)):
        with pytest.raises(CheckpointError, match=f"{option}: saved .*, here {value!r}"):
            make(**{option: value}).load_state_dict(used.state_dict())


def test_load_of_a_file_with_unknown_or_missing_options_is_a_checkpoint_error(used, tmp_path):
    from vsaopt.checkpoint import write

    for edit, match in ((lambda h: h["config"].update(bogus=1), "bogus"), (lambda h: h["config"].pop("scheme"), "options")):
        write(tmp_path / "c.ckpt", reframe(used.state_dict(), edit))
        with pytest.raises(CheckpointError, match=match):
            TernaryCommState.load(tmp_path / "c.ckpt", backend="numpy")


def test_a_resumed_state_continues_bit_identically(used):
    resumed = make()
    resumed.load_state_dict(used.state_dict())
    x = grad(9)
    assert run(resumed, x.clone(), index=3).numpy().tobytes() == run(used, x.clone(), index=3).numpy().tobytes()


# --- the agreement table -----------------------------------------------------------------


def _table(states):
    return np.array([comm_hook._agreement_row(s) for s in states], dtype=np.int64)


def test_agreement_names_each_option_and_the_ranks_per_value():
    states = [make(), make(chunk_size=500), make(), make(chunk_size=500, scheme="all_gather", seed=2**63 + 5)]
    with pytest.raises(ConfigError) as info:
        comm_hook._check_agreement(_table(states), 4)
    text = str(info.value)
    assert "chunk_size (300 on ranks 0, 2; 500 on ranks 1, 3)" in text
    assert "scheme ('auto' on ranks 0, 1, 2; 'all_gather' on rank 3)" in text
    assert f"seed (4 on ranks 0, 1, 2; {2**63 + 5} on rank 3)" in text
    assert "min_compress_numel" not in text


def test_agreement_accepts_equal_ranks_and_catches_another_protocol():
    comm_hook._check_agreement(_table([make(), make()]), 2)
    table = _table([make(), make()])
    table[1, 0] = PROTOCOL_VERSION + 1
    with pytest.raises(ConfigError, match=f"protocol \\({PROTOCOL_VERSION} on rank 0; {PROTOCOL_VERSION + 1} on rank 1\\)"):
        comm_hook._check_agreement(table, 2)


def test_agreement_catches_states_of_another_membership_or_step():
    a, b = make(), make()
    for s in (a, b):
        s._steps = {0: 3}
    a._membership, b._membership = (2, 0), (2, 0)  # rank 1 loaded rank 0's state
    with pytest.raises(CheckpointError, match="rank 1 holds a state of world size 2 \\(rank 0\\)"):
        comm_hook._check_agreement(_table([a, b]), 2)
    b._membership = (2, 1)
    comm_hook._check_agreement(_table([a, b]), 2)
    b._steps = {0: 4}
    with pytest.raises(CheckpointError, match="different step counters \\(alike within: rank 0 \\| rank 1\\)"):
        comm_hook._check_agreement(_table([a, b]), 2)


# --- several ranks -------------------------------------------------------------------------


def _outcome(fn):
    """``("ok", value)`` or ``(error class name, message)``: what a case gave on this rank."""
    try:
        return ("ok", fn())
    except Exception as exc:  # recorded for the parent; every rank must raise the same
        return (type(exc).__name__, str(exc))


def _ddp_with(options):
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    ddp = DDP(model)
    ddp.register_comm_hook(make(min_compress_numel=1, **options), ternary_comm_hook)
    ddp(torch.randn(8, 64)).square().mean().backward()
    return True


def _worker(rank, world):
    out = {}
    x = grad(100 + rank)
    other = {"chunk_size": 500, "min_compress_numel": 5000, "scheme": "reduce_scatter"}
    for option, value in other.items():
        out[option] = _outcome(lambda: run(make(**({option: value} if rank == 1 else {})), x.clone()).sum().item())
    out["ddp"] = _outcome(lambda: _ddp_with({"chunk_size": 700} if rank == 1 else {}))

    # per-rank checkpoints: rank 1 loads rank 0's state; then the ranks load states of different steps
    state = make()
    for k in range(3):
        run(state, grad(200 + k + rank), index=1)
        if k == 1:
            two_steps = state.state_dict()
    three_steps = state.state_dict()
    rank0_state = [three_steps if rank == 0 else None]
    dist.broadcast_object_list(rank0_state, src=0)
    swapped = make()
    out["rank_swap_at_load"] = _outcome(lambda: swapped.load_state_dict(rank0_state[0]))
    stale = make()
    stale.load_state_dict(two_steps if rank == 1 else three_steps)
    out["steps"] = _outcome(lambda: run(stale, x.clone(), index=1).sum().item())
    out["steps_unchanged"] = stale._steps == ({1: 2} if rank == 1 else {1: 3})

    # a state whose residuals belong to world size 2 reused on a one-rank group of its own
    solo, _ = dist.new_subgroups(group_size=1)
    moved = make(process_group=solo)
    out["world_at_load"] = _outcome(lambda: moved.load_state_dict(three_steps))

    # a destroyed group
    bound = make(process_group=solo)
    dist.destroy_process_group(solo)
    out["destroyed"] = _outcome(lambda: run(bound, x.clone()))
    out["destroyed_stats"] = bound.stats().to_dict()

    # after every refusal the ranks are still in step: a correct exchange, the same bytes on both
    out["after"] = run(make(), x.clone()).numpy()
    return out


@pytest.fixture(scope="module")
def ranks():
    from vsaopt.torch import run_local_processes

    return run_local_processes(_worker, WORLD, timeout=TIMEOUT_S)


OTHER_OPTIONS = [
    ("chunk_size", "300 on rank 0; 500 on rank 1"),
    ("min_compress_numel", "1024 on rank 0; 5000 on rank 1"),
    ("scheme", "'auto' on rank 0; 'reduce_scatter' on rank 1"),
]


@pytest.mark.parametrize("option, shown", OTHER_OPTIONS)
def test_ranks_with_other_options_raise_config_error_on_every_rank(ranks, option, shown):
    for r in ranks:
        kind, message = r[option]
        assert kind == "ConfigError" and f"{option} ({shown})" in message


def test_ddp_with_other_options_fails_on_every_rank_naming_the_option(ranks):
    for r in ranks:
        kind, message = r["ddp"]
        assert kind != "ok" and "chunk_size (300 on rank 0; 700 on rank 1)" in message


def test_a_state_of_another_rank_is_refused_at_load(ranks):
    assert ranks[0]["rank_swap_at_load"] == ("ok", None)
    kind, message = ranks[1]["rank_swap_at_load"]
    assert kind == "CheckpointError" and "by rank 0" in message and "this is rank 1" in message


def test_states_of_different_steps_are_refused_on_every_rank(ranks):
    for r in ranks:
        kind, message = r["steps"]
        assert kind == "CheckpointError" and "different step counters" in message
        assert r["steps_unchanged"]


def test_a_state_of_another_world_size_is_refused_at_load(ranks):
    for r in ranks:
        kind, message = r["world_at_load"]
        assert kind == "CheckpointError" and "world size 2" in message and "world size 1" in message


def test_a_destroyed_group_is_a_backend_error_that_counts_nothing(ranks):
    for r in ranks:
        kind, message = r["destroyed"]
        assert kind == "BackendError" and "process_group" in message
        assert r["destroyed_stats"]["elements"] == 0


def test_ranks_still_exchange_identically_after_the_refusals(ranks):
    assert ranks[0]["after"].tobytes() == ranks[1]["after"].tobytes()
    assert np.isfinite(ranks[0]["after"]).all()
