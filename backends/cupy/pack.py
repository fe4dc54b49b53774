"""Trit packing on the GPU (``pack.cu``): 2-bit and base-3, with the validity flag of the protocol.

Each kernel writes every byte (or trit) and raises a device flag on malformed
input; the flag is read back to the host (one synchronizing copy), since the
protocol returns it as a Python bool.
"""

from __future__ import annotations

from typing import Any

from . import _build as b

SOURCE = "pack.cu"
CUDA_NAMES = ("vsaopt_pack_2bit", "vsaopt_unpack_2bit", "vsaopt_pack_base3", "vsaopt_unpack_base3")


def _pack(name: str, trits: Any, per: int) -> tuple[Any, bool]:
    import cupy

    t = b.as_device(trits, cupy.int8)
    n = t.shape[0]
    nbytes = -(-n // per)
    out = cupy.empty(nbytes, dtype=cupy.uint8)
    if nbytes == 0:
        return out, True
    bad = cupy.zeros(1, dtype=cupy.int32)
    b.launch(SOURCE, name, nbytes, (t, out, b.u64(n), b.u64(nbytes), bad))
    return out, not bool(bad.get()[0])


def _unpack(name: str, packed: Any, n: int, per: int, out: Any = None) -> tuple[Any, bool]:
    import cupy

    p = b.as_device(packed, cupy.uint8)
    nbytes = p.shape[0]
    out = cupy.empty(n, dtype=cupy.int8) if out is None else out
    if nbytes == 0:
        return out, True
    bad = cupy.zeros(1, dtype=cupy.int32)
    b.launch(SOURCE, name, nbytes, (p, out, b.u64(n), b.u64(nbytes), bad))
    return out, not bool(bad.get()[0])


def pack_2bit(trits: Any) -> tuple[Any, bool]:
    """Four trits a byte, trit ``i`` at bits ``2*(i % 4)``; also whether every input was a trit."""
    return _pack("vsaopt_pack_2bit", trits, 4)


def unpack_2bit(packed: Any, n: int, out: Any = None) -> tuple[Any, bool]:
    """Inverse of :func:`pack_2bit` for ``n`` trits (into ``out`` when given); also whether every code and pad was valid."""
    return _unpack("vsaopt_unpack_2bit", packed, n, 4, out)


def pack_base3(trits: Any) -> tuple[Any, bool]:
    """Five trits a byte, ``sum (t_k mod 3) * 3**k``; also whether every input was a trit."""
    return _pack("vsaopt_pack_base3", trits, 5)


def unpack_base3(packed: Any, n: int, out: Any = None) -> tuple[Any, bool]:
    """Inverse of :func:`pack_base3` for ``n`` trits (into ``out`` when given); also whether every byte and pad was valid."""
    return _unpack("vsaopt_unpack_base3", packed, n, 5, out)


KERNELS = {"pack_2bit": pack_2bit, "unpack_2bit": unpack_2bit, "pack_base3": pack_base3, "unpack_base3": unpack_base3}
