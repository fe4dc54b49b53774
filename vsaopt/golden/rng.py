"""Golden cases: Philox4x32 block function, per-element words and uniforms."""

from __future__ import annotations

import numpy as np

from .. import rng
from . import on

OPS = {
    "philox4x32": lambda be, counter, key, rounds: {"out": rng.philox4x32(on(be, counter), on(be, key), rounds, backend=be)},
    "random_bits": lambda be, n, seed, stream, step, tensor_index: {
        "bits": rng.random_bits(n, seed, stream, step, tensor_index, backend=be)
    },
    "uniform": lambda be, n, seed, stream, step, tensor_index: {
        "u": rng.uniform(n, seed, stream, step, tensor_index, backend=be)
    },
}

# Random123 known-answer vectors (counter, key, expected) for Philox4x32-10.
_KAT = [
    ([0, 0, 0, 0], [0, 0]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0]),
]


def _u32(values: list) -> np.ndarray:
    return np.array(values, dtype=np.uint32)


def cases() -> list[dict]:
    """The rng family's cases."""
    out = []
    for counter, key in _KAT:
        out.append({"op": "philox4x32", "comment": "Random123 known-answer vector, 10 rounds",
                    "inputs": {"counter": _u32(counter), "key": _u32(key), "rounds": 10}})
    pi_counter, pi_key = _KAT[2]
    for rounds in (1, 2, 7, 13):
        out.append({"op": "philox4x32", "comment": f"pi digits, {rounds} rounds",
                    "inputs": {"counter": _u32(pi_counter), "key": _u32(pi_key), "rounds": rounds}})
    out.append({"op": "philox4x32", "comment": "batch of 3 counters broadcast against one key",
                "inputs": {"counter": _u32([[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]]), "key": _u32([7, 9]), "rounds": 10}})
    out.append({"op": "philox4x32", "comment": "counter of int64 dtype is rejected",
                "inputs": {"counter": np.zeros(4, np.int64), "key": _u32([0, 0]), "rounds": 10}})
    out.append({"op": "philox4x32", "comment": "counter with 3 words is rejected",
                "inputs": {"counter": _u32([0, 0, 0]), "key": _u32([0, 0]), "rounds": 10}})
    out.append({"op": "philox4x32", "comment": "zero rounds are rejected",
                "inputs": {"counter": _u32([0, 0, 0, 0]), "key": _u32([0, 0]), "rounds": 0}})
    draws = [
        (0, 0, 0, 0, 0, "empty draw"),
        (1, 0, 0, 0, 0, "one element, all-zero counter"),
        (7, 2**64 - 1, 2**32 - 1, 2**32 - 1, 2**32 - 1, "all counter and key words at their maximum"),
        (37, 12345, 1, 2, 3, "37 elements: 9 whole blocks and a partial one"),
        (9, 2**32, 0, 5, 0, "seed 2**32: key words (0, 1)"),
    ]
    for n, seed, stream, step, tensor, comment in draws:
        for op in ("random_bits", "uniform"):
            out.append({"op": op, "comment": comment,
                        "inputs": {"n": n, "seed": seed, "stream": stream, "step": step, "tensor_index": tensor}})
    out.append({"op": "random_bits", "comment": "negative seed is rejected",
                "inputs": {"n": 4, "seed": -1, "stream": 0, "step": 0, "tensor_index": 0}})
    out.append({"op": "uniform", "comment": "stream beyond 32 bits is rejected",
                "inputs": {"n": 4, "seed": 0, "stream": 2**32, "step": 0, "tensor_index": 0}})
    out.append({"op": "philox4x32", "comment": "key with 3 words is rejected",
                "inputs": {"counter": _u32([0, 0, 0, 0]), "key": _u32([0, 0, 0]), "rounds": 10}})
    out.append({"op": "philox4x32", "comment": "batch shapes (2,) and (3,) do not broadcast",
                "inputs": {"counter": np.zeros((2, 4), np.uint32), "key": np.zeros((3, 2), np.uint32), "rounds": 10}})
    out.append({"op": "philox4x32", "comment": "65537 rounds are rejected",
                "inputs": {"counter": _u32([0, 0, 0, 0]), "key": _u32([0, 0]), "rounds": 2**16 + 1}})
    out.append({"op": "philox4x32", "comment": "65536 rounds: the largest accepted count (the bound is inclusive)",
                "inputs": {"counter": _u32(pi_counter), "key": _u32(pi_key), "rounds": 2**16}})
    out.append({"op": "philox4x32", "comment": "65540 rounds are rejected (the bound is 65536)",
                "inputs": {"counter": _u32([1, 2, 3, 4]), "key": _u32([5, 6]), "rounds": 2**16 + 4}})
    out.append({"op": "random_bits", "comment": "stream 2**32 is rejected (the bound is 2**32 - 1, inclusive)",
                "inputs": {"n": 4, "seed": 0, "stream": 2**32, "step": 0, "tensor_index": 0}})
    out.append({"op": "philox4x32", "comment": "key of int32 dtype is rejected (counters and keys are uint32)",
                "inputs": {"counter": _u32([0, 0, 0, 0]), "key": np.zeros(2, np.int32), "rounds": 10}})
    return out
