"""The cupy GPU backend (registry name ``"cupy"``): every protocol kernel as a CUDA kernel.

Loading checks, in order: cupy importable, a CUDA device usable, NVRTC
loadable.  When one fails, :func:`make_backend` raises
:class:`~vsaopt.errors.BackendError` with the reason and nothing falls back to
another backend.  ``import vsaopt.backends.cupy`` never imports cupy; the
kernel modules import it inside their functions.

Where the sources live, how they are built, how the spec'd reductions map to
the GPU and how far the backend is tested: ``docs/cupy.md``.
"""

from __future__ import annotations

import importlib

from vsaopt.backend import Backend
from vsaopt.errors import BackendError

#: Kernel modules of this backend; each defines a ``KERNELS`` name -> function mapping.
KERNEL_MODULES = ("philox", "reduce", "ternary", "pack", "vsa", "accum", "predict", "record", "matmul", "comm")
#: Kernel modules that launch no CUDA source of their own (composed of the other modules' kernels).
COMPOSED_MODULES = ("record",)
#: The CUDA source files (package data), one ``cupy.RawModule`` each, in the order of the other kernel modules.
CUDA_SOURCES = ("philox.cu", "reduce.cu", "ternary.cu", "pack.cu", "vsa.cu", "accum.cu", "predict.cu", "matmul.cu", "comm.cu")


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
