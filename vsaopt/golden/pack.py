"""Golden cases of trit packing (part of ternary quantization): 2-bit and base-3, including malformed data."""

from __future__ import annotations

import numpy as np

from .. import ternary
from . import on


def _pack(be, trits, encoding):
    return {"packed": ternary.pack(on(be, trits), encoding, backend=be)}


def _unpack(be, packed, n, encoding):
    return {"trits": ternary.unpack(on(be, packed), n, encoding, backend=be)}


OPS = {"pack": _pack, "unpack": _unpack}


def cases() -> list[dict]:
    """The pack family's cases."""
    i8, u8 = np.int8, np.uint8
    cyc = np.array([1, -1, 0], i8)
    out = []
    for enc in ("2bit", "base3"):
        for n in (0, 1, 4, 5, 7, 13, 40):
            out.append({"op": "pack", "comment": f"{n} trits cycling +1, -1, 0",
                        "inputs": {"trits": np.resize(cyc, n), "encoding": enc}})
        out.append({"op": "pack", "comment": "2-d trits are packed in C order",
                    "inputs": {"trits": np.resize(cyc, 12).reshape(3, 4), "encoding": enc}})
        out.append({"op": "pack", "comment": "value 2 is not a trit",
                    "inputs": {"trits": np.array([0, 2], i8), "encoding": enc}})
    out += [
        {"op": "unpack", "comment": "2bit: codes 1, 2, 0, 1 then 2", "inputs": {"packed": np.array([73, 2], u8), "n": 5, "encoding": "2bit"}},
        {"op": "unpack", "comment": "2bit: code 3 is malformed", "inputs": {"packed": np.array([3], u8), "n": 4, "encoding": "2bit"}},
        {"op": "unpack", "comment": "2bit: nonzero pad code", "inputs": {"packed": np.array([0b01000000], u8), "n": 3, "encoding": "2bit"}},
        {"op": "unpack", "comment": "2bit: wrong byte count", "inputs": {"packed": np.array([0, 0], u8), "n": 4, "encoding": "2bit"}},
        {"op": "unpack", "comment": "base3: 1 + 2*3 + 0*9 + 1*27 + 2*81 = 196", "inputs": {"packed": np.array([196], u8), "n": 5, "encoding": "base3"}},
        {"op": "unpack", "comment": "base3: 242 is the largest byte", "inputs": {"packed": np.array([242], u8), "n": 5, "encoding": "base3"}},
        {"op": "unpack", "comment": "base3: 243 is malformed", "inputs": {"packed": np.array([243], u8), "n": 5, "encoding": "base3"}},
        {"op": "unpack", "comment": "base3: nonzero pad digit", "inputs": {"packed": np.array([81], u8), "n": 4, "encoding": "base3"}},
        {"op": "unpack", "comment": "unknown encoding", "inputs": {"packed": np.array([0], u8), "n": 1, "encoding": "3bit"}},
        {"op": "unpack", "comment": "empty", "inputs": {"packed": np.zeros(0, u8), "n": 0, "encoding": "base3"}},
    ]
    out += [
        {"op": "pack", "comment": "9 trits (a multiple of 5 plus 4): two base-3 bytes, the second holding four digits",
         "inputs": {"trits": np.resize(cyc, 9)[::-1].copy(), "encoding": "base3"}},
        {"op": "pack", "comment": "value -2 is not a trit (its low two bits would read as code 2)",
         "inputs": {"trits": np.array([1, -2, 0], i8), "encoding": "2bit"}},
        {"op": "unpack", "comment": "2bit: code 3 in the last trit of a full byte is malformed",
         "inputs": {"packed": np.array([0b11000110], u8), "n": 4, "encoding": "2bit"}},
        {"op": "unpack", "comment": "2bit: nonzero pad code in the second byte",
         "inputs": {"packed": np.array([0b01001001, 0b00001001], u8), "n": 5, "encoding": "2bit"}},
        {"op": "unpack", "comment": "2bit: one byte short for 5 trits", "inputs": {"packed": np.array([9], u8), "n": 5, "encoding": "2bit"}},
        {"op": "unpack", "comment": "base3: 243 in the second byte is malformed",
         "inputs": {"packed": np.array([10, 243], u8), "n": 10, "encoding": "base3"}},
        {"op": "unpack", "comment": "base3: nonzero pad digits 1 * 27 (n = 3 of 5)",
         "inputs": {"packed": np.array([27], u8), "n": 3, "encoding": "base3"}},
        {"op": "unpack", "comment": "unknown encoding 'ternary'", "inputs": {"packed": np.array([0], u8), "n": 1, "encoding": "ternary"}},
    ]
    return out
