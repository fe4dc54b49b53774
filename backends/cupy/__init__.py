"""The cupy GPU backend (registry name ``"cupy"``).

Loading checks, in order: cupy importable, a CUDA device usable.  The GPU
kernels themselves are not part of this release: on a machine with a GPU the
backend still reports itself unavailable, with that reason, rather than
falling back to another backend.
"""

from __future__ import annotations

from vsaopt.backend import Backend
from vsaopt.errors import BackendError


def gpu_reason() -> str | None:
    """Why cupy cannot compute here, or None when a CUDA device is usable."""
    try:
        import cupy
    except ImportError as exc:
        return f"cupy is not installed ({exc}); install vsaopt[cuda12] or vsaopt[cuda13]"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver or runtime missing
        return f"no usable CUDA device ({exc})"
    return None if count > 0 else "no CUDA device found"


def make_backend() -> Backend:
    """The cupy backend; :class:`BackendError` with the reason when it cannot run."""
    reason = gpu_reason()
    if reason is not None:
        raise BackendError(reason)
    raise BackendError("a CUDA device is present, but this release has no cupy kernels yet")
