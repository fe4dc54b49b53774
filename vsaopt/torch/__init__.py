"""PyTorch integration: phase training on ``torch.nn`` models and the ternary all-reduce (a comm hook) for DDP.

Install with ``pip install "vsaopt[torch]"``.  ``import vsaopt`` never imports
torch; importing :mod:`vsaopt.torch` does, and raises
:class:`TorchUnavailableError` (a :class:`~vsaopt.errors.BackendError` that is
also an :class:`ImportError`) when torch is missing.

- :class:`PhaseAccelerator`: a phase trainer driven from a training loop over a
  model's trainable parameters (gradients cross as DLPack views, no copies);
- :func:`ternary_comm_hook` and :class:`TernaryCommState`: TernGrad-style
  compressed gradient all-reduce for
  ``DistributedDataParallel.register_comm_hook(state, hook)``;
- :func:`comm_compare_benchmark` (bytes on the wire, hook compute, step time and
  accuracy of fp32, fp16, PowerSGD and the ternary hook on local gloo
  processes, and the step time modeled on real links) and
  :func:`digits_comparison` (plain torch vs :class:`PhaseAccelerator` on
  scikit-learn's digits, on the training harness of :mod:`vsaopt.train.harness`
  with the torch learner of :mod:`vsaopt.torch.learner`).

Examples
--------
>>> import torch
>>> from vsaopt.torch import PhaseAccelerator
>>> model = torch.nn.Linear(4, 2)
>>> accel = PhaseAccelerator(model, backend="numpy")
>>> accel.parameter_names
('weight', 'bias')
"""

from __future__ import annotations

from typing import Any

from ..errors import BackendError


class TorchUnavailableError(BackendError, ImportError):
    """PyTorch is not installed (or fails to import); install the ``torch`` extra."""


try:
    import torch as _torch  # noqa: F401
except ImportError as _exc:  # pragma: no cover - exercised only without torch
    raise TorchUnavailableError(
        f"vsaopt.torch needs PyTorch, which could not be imported ({_exc}); "
        "install it with: pip install \"vsaopt[torch]\""
    ) from _exc

__all__ = [
    "TorchUnavailableError",
    "PhaseAccelerator",
    "UntrackedParameterWarning",
    "TernaryCommState",
    "CommStats",
    "ternary_comm_hook",
    "COMM_HOOK_STREAM",
    "comm_compare_benchmark",
    "digits_comparison",
    "run_local_processes",
    "advise",
]

# public name -> the module defining it, relative to this package
_LAZY = {
    "PhaseAccelerator": ".accelerator",
    "UntrackedParameterWarning": ".param_source",
    "TernaryCommState": ".comm_hook",
    "CommStats": ".comm_hook",
    "ternary_comm_hook": ".comm_hook",
    "COMM_HOOK_STREAM": ".comm_hook",
    "comm_compare_benchmark": "..benchmarks.torch_comm_compare",
    "digits_comparison": ".demo",
    "run_local_processes": ".launch",
}

from .advise import advise  # noqa: E402  (eager: a later ``import vsaopt.torch.advise`` must not rebind the name to the module)


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'vsaopt.torch' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(mod, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
