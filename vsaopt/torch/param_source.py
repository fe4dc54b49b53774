"""Which parameters an accelerator follows: a module, ``named_parameters()``, ``parameters()`` or a mapping.

:class:`ParamSource` keeps what it was given, so parameters that become
trainable after construction (unfrozen, or added to the module) can be found
and reported with :class:`UntrackedParameterWarning` instead of being
silently left out of phase training.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from ..errors import BackendError, ConfigError, DTypeError, ShapeError
from ._dlpack import FLOAT_DTYPES

__all__ = ["ParamSource", "UntrackedParameterWarning"]


class UntrackedParameterWarning(UserWarning):
    """A trainable parameter that the accelerator does not follow (unfrozen or added after it was built).

    Such a parameter gets real gradients in backward steps only: its ``p.grad``
    is never predicted.  Build a new accelerator to include it.
    """


def _pairs(source: Any) -> tuple[list[tuple[str, Any]], torch.nn.Module | None]:
    if isinstance(source, torch.nn.Module):
        return list(source.named_parameters()), source
    if isinstance(source, Mapping):
        return list(source.items()), None
    if isinstance(source, Iterable) and not isinstance(source, (str, bytes, torch.Tensor)):
        items = list(source)
        if items and all(isinstance(it, torch.Tensor) for it in items):  # model.parameters(): named by position
            return [(str(k), it) for k, it in enumerate(items)], None
        return items, None
    raise ConfigError(
        "model_or_named_parameters: expected a torch.nn.Module, a mapping, an iterable of (name, parameter) pairs "
        f"or of parameters, got {type(source).__name__}"
    )


class ParamSource:
    """The trainable parameters of what a user passed, with their names, and the means to spot new ones.

    Parameters
    ----------
    source : torch.nn.Module, mapping name -> parameter, iterable of (name, parameter), or iterable of parameters
        A module names its parameters as ``named_parameters()`` does; bare
        parameters (``model.parameters()``) are named ``"0"``, ``"1"``, ... in
        order.  Parameters with ``requires_grad=False`` are left out.

    Raises
    ------
    ConfigError
        No trainable parameter, a malformed pair, an empty or duplicate name,
        a non-tensor, or one tensor given twice.
    DTypeError
        A followed parameter is not a dense float32, float16, bfloat16 or float64 tensor.
    BackendError
        Followed parameters on several devices, or on a device other than cpu and cuda.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 2)
    >>> ParamSource(model.parameters()).names
    ('0', '1')
    >>> ParamSource(model).names
    ('weight', 'bias')
    """

    def __init__(self, source: Any) -> None:
        items, self.module = _pairs(source)
        followed: list[tuple[str, torch.Tensor]] = []
        frozen: list[tuple[str, torch.Tensor]] = []
        names: set[str] = set()
        ids: set[int] = set()
        for k, item in enumerate(items):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise ConfigError(f"model_or_named_parameters[{k}]: expected a (name, parameter) pair, got {type(item).__name__}")
            name, p = item
            if not isinstance(name, str) or not name:
                raise ConfigError(f"model_or_named_parameters[{k}]: the name must be a non-empty str, got {name!r}")
            if not isinstance(p, torch.Tensor):
                raise ConfigError(f"model_or_named_parameters[{name!r}]: expected a torch tensor, got {type(p).__name__}")
            if name in names:
                raise ConfigError(f"model_or_named_parameters: duplicate name {name!r}")
            if id(p) in ids:
                raise ConfigError(f"model_or_named_parameters[{name!r}]: this tensor was already given under another name")
            names.add(name)
            ids.add(id(p))
            (followed if p.requires_grad else frozen).append((name, p))
        if not followed:
            raise ConfigError("model_or_named_parameters: no trainable parameters (requires_grad=True) given")
        for name, p in followed:
            _check_kind(name, p)
        devices = {p.device for _, p in followed}
        if len(devices) > 1:
            raise BackendError(f"model_or_named_parameters: all parameters must be on one device, got {sorted(str(d) for d in devices)}")
        self.params = followed
        self.device: torch.device = next(iter(devices))
        self._shapes = tuple(p.shape for _, p in followed)
        self.names = tuple(n for n, _ in followed)
        self._frozen = frozen
        self._ids = frozenset(id(p) for _, p in followed)
        self._reported: set[str] = set()

    def trainable(self, where: str) -> list[bool]:
        """Whether each followed parameter is trainable now, after checking that none changed in a way a trainer cannot follow.

        A parameter may be frozen and unfrozen (``requires_grad_``) or cast to
        another floating dtype (``model.double()``) at any time: those changes
        are followed.  A change of shape (``p.data`` replaced by a tensor of
        another size, a resized embedding) or of device is refused: the
        trainer's layout and buffers are fixed at construction.  For a module,
        a followed parameter that the module no longer holds under its name
        (replaced or deleted) is refused too.

        Raises
        ------
        ShapeError, BackendError, DTypeError
            A parameter changed shape, device or to a non-floating dtype; names the parameter.
        ConfigError
            A module's parameter was replaced or removed.
        """
        flags = []
        for (name, p), shape in zip(self.params, self._shapes):
            if p.shape != shape:
                raise ShapeError(
                    f"{where}: parameter {name!r} changed shape from {tuple(shape)} to {tuple(p.shape)} after the "
                    "PhaseAccelerator was built; build a new PhaseAccelerator for the new shapes"
                )
            if p.device != self.device:
                raise BackendError(f"{where}: parameter {name!r} moved from {self.device} to {p.device}; build a new PhaseAccelerator on the new device")
            if p.dtype not in FLOAT_DTYPES:
                raise DTypeError(f"{where}: parameter {name!r} is now {p.dtype}; expected float32, float16, bfloat16 or float64")
            flags.append(p.requires_grad)
        return flags

    def check_module(self, where: str) -> list[str]:
        """For a module: refuse followed parameters it no longer holds; return the names of new untracked ones (each once).

        Raises
        ------
        ConfigError
            A followed parameter was replaced (``module.weight = Parameter(...)``) or removed.
        """
        if self.module is None:
            return self.new_untracked()
        now = dict(self.module.named_parameters())
        for name, p in self.params:
            if now.get(name) is not p:
                what = "removed from" if name not in now else "replaced in"
                raise ConfigError(
                    f"{where}: parameter {name!r} was {what} the module after the PhaseAccelerator was built; "
                    "the optimizer and the accelerator still hold the old tensor: build both anew"
                )
        fresh = [n for n, p in now.items() if p.requires_grad and id(p) not in self._ids and n not in self._reported]
        self._reported.update(fresh)
        return fresh

    def untracked(self) -> list[str]:
        """Names of parameters now trainable that are not followed: unfrozen since, or (for a module) added since."""
        if self.module is not None:
            candidates: Iterable[tuple[str, torch.Tensor]] = self.module.named_parameters()
        else:
            candidates = self._frozen
        return [n for n, p in candidates if p.requires_grad and id(p) not in self._ids]

    def new_untracked(self) -> list[str]:
        """:meth:`untracked` names not returned by an earlier call (each is reported once)."""
        fresh = [n for n in self.untracked() if n not in self._reported]
        self._reported.update(fresh)
        return fresh


def _check_kind(name: str, p: torch.Tensor) -> None:
    """A followed parameter must be a dense floating tensor on a device vsaopt computes on."""
    if p.layout != torch.strided:
        raise DTypeError(f"parameter {name!r}: expected a dense (strided) tensor, got layout {p.layout}")
    if p.dtype not in FLOAT_DTYPES:
        raise DTypeError(f"parameter {name!r}: expected a float32, float16, bfloat16 or float64 tensor, got {p.dtype}")
    if p.device.type not in ("cpu", "cuda"):
        raise BackendError(f"parameter {name!r}: tensors on device {p.device} are not supported (cpu and cuda are)")
