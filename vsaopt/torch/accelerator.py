"""PhaseAccelerator: a phase trainer driven from a PyTorch training loop."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from ..errors import BackendError, ConfigError, DTypeError, PhaseError
from ..phase import DeterministicPhaseTrainer, PhaseTrainer
from ._dlpack import backend_for, float32_view, from_array, to_array

__all__ = ["PhaseAccelerator"]

_TRAINERS = {"deterministic": DeterministicPhaseTrainer, "phase": PhaseTrainer}


def _named_parameters(source: Any) -> list[tuple[str, torch.nn.Parameter]]:
    if isinstance(source, torch.nn.Module):
        items = list(source.named_parameters())
    elif isinstance(source, Mapping):
        items = list(source.items())
    elif isinstance(source, Iterable) and not isinstance(source, (str, bytes, torch.Tensor)):
        items = list(source)
    else:
        raise ConfigError(
            f"model_or_named_parameters: expected a torch.nn.Module, a mapping or an iterable of (name, parameter) pairs, got {type(source).__name__}"
        )
    out: list[tuple[str, torch.nn.Parameter]] = []
    for k, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ConfigError(f"model_or_named_parameters[{k}]: expected a (name, parameter) pair, got {type(item).__name__}")
        name, p = item
        if not isinstance(name, str) or not name:
            raise ConfigError(f"model_or_named_parameters[{k}]: the name must be a non-empty str, got {name!r}")
        if not isinstance(p, torch.Tensor):
            raise ConfigError(f"model_or_named_parameters[{name!r}]: expected a torch tensor, got {type(p).__name__}")
        if p.requires_grad:
            out.append((name, p))
    if not out:
        raise ConfigError("model_or_named_parameters: no trainable parameters (requires_grad=True) given")
    return out


class PhaseAccelerator:
    """Skip most backward passes of a PyTorch training loop with a vsaopt phase trainer.

    Wraps a :class:`~vsaopt.phase.DeterministicPhaseTrainer` (``trainer="deterministic"``)
    or a :class:`~vsaopt.phase.PhaseTrainer` (``trainer="phase"``) declared over the
    trainable parameters (``requires_grad=True``) of a model.  Each step:

    1. ``info = accel.begin_step()``;
    2. if ``info.needs_backward``: ``loss.backward()`` then :meth:`record_gradients`
       (reads every ``p.grad``); else :meth:`apply_predicted_gradients` (writes the
       predicted gradient into every ``p.grad``; no backward pass);
    3. the user's ``optimizer.step()``;
    4. ``accel.end_step(loss)``.

    Gradients cross into vsaopt through DLPack without copies: CPU tensors as
    numpy arrays (numpy or numba backend), CUDA tensors as cupy arrays (cupy
    backend).  The trainer keeps its history in float32.

    Dtype rules: float32 parameters cross as views.  float16, bfloat16 and
    float64 gradients are converted to float32 (a copy; float64 values are
    rounded to nearest float32) before they are recorded, and predicted
    gradients are written into ``p.grad`` in the parameter's dtype (rounded to
    nearest for float16/bfloat16).  Other dtypes and sparse gradients raise
    :class:`~vsaopt.errors.DTypeError`.  All parameters must be on one device.

    Parameters
    ----------
    model_or_named_parameters : torch.nn.Module, mapping name -> parameter, or iterable of (name, parameter)
        Parameters with ``requires_grad=False`` are left out.
    config : DeterministicPhaseConfig or PhaseConfig, optional
        The trainer's config (its default when None).
    trainer : {"deterministic", "phase"}
        Least-squares prediction (default) or momentum prediction.
    backend : None, a backend name or a backend object
        None picks numba (else numpy) for CPU parameters and cupy for CUDA ones.
    apply_corrections : bool
        With ``trainer="phase"``: add the corrections measured at CORRECT steps to
        the next predicted gradient (:meth:`~vsaopt.phase.PhaseTrainer.apply_correction`).

    Raises
    ------
    ConfigError
        No trainable parameters, malformed pairs, an unknown ``trainer``, a config of the wrong type.
    DTypeError
        A parameter is not a real floating tensor.
    BackendError
        Parameters on several devices, or a backend that computes elsewhere.

    Examples
    --------
    >>> import torch
    >>> from vsaopt.phase import DeterministicPhaseConfig
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Linear(8, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.05)
    >>> x, y = torch.randn(32, 8), torch.randn(32, 1)
    >>> cfg = DeterministicPhaseConfig(warmup_steps=4, full_steps=2, predict_steps=6, correct_every=3)
    >>> accel = PhaseAccelerator(model, cfg, backend="numpy")
    >>> for step in range(20):
    ...     info = accel.begin_step()
    ...     opt.zero_grad()
    ...     loss = torch.nn.functional.mse_loss(model(x), y)
    ...     if info.needs_backward:
    ...         loss.backward()
    ...         accel.record_gradients()
    ...     else:
    ...         accel.apply_predicted_gradients()
    ...     opt.step()
    ...     accel.end_step(loss)
    >>> stats = accel.get_stats()
    >>> stats.total_steps, stats.predict_steps > 0
    (20, True)
    """

    def __init__(
        self,
        model_or_named_parameters: Any,
        config: Any = None,
        trainer: str = "deterministic",
        backend: Any = None,
        *,
        apply_corrections: bool = True,
    ) -> None:
        if trainer not in _TRAINERS:
            raise ConfigError(f"trainer: expected one of {sorted(_TRAINERS)}, got {trainer!r}")
        if not isinstance(apply_corrections, bool):
            raise ConfigError(f"apply_corrections: expected a bool, got {apply_corrections!r}")
        params = _named_parameters(model_or_named_parameters)
        devices = {p.device for _, p in params}
        if len(devices) > 1:
            raise BackendError(f"model_or_named_parameters: all parameters must be on one device, got {sorted(str(d) for d in devices)}")
        for name, p in params:
            if p.dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
                raise DTypeError(f"parameter {name!r}: expected a float32, float16, bfloat16 or float64 tensor, got {p.dtype}")
        self._device = next(iter(devices))
        self._be = backend_for(self._device, backend)
        self._params = params
        self._trainer = _TRAINERS[trainer]([(n, tuple(p.shape)) for n, p in params], config, backend=self._be)
        self._kind = trainer
        self._apply_corrections = apply_corrections

    # --- properties ----------------------------------------------------------------------

    @property
    def trainer(self) -> Any:
        """The wrapped :class:`~vsaopt.phase.DeterministicPhaseTrainer` or :class:`~vsaopt.phase.PhaseTrainer`."""
        return self._trainer

    @property
    def backend(self) -> Any:
        """The resolved vsaopt backend."""
        return self._be

    @property
    def device(self) -> torch.device:
        """The parameters' device."""
        return self._device

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the parameters the trainer follows, in declaration order."""
        return tuple(n for n, _ in self._params)

    @property
    def config(self) -> Any:
        """The trainer's config."""
        return self._trainer.config

    @property
    def current_phase(self) -> Any:
        """Phase of the current (or last begun) step."""
        return self._trainer.current_phase

    @property
    def total_step(self) -> int:
        """Steps ended so far."""
        return self._trainer.total_step

    def needs_backward(self) -> bool:
        """Whether the current step needs ``loss.backward()`` and :meth:`record_gradients`."""
        return self._trainer.needs_backward()

    # --- step protocol -------------------------------------------------------------------

    def begin_step(self) -> Any:
        """Start a step; returns the trainer's :class:`~vsaopt.phase.StepInfo` (see ``needs_backward``).

        Raises
        ------
        PhaseError
            The previous step has not ended.
        """
        return self._trainer.begin_step()

    def record_gradients(self) -> None:
        """Record every parameter's ``p.grad`` (after ``loss.backward()``) as this step's real gradients.

        Raises
        ------
        PhaseError
            Outside a step, in a PREDICT step, a second time in one step, or a parameter has no gradient.
        DTypeError, NonFiniteError, ShapeError
            A gradient is sparse, of a non-floating dtype, holds NaN/Inf, or has the wrong shape.
        """
        self._trainer.require_backward("record_gradients")  # PhaseError before anything is read
        grads = {}
        for name, p in self._params:
            g = p.grad
            if g is None:
                raise PhaseError(f"record_gradients: parameter {name!r} has no gradient (call loss.backward() first)")
            if g.device != self._device:
                raise BackendError(f"record_gradients: gradient of {name!r} is on {g.device}, parameters on {self._device}")
            grads[name] = to_array(float32_view(g, f"gradient of {name!r}"))
        self._trainer.record_full_gradients(grads)

    def apply_predicted_gradients(self) -> None:
        """Write this PREDICT step's predicted gradients into every ``p.grad`` (allocated when None).

        Raises
        ------
        PhaseError
            Outside a PREDICT step, during warmup, or a second time in one step.
        """
        preds = self._trainer.get_predicted_gradients()
        if self._kind == "phase" and self._apply_corrections:
            self._trainer.apply_correction(preds)
        with torch.no_grad():
            for name, p in self._params:
                src = from_array(preds[name]).reshape(p.shape)
                if p.grad is None:
                    p.grad = torch.empty_like(p, memory_format=torch.contiguous_format)
                p.grad.copy_(src)

    def end_step(self, loss: Any) -> None:
        """End the step with its loss (a Python number or a one-element tensor; finite), or ``None``.

        ``None`` says no loss was measured: a PREDICT step may skip its forward
        pass as well as its backward pass (the trainers' ``end_step(None)``).

        Raises
        ------
        PhaseError
            No step in progress.
        DTypeError, NonFiniteError
            ``loss`` is not a real number, or not finite as float32.
        """
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:
                raise DTypeError(f"loss: expected a one-element tensor, got shape {tuple(loss.shape)}")
            if not (loss.dtype.is_floating_point or loss.dtype in (torch.int32, torch.int64)):
                raise DTypeError(f"loss: expected a real tensor, got {loss.dtype}")
            loss = float(loss.detach().reshape(()).item())
        elif loss is not None and (not isinstance(loss, numbers.Real) or isinstance(loss, bool)):
            raise DTypeError(f"loss: expected a real number, a one-element tensor or None, got {type(loss).__name__}")
        self._trainer.end_step(loss)

    # --- stats and state ---------------------------------------------------------------------

    def get_stats(self) -> Any:
        """The trainer's statistics (:class:`~vsaopt.phase.DeterministicTrainerStats` or :class:`~vsaopt.phase.TrainerStats`)."""
        return self._trainer.get_stats()

    def backward_passes(self) -> int:
        """Steps so far that needed a backward pass (WARMUP, FULL and CORRECT steps).

        Examples
        --------
        >>> import torch
        >>> accel = PhaseAccelerator(torch.nn.Linear(2, 1), backend="numpy")
        >>> accel.backward_passes()
        0
        """
        s = self._trainer.get_stats()
        return int(s.total_steps - s.predict_steps)

    def state_dict(self) -> dict:
        """The trainer's :meth:`~vsaopt.phase.DeterministicPhaseTrainer.state_dict` (no torch objects inside)."""
        return self._trainer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` saved for the same parameters and config.

        Raises
        ------
        CheckpointError
            Another format, config or parameter list; the accelerator is unchanged.
        """
        self._trainer.load_state_dict(state)

    def __repr__(self) -> str:
        return (
            f"PhaseAccelerator(trainer={self._kind!r}, parameters={len(self._params)}, "
            f"backend={self._be.name!r}, device={str(self._device)!r})"
        )
