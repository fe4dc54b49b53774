"""The numba backend's choice between serial and prange kernels, and its chunk arithmetic."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("numba")

from vsaopt.backends import numba as nb_backend  # noqa: E402
from vsaopt.backends.numba import _config, _dispatch  # noqa: E402


def _serial(x):
    return ("serial", x)


def _parallel(x):
    return ("parallel", x)


def test_run_follows_the_parallel_threshold(monkeypatch):
    monkeypatch.setattr(_config.numba, "get_num_threads", lambda: 2)
    with nb_backend.parallel_threshold(10):
        assert _dispatch.run(9, _serial, _parallel, 1) == ("serial", 1)
        assert _dispatch.run(10, _serial, _parallel, 2) == ("parallel", 2)
    monkeypatch.setattr(_config.numba, "get_num_threads", lambda: 1)
    with nb_backend.parallel_threshold(1):
        assert _dispatch.run(10, _serial, _parallel, 3) == ("serial", 3)  # one thread: never prange


def test_parallel_threshold_restores_the_setting():
    saved = _config.PARALLEL_MIN
    with pytest.raises(RuntimeError):
        with nb_backend.parallel_threshold(saved + 5):
            assert _config.PARALLEL_MIN == saved + 5
            raise RuntimeError
    assert _config.PARALLEL_MIN == saved


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(1, 700))
def test_chunks_cover_the_range_once_in_order(start, length, size):
    stop = start + length
    count = _dispatch.chunk_count(length, size)
    pieces = [_dispatch.chunk_range(c, size, start, stop) for c in range(count)]
    covered = [i for lo, hi in pieces for i in range(lo, hi)]
    assert covered == list(range(start, stop))
    assert all(0 < hi - lo <= size for lo, hi in pieces)


def test_cache_report_counts_every_kernel_signature():
    import vsaopt

    vsaopt.get_backend("numba").abs_stats(np.ones(5, np.float32))  # at least one kernel is loaded
    rep = nb_backend.cache_report()
    assert set(rep) == {"from_cache", "compiled"}
    assert rep["from_cache"] + rep["compiled"] >= 1
