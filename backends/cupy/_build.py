"""Building and launching the CUDA modules of the cupy backend.

Each ``<name>.cu`` beside this file becomes one ``cupy.RawModule``, compiled
by NVRTC on first use (memoized per device; never at import) with :data:`OPTIONS`.  The
shared header ``common.cuh`` is pasted into the source text in place of its
``#include`` line, so the source cupy hashes for its kernel cache is the whole
program (a header edit cannot reuse a stale binary).

This module imports without cupy: ``cupy`` is imported inside the functions.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import numpy as np

#: NVRTC options of every module: no contraction of ``a*b + c`` into an FMA, C++17.
OPTIONS: tuple[str, ...] = ("--fmad=false", "-std=c++17")
#: Directory of the ``.cu`` / ``.cuh`` sources.
SOURCE_DIR = Path(__file__).resolve().parent
#: Threads per block of the grid-stride kernels (8 warps).
THREADS = 256
#: Blocks per multiprocessor a grid-stride launch asks for at most.
BLOCKS_PER_SM = 16

_INCLUDE = re.compile(r'^#include "([\w.]+\.cuh)"\s*$', re.MULTILINE)


def source_text(filename: str) -> str:
    """The source of ``filename`` with every local ``#include "x.cuh"`` replaced by that header's text."""
    text = (SOURCE_DIR / filename).read_text(encoding="utf-8")

    def paste(match: re.Match) -> str:
        header = (SOURCE_DIR / match.group(1)).read_text(encoding="utf-8")
        return header.replace("#pragma once", f"// --- {match.group(1)} ---")

    return _INCLUDE.sub(paste, text)


def current_device() -> int:
    """Id of the CUDA device cupy launches on in this thread."""
    import cupy

    return int(cupy.cuda.runtime.getDevice())


def module(filename: str) -> Any:
    """The compiled ``cupy.RawModule`` of one source file for the current device (built once per device)."""
    return _module(filename, current_device())


def function(filename: str, name: str) -> Any:
    """The ``extern "C"`` kernel ``name`` of ``filename``, loaded on the current device."""
    return _function(filename, name, current_device())


def multiprocessors() -> int:
    """Streaming multiprocessors of the current device."""
    return _multiprocessors(current_device())


# Memoized per device id: a module loaded (and an attribute read) on one device is not valid on another.
@functools.cache
def _module(filename: str, device: int) -> Any:
    import cupy

    with cupy.cuda.Device(device):
        return cupy.RawModule(code=source_text(filename), options=OPTIONS)


@functools.cache
def _function(filename: str, name: str, device: int) -> Any:
    import cupy

    with cupy.cuda.Device(device):
        return _module(filename, device).get_function(name)


@functools.cache
def _multiprocessors(device: int) -> int:
    import cupy

    return int(cupy.cuda.Device(device).attributes["MultiProcessorCount"])


def grid(work: int, threads: int | None = None) -> int:
    """Blocks for ``work`` independent items, one per thread, capped for a grid-stride loop (at least 1)."""
    return max(1, min(-(-work // (threads or THREADS)), multiprocessors() * BLOCKS_PER_SM))


def launch(filename: str, name: str, work: int, args: tuple, threads: int | None = None) -> None:
    """Launch kernel ``name`` over ``work`` thread-sized items (grid-stride inside the kernel); ``THREADS`` a block."""
    threads = threads or THREADS
    function(filename, name)((grid(work, threads),), (threads,), args)


def launch_warps(filename: str, name: str, warps: int, args: tuple) -> None:
    """Launch kernel ``name`` with ``warps`` warp-sized items (warp-stride inside the kernel)."""
    launch(filename, name, 32 * warps, args)


def as_device(a: Any, dtype: Any = None) -> Any:
    """``a`` as a C-contiguous cupy array, without a copy where possible.

    cupy arrays pass through; arrays of other GPU libraries (a torch CUDA
    tensor) come in through DLPack (``cupy.from_dlpack``, zero-copy); host
    arrays are copied to the device.  ``dtype``, when given, converts.
    """
    import cupy

    if not isinstance(a, cupy.ndarray):
        a = cupy.from_dlpack(a) if on_cuda_device(a) else cupy.asarray(np.asarray(a))
    return cupy.ascontiguousarray(a if dtype is None or a.dtype == dtype else a.astype(dtype))


#: DLPack device types of memory a CUDA kernel can read: kDLCUDA, kDLCUDAManaged.
_DLPACK_CUDA = (2, 13)


def on_cuda_device(a: Any) -> bool:
    """Whether ``a`` exports CUDA device memory through DLPack (``__dlpack_device__``)."""
    try:
        return int(a.__dlpack_device__()[0]) in _DLPACK_CUDA
    except (AttributeError, TypeError, ValueError):
        return False


# Typed kernel scalars: cupy passes numpy scalars with their exact C type.
def u64(v: int) -> np.uint64:
    """A ``unsigned long long`` kernel argument."""
    return np.uint64(v)


def u32(v: int) -> np.uint32:
    """An ``unsigned int`` kernel argument."""
    return np.uint32(v)


def i32(v: int) -> np.int32:
    """An ``int`` kernel argument."""
    return np.int32(v)


def f32(v: float) -> np.float32:
    """A ``float`` kernel argument (rounded to nearest)."""
    return np.float32(v)


def f64(v: float) -> np.float64:
    """A ``double`` kernel argument."""
    return np.float64(v)


def draw_args(seed: int, stream: int, step: int, tensor: int) -> tuple:
    """The ``k0, k1, tensor, step, stream`` words of a draw (``vsaopt_draw`` in ``common.cuh``)."""
    return (u32(seed & 0xFFFFFFFF), u32(seed >> 32), u32(tensor), u32(step), u32(stream))
