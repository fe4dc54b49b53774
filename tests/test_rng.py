"""Philox4x32 and the per-element draws: known answers, round counts, counter layout, errors."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vsaopt import rng
from vsaopt.errors import ConfigError, DTypeError, ShapeError
from vsaopt.testing import assert_bit_equal, to_host
from vsaopt.testing.strategies import seeds, u32

KAT = Path(__file__).resolve().parents[1] / "spec" / "vectors" / "philox4x32_10_kat.txt"


def _kat_rows():
    for line in KAT.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        words = [int(w, 16) for w in line.split()[2:]]
        yield words[:4], words[4:6], words[6:]


def scalar_philox(counter, key, rounds):
    """An independent, word-at-a-time Philox4x32 in plain Python integers."""
    c, k = list(counter), list(key)
    for r in range(rounds):
        if r:
            k = [(k[0] + 0x9E3779B9) % 2**32, (k[1] + 0xBB67AE85) % 2**32]
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k[0], p1 % 2**32, (p0 >> 32) ^ c[3] ^ k[1], p0 % 2**32]
    return c


@pytest.mark.parametrize("row", list(_kat_rows()), ids=["zeros", "ones", "pi"])
def test_known_answers(backend, row):
    counter, key, expected = row
    out = rng.philox4x32(be_array(backend, counter), be_array(backend, key), backend=backend)
    assert to_host(out).tolist() == expected


def be_array(backend, words):
    return backend.xp.asarray(np.array(words, dtype=np.uint32))


@given(st.lists(u32(), min_size=4, max_size=4), st.lists(u32(), min_size=2, max_size=2), st.integers(1, 20))
def test_rounds_match_an_independent_implementation(counter, key, rounds):
    out = rng.philox4x32(np.array(counter, np.uint32), np.array(key, np.uint32), rounds, backend="numpy")
    assert out.tolist() == scalar_philox(counter, key, rounds)


def test_round_count_matters():
    c, k = np.zeros(4, np.uint32), np.zeros(2, np.uint32)
    outs = {tuple(rng.philox4x32(c, k, r, backend="numpy").tolist()) for r in (1, 2, 7, 10)}
    assert len(outs) == 4


def test_broadcasting_batch_shapes(backend):
    counters = np.arange(24, dtype=np.uint32).reshape(2, 3, 4)
    keys = np.array([[1, 2], [3, 4], [5, 6]], np.uint32)
    out = to_host(rng.philox4x32(backend.xp.asarray(counters), backend.xp.asarray(keys), backend=backend))
    assert out.shape == (2, 3, 4)
    assert out[1, 2].tolist() == scalar_philox(counters[1, 2].tolist(), keys[2].tolist(), 10)


@given(st.integers(0, 70), seeds(), u32(), u32(), u32())
def test_element_words_follow_the_counter_layout(n, seed, stream, step, tensor):
    bits = rng.random_bits(n, seed, stream, step, tensor, backend="numpy")
    key = [seed % 2**32, seed >> 32]
    expected = [scalar_philox([i // 4, tensor, step, stream], key, 10)[i % 4] for i in range(n)]
    assert bits.tolist() == expected


def test_uniform_is_top_24_bits(backend):
    bits = to_host(rng.random_bits(1000, 99, backend=backend))
    u = to_host(rng.uniform(1000, 99, backend=backend))
    assert_bit_equal(u, (bits >> 8).astype(np.float32) * np.float32(2.0**-24))
    assert u.min() >= 0 and u.max() < 1


def test_draws_are_independent_across_counter_words():
    base = rng.random_bits(64, 1, backend="numpy")
    for kw in ({"stream": 1}, {"step": 1}, {"tensor_index": 1}, {"seed": 2}):
        args = {"n": 64, "seed": 1, **kw}
        assert not np.array_equal(rng.random_bits(**args, backend="numpy"), base), kw


@pytest.mark.parametrize(
    "kwargs, error, word",
    [
        ({"counter": np.zeros(4, np.int64)}, DTypeError, "counter"),
        ({"counter": np.zeros(3, np.uint32)}, ShapeError, "counter"),
        ({"key": np.zeros(3, np.uint32)}, ShapeError, "key"),
        ({"key": np.zeros((2, 2), np.uint32), "counter": np.zeros((3, 4), np.uint32)}, ShapeError, "broadcast"),
        ({"rounds": 0}, ConfigError, "rounds"),
        ({"rounds": 2.5}, DTypeError, "rounds"),
    ],
)
def test_philox_bad_input(kwargs, error, word):
    args = {"counter": np.zeros(4, np.uint32), "key": np.zeros(2, np.uint32), "rounds": 10, **kwargs}
    with pytest.raises(error, match=word):
        rng.philox4x32(args["counter"], args["key"], args["rounds"], backend="numpy")


@pytest.mark.parametrize(
    "kwargs, error, word",
    [
        ({"seed": -1}, ConfigError, "seed"),
        ({"seed": 2**64}, ConfigError, "seed"),
        ({"seed": 1.0}, DTypeError, "seed"),
        ({"seed": True}, DTypeError, "seed"),
        ({"n": -1}, ConfigError, "n"),
        ({"stream": 2**32}, ConfigError, "stream"),
        ({"step": -3}, ConfigError, "step"),
        ({"tensor_index": 2**40}, ConfigError, "tensor_index"),
    ],
)
def test_draw_bad_input(kwargs, error, word):
    args = {"n": 4, "seed": 0, **kwargs}
    with pytest.raises(error, match=word):
        rng.uniform(backend="numpy", **args)


def test_stream_tags_are_distinct_and_documented():
    spec = (Path(__file__).resolve().parents[1] / "spec" / "SPEC.md").read_text()
    values = [int(s) for s in rng.Stream]
    assert len(set(values)) == len(values)
    for s in rng.Stream:
        if s.value:
            assert f"0x{s.value:08X}" in spec, s.name
