"""Backend registry and dispatch.

``get_backend(name)`` returns a :class:`Backend`: a name, an array namespace
``xp`` and the kernels of :mod:`vsaopt.protocol`.  Public functions take
``backend=None`` (pick from the arrays given), a registry name, or a backend
object, and resolve it once with :func:`resolve_backend`.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .errors import BackendError, ConfigError, MissingKernelError
from .protocol import KERNEL_NAMES

__all__ = [
    "Backend",
    "BACKEND_NAMES",
    "ENV_VAR",
    "env_backend",
    "get_backend",
    "available_backends",
    "backend_status",
    "resolve_backend",
    "check_kernels",
    "is_device_array",
    "is_gpu",
    "to_host",
    "to_device",
]

log = logging.getLogger("vsaopt")

#: Registry names, fastest-first within each device kind.
BACKEND_NAMES: tuple[str, ...] = ("numpy", "numba", "cupy")
#: Environment variable that overrides the automatic choice.
ENV_VAR = "VSAOPT_BACKEND"

_MODULES = {name: f"vsaopt.backends.{name}" for name in BACKEND_NAMES}
_loaded: dict[str, Backend] = {}
_failed: dict[str, str] = {}


class Backend:
    """A resolved backend: registry ``name``, array namespace ``xp`` and its kernels.

    Kernels are attributes (``be.quantize_threshold(x, t)``).  Asking for a
    kernel the backend does not have raises :class:`~vsaopt.errors.BackendError`;
    nothing falls back silently to another backend.
    """

    def __init__(
        self,
        name: str,
        xp: Any,
        kernels: Mapping[str, Callable[..., Any]],
        *,
        array_type: type,
        device: str = "cpu",
        details: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.xp = xp
        self.array_type = array_type
        self.device = device
        self.details = dict(details or {})
        self.kernel_names = tuple(kernels)
        self.__dict__.update(kernels)

    def __getattr__(self, attr: str) -> Any:
        # Only reached for names not set in __init__: a missing kernel (hasattr() stays usable).
        raise MissingKernelError(f"backend {self.name!r} has no kernel {attr!r}")

    def owns(self, array: Any) -> bool:
        """Whether ``array`` lives where this backend computes (numpy vs cupy arrays)."""
        return isinstance(array, self.array_type)

    @property
    def is_gpu(self) -> bool:
        """Whether this backend computes on a GPU (its arrays are device arrays)."""
        return is_gpu(self)

    def to_host(self, a: Any) -> np.ndarray:
        """A host numpy copy of ``a``; see :func:`to_host`."""
        return to_host(a)

    def to_device(self, a: Any) -> Any:
        """``a`` where this backend computes; see :func:`to_device`."""
        return to_device(self, a)

    def __repr__(self) -> str:
        return f"Backend(name={self.name!r}, device={self.device!r}, kernels={len(self.kernel_names)})"


def env_backend() -> str | None:
    """The backend named by the ``VSAOPT_BACKEND`` environment variable, checked.

    Every default choice of a backend reads the variable through this function,
    so a typo is refused wherever it would be used instead of being ignored.

    Returns
    -------
    str or None
        A registry name, or None when the variable is unset, empty or ``"auto"``
        (case and surrounding blanks do not matter).

    Raises
    ------
    ConfigError
        The variable holds anything else; the message names it and the valid values.

    Examples
    --------
    >>> env_backend() in (None, *BACKEND_NAMES)
    True
    """
    raw = os.environ.get(ENV_VAR, "")
    name = raw.strip().lower()
    if name in ("", "auto"):
        return None
    if name not in _MODULES:
        raise ConfigError(f"environment variable {ENV_VAR}: expected one of {', '.join(('auto',) + BACKEND_NAMES)} "
                          f"(or unset), got {raw!r}")
    return name


def get_backend(name: str | None = "auto") -> Backend:
    """Return the backend registered as ``name``.

    Parameters
    ----------
    name : {"auto", "numpy", "numba", "cupy"}
        ``"auto"`` (or ``None``) honours the ``VSAOPT_BACKEND`` environment
        variable, else picks cupy when a GPU is usable, else numba, else numpy.

    Raises
    ------
    BackendError
        The backend cannot run here; the message says why (not installed, no GPU).
    ConfigError
        ``name`` is not a registered backend name, or (for ``"auto"``)
        ``VSAOPT_BACKEND`` holds an unknown name.

    Examples
    --------
    >>> get_backend("numpy").name
    'numpy'
    """
    if name is not None and not isinstance(name, str):
        raise ConfigError(f"backend: expected a backend name (str) or None, got {type(name).__name__}")
    if name is None or name == "auto":
        env = env_backend()
        if env is not None:
            return get_backend(env)
        for candidate in ("cupy", "numba", "numpy"):
            if _try_load(candidate) is not None:
                return _loaded[candidate]
        raise BackendError("no backend could be loaded: " + "; ".join(f"{k}: {v}" for k, v in _failed.items()))
    if name not in _MODULES:
        raise ConfigError(f"backend: expected one of {', '.join(('auto',) + BACKEND_NAMES)}, got {name!r}")
    backend = _try_load(name)
    if backend is None:
        raise BackendError(f"backend {name!r} is not available: {_failed[name]}")
    return backend


def _try_load(name: str) -> Backend | None:
    if name in _loaded:
        return _loaded[name]
    if name in _failed:
        return None
    try:
        module = importlib.import_module(_MODULES[name])
        backend = module.make_backend()
        check_kernels(backend)
    except BackendError as exc:
        _failed[name] = str(exc)
        return None
    except ImportError as exc:
        _failed[name] = f"not installed ({exc})"
        return None
    _loaded[name] = backend
    log.debug("loaded backend %s", name)
    return backend


def check_kernels(backend: Any) -> None:
    """Raise :class:`~vsaopt.errors.BackendError` unless ``backend`` has every kernel of the protocol.

    Parameters
    ----------
    backend : Backend
        A backend object; its kernels are its attributes named in
        :data:`vsaopt.protocol.KERNEL_NAMES`.

    Raises
    ------
    BackendError
        Naming the backend and the kernels it lacks.

    Examples
    --------
    >>> import numpy as np
    >>> check_kernels(Backend("empty", np, {}, array_type=np.ndarray))
    Traceback (most recent call last):
    ...
    vsaopt.errors.BackendError: backend 'empty' lacks kernels: philox4x32, ...
    """
    missing = [k for k in KERNEL_NAMES if not callable(getattr(backend, k, None))]
    if missing:
        raise BackendError(f"backend {backend.name!r} lacks kernels: {', '.join(missing)}")


def available_backends() -> list[str]:
    """Names of the backends that load and run on this machine, in registry order."""
    return [name for name in BACKEND_NAMES if _try_load(name) is not None]


def backend_status() -> dict[str, str]:
    """For each registered backend: ``"available"`` or the reason it is not."""
    return {name: "available" if _try_load(name) is not None else _failed[name] for name in BACKEND_NAMES}


def is_device_array(x: Any) -> bool:
    """Whether ``x`` is a GPU (cupy) array rather than a host array or scalar.

    Examples
    --------
    >>> import numpy as np
    >>> is_device_array(np.zeros(3))
    False
    """
    return type(x).__module__.split(".")[0] == "cupy"


def is_gpu(be: Any) -> bool:
    """Whether the backend object ``be`` computes on a GPU.

    Any object with a ``name`` and an ``xp`` is a backend; one without a
    ``device`` attribute computes on the host.

    Examples
    --------
    >>> is_gpu(get_backend("numpy"))
    False
    """
    return getattr(be, "device", "cpu") == "gpu"


def to_host(a: Any, *, copy: bool = True) -> np.ndarray:
    """``a`` (a numpy or cupy array, or a scalar) as a host numpy array.

    Parameters
    ----------
    a : array_like
        A host or device array, or a scalar.
    copy : bool, default True
        Return a new array that shares no memory with ``a``.  With ``False``
        a host array is returned as it is (a device array is always copied).

    Returns
    -------
    numpy.ndarray
        The values of ``a`` on the host (0-d for a scalar).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(3)
    >>> y = to_host(x)
    >>> y[0] = 7
    >>> x.tolist(), y.tolist()
    ([0, 1, 2], [7, 1, 2])
    """
    if is_device_array(a):
        return a.get()
    return np.array(a, copy=True) if copy else np.asarray(a)


def to_device(be: Any, a: Any) -> Any:
    """``a`` moved to where the backend ``be`` computes (host arrays stay as they are on a host backend).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(3)
    >>> to_device(get_backend("numpy"), x) is x
    True
    """
    return be.xp.asarray(a) if is_gpu(be) else a


def resolve_backend(backend: Backend | str | None, *arrays: Any) -> Backend:
    """Resolve the ``backend=`` argument of a public function, given its array arguments.

    ``None`` means: cupy for cupy arrays; for numpy arrays the backend named by
    ``VSAOPT_BACKEND`` when it is a CPU backend, else numba when it loads, else
    the numpy reference.  An explicit backend must compute where the arrays
    live (numpy arrays with a CPU backend, cupy arrays with cupy).

    Raises
    ------
    ConfigError
        ``backend`` is neither None, a registered name nor a backend object, or
        (for None) ``VSAOPT_BACKEND`` holds an unknown name.
    BackendError
        The backend cannot run here, or computes elsewhere than the arrays live.
    """
    if backend is None:
        env = env_backend()  # checked even for device arrays: a typo is never silently ignored
        if any(is_device_array(a) for a in arrays):
            return get_backend("cupy")
        if env in ("numpy", "numba"):
            return get_backend(env)
        return get_backend("numba") if _try_load("numba") is not None else get_backend("numpy")
    if isinstance(backend, str):
        be = get_backend(backend)
    elif hasattr(backend, "name") and hasattr(backend, "xp"):
        be = backend  # type: ignore[assignment]
    else:
        raise ConfigError(f"backend: expected None, a backend name or a backend object, got {type(backend).__name__}")
    for a in arrays:
        if is_device_array(a) != is_gpu(be):
            where = "a cupy (GPU) array" if is_device_array(a) else "a host array"
            raise BackendError(f"backend {be.name!r} cannot compute on {where}; pass backend=None or move the array")
    return be
