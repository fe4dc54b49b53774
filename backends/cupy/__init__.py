"""The cupy GPU backend (registry name ``"cupy"``): every protocol kernel as a CUDA kernel.

Loading checks, in order: cupy importable, a CUDA device usable, NVRTC
loadable.  When one fails, :func:`make_backend` raises
:class:`~vsaopt.errors.BackendError` with the reason and nothing falls back to
another backend.  ``import vsaopt.backends.cupy`` never imports cupy; the
kernel modules import it inside their functions.

Sources and build
-----------------
The CUDA source lives beside the wrappers: ``philox.cu``, ``reduce.cu``,
``ternary.cu``, ``pack.cu``, ``vsa.cu``, ``accum.cu``, ``predict.cu`` and the
shared header ``common.cuh`` (Philox4x32, the summation constants, the warp
fold).  Every kernel is ``extern "C"`` and named ``vsaopt_*``.  Each ``.cu``
file becomes one ``cupy.RawModule``, compiled by NVRTC on its first use
(memoized per process with :func:`functools.cache`, never at import) with
``options=("--fmad=false", "-std=c++17")``; the header is pasted into the
source text so cupy's on-disk kernel cache keys on the whole program.
Besides ``--fmad=false``, every float operation is written as an explicitly
rounded intrinsic (``__fadd_rn``, ``__fmul_rn``, ``__fdiv_rn``,
``__dadd_rn``, ``__dmul_rn``, ``__ddiv_rn``, ``__double2float_rn``), which
the compiler never contracts into a fused multiply-add; NVRTC's defaults keep
subnormals (no ``--ftz``) and IEEE division.  Kernels use grid-stride (or
warp-stride) loops with 64-bit indices and move four elements at once
(``float4``, 32-bit groups of int8) where the arrays are aligned; the wrappers
launch them with no per-element Python and use cupy only for allocation and
exact glue.  Following the design notes measured on an
H100, every kernel is a grid-stride ``RawModule`` kernel (not an
``ElementwiseKernel``) and each reduction is one fused pass plus the block
fold (not a chain of small cupy calls).

How the spec'd reductions map to the GPU
----------------------------------------
``spec_sum`` (spec/SPEC.md section 3): one warp per 8192-element block.  Lane
``l`` adds elements ``kB + 32m + l`` for ``m = 0 .. 255`` in order, from
+0.0, one ``__dadd_rn`` each; the lane fold ``h = 16, 8, 4, 2, 1`` is the
warp's ``__shfl_down_sync`` tree (lane ``l < h`` adds lane ``l + h``, and
f64 addition is commutative, so lane 0 ends with exactly the spec's block
sum).  The block sums are then folded pairwise, ``s[2j] + s[2j+1]`` with an
odd last one carried, level by level: one thread per row when a row has at
most 32 block sums, otherwise one thread block per row with a barrier
between levels (both give the same sums).  ``abs_stats`` and
``abs_sum_above`` are these two launches plus one device-to-host copy of
both host scalars; their maximum and count are order-free integers
(``atomicMax`` / ``atomicAdd``).  Float ``dot`` and ``row_sumsq`` run one
warp per (row pair, block) over exact f64 products, then the same fold per
pair.  ``bundle_sum`` (f32) is one thread per column adding rows in order;
``wls_fit`` one thread per element adding history rows in order.  Integer
results (int8 dot, sums of squares, equal counts, bundles) are exact and use
atomics in any order.  Philox draws: one thread per Philox block of four
elements, counter ``(i // 4, tensor, step, stream)``, key ``(seed lo, seed
hi)``; ``random_signs`` gives each lane of a warp one block and shuffles the
word of each 32-element row from the lane that drew it.

Testing status
--------------
This version of the backend has not yet been executed on a GPU.  Its tests
(``tests/test_cupy_backend.py``) compile every source to PTX for ``sm_90``
with ``nvcc --fmad=false`` (and with NVRTC and the options above where
``libnvrtc`` is found), check that the PTX holds no floating-point
``fma``/``mad`` instruction, that every kernel a wrapper launches exists in the
sources with C linkage and that the wrappers cover every protocol kernel.
They also compile the sources as host C++ against an emulation of the CUDA
execution model (one fiber per CUDA thread; warp shuffles and
``__syncthreads`` as barriers) and run the wrappers on numpy stand-ins for
cupy arrays: every kernel matches the numpy reference byte for byte, the
emulated backend passes vsaopt's conformance suite (properties and golden
vectors), and a seeded run of both trainers, the accumulators and the
compressors matches numba at every step.  That checks the index arithmetic,
launch arguments and reduction order, not the device: NVRTC's code
generation, the hardware's arithmetic and memory model, and the speed of
these kernels are unmeasured.  On a machine with a GPU the cross-backend
property tests and ``vsaopt spec verify --backend cupy`` include this backend
automatically.
"""

from __future__ import annotations

import importlib

from vsaopt.backend import Backend
from vsaopt.errors import BackendError

#: Kernel modules of this backend; each defines a ``KERNELS`` name -> function mapping.
KERNEL_MODULES = ("philox", "reduce", "ternary", "pack", "vsa", "accum", "predict")
#: The CUDA source files (package data), one ``cupy.RawModule`` each.
CUDA_SOURCES = ("philox.cu", "reduce.cu", "ternary.cu", "pack.cu", "vsa.cu", "accum.cu", "predict.cu")


def kernels() -> dict:
    """Every kernel of this backend, by name (imports the wrappers; compiles nothing)."""
    table: dict = {}
    for mod in KERNEL_MODULES:
        table.update(importlib.import_module(f"{__name__}.{mod}").KERNELS)
    return table


def gpu_reason() -> str | None:
    """Why cupy cannot compute here, or None when a CUDA device and NVRTC are usable."""
    try:
        import cupy
    except ImportError as exc:
        return f"cupy is not installed ({exc}); install vsaopt[cuda12] or vsaopt[cuda13]"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver or runtime missing
        return f"no usable CUDA device ({exc})"
    if count <= 0:
        return "no CUDA device found"
    try:
        cupy.cuda.nvrtc.getVersion()
    except Exception as exc:  # the kernels are compiled at run time by NVRTC
        return f"NVRTC (the CUDA run-time compiler) cannot be loaded ({exc})"
    return None


def make_backend() -> Backend:
    """The cupy backend; :class:`BackendError` with the reason when it cannot run."""
    reason = gpu_reason()
    if reason is not None:
        raise BackendError(reason)
    import cupy

    from ._build import OPTIONS

    device = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(device.id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    details = {
        "cupy": cupy.__version__,
        "device": f"{device.id}: {name}",
        "compute capability": str(device.compute_capability),
        "CUDA runtime": str(cupy.cuda.runtime.runtimeGetVersion()),
        "NVRTC": ".".join(map(str, cupy.cuda.nvrtc.getVersion())),
        "build options": " ".join(OPTIONS),
    }
    return Backend("cupy", cupy, kernels(), array_type=cupy.ndarray, device="gpu", details=details)
