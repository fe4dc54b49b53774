"""run_local_processes: results in rank order, a rank's exception or a timeout raises, and no process is left behind."""

import multiprocessing
import os
import time

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

from vsaopt.errors import BackendError, ConfigError  # noqa: E402
from vsaopt.torch import run_local_processes  # noqa: E402


def _fail_on_rank_1(rank, world):
    if rank == 1:
        raise ValueError("rank one fails on purpose")
    dist.barrier()  # rank 0 would wait here forever
    return rank


def _sleep(rank, world):
    time.sleep(600)


def _sum_ranks(rank, world, base):
    t = torch.tensor([float(rank + base)])
    dist.all_reduce(t)
    return {"rank": rank, "world": world, "sum": t.item(), "pid": os.getpid()}


def _no_children_left():
    deadline = time.monotonic() + 5
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not multiprocessing.active_children()


def test_results_come_back_in_rank_order():
    out = run_local_processes(_sum_ranks, 2, (10,), timeout=60)
    assert [o["rank"] for o in out] == [0, 1]
    assert all(o["sum"] == 21.0 and o["world"] == 2 for o in out)
    assert out[0]["pid"] != out[1]["pid"] != os.getpid()
    assert _no_children_left()


def test_a_failing_rank_raises_with_its_traceback_and_the_others_are_ended():
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="rank one fails on purpose"):
        run_local_processes(_fail_on_rank_1, 2, timeout=60)
    assert time.monotonic() - t0 < 45
    assert _no_children_left()


def test_timeout_ends_every_process():
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="within 6"):
        run_local_processes(_sleep, 2, timeout=6)
    assert time.monotonic() - t0 < 20
    assert _no_children_left()


@pytest.mark.parametrize("kwargs", [{"world_size": 0}, {"world_size": True}, {"timeout": 0}, {"timeout": "1"}])
def test_bad_arguments(kwargs):
    with pytest.raises(ConfigError):
        run_local_processes(_sum_ranks, **{"world_size": 2, **kwargs})
