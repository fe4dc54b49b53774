"""PhaseAccelerator: a phase trainer driven from a PyTorch training loop."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import torch

from .._arrays import check_int
from .._grads import GradientPieces
from ..checkpoint import digest
from ..errors import CheckpointError, ConfigError, DTypeError, NonFiniteError, PhaseError
from ..phase import DeterministicPhaseConfig, DeterministicPhaseTrainer, PhaseConfig, PhaseTrainer
from ._dlpack import backend_for
from .grad_buffer import GradBuffer
from .param_source import ParamSource, UntrackedParameterWarning
from .torch_state import arrays_to_tensors, tensors_to_arrays

__all__ = ["PhaseAccelerator"]

_TRAINERS = {"deterministic": DeterministicPhaseTrainer, "phase": PhaseTrainer}
_CONFIG_KINDS = {DeterministicPhaseConfig: "deterministic", PhaseConfig: "phase"}


def _trainer_kind(config: Any, trainer: str | None) -> str:
    """The trainer a config means (``trainer`` is only a check), or ``trainer`` (default "deterministic") without a config."""
    if trainer is not None and trainer not in _TRAINERS:
        raise ConfigError(f"trainer: expected one of {sorted(_TRAINERS)} or None, got {trainer!r}")
    if config is None:
        return trainer or "deterministic"
    meant = next((kind for cls, kind in _CONFIG_KINDS.items() if isinstance(config, cls)), None)
    if meant is None:
        raise ConfigError(f"config: expected a DeterministicPhaseConfig, a PhaseConfig or None, got {type(config).__name__}")
    if trainer is not None and trainer != meant:
        raise ConfigError(f"trainer: {trainer!r} does not match config {type(config).__name__}, which means trainer={meant!r}")
    return meant


#: ``format`` of :meth:`PhaseAccelerator.state_dict`.
STATE_FORMAT = "vsaopt.torch.PhaseAccelerator/2"


class PhaseAccelerator:
    """Skip most backward passes of a PyTorch training loop with a vsaopt phase trainer.

    Wraps a :class:`~vsaopt.phase.DeterministicPhaseTrainer` (a
    :class:`~vsaopt.phase.DeterministicPhaseConfig`, the default) or a
    :class:`~vsaopt.phase.PhaseTrainer` (a :class:`~vsaopt.phase.PhaseConfig`)
    declared over the trainable parameters (``requires_grad=True``) of a model.
    The shortest loop gives the accelerator the optimizer and calls
    :meth:`step` with a closure, as ``torch.optim`` does::

        accel = PhaseAccelerator(model, PhaseConfig.recommended(), optimizer=opt)
        for x, y in batches:
            def closure():
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                return loss
            loss = accel.step(closure)   # None on a PREDICT step: the closure did not run

    The explicit protocol, for loops that need it:

    1. ``info = accel.begin_step()``;
    2. if ``info.needs_backward``: ``loss.backward()`` then :meth:`record_gradients`
       (reads every ``p.grad``); else :meth:`apply_predicted_gradients` (writes the
       predicted gradient into every ``p.grad``; no backward pass);
    3. the user's ``optimizer.step()`` (skipped when either call returned
       False, see ``skip_nonfinite``);
    4. ``accel.end_step(loss)`` (``None`` when the step measured no loss).

    Gradients live in one flat float32 buffer laid out as the trainer's history
    (:class:`~vsaopt.torch.grad_buffer.GradBuffer`), shared with the trainer
    through DLPack (numpy for CPU tensors, cupy for CUDA ones).  When every
    parameter is float32, each ``p.grad`` the accelerator sets is a view of that
    buffer: a PREDICT step writes the prediction once, in place (the ``p.grad``
    tensors keep their memory from one PREDICT step to the next), and a backward
    pass that accumulates into such a ``p.grad`` (``optimizer.zero_grad(set_to_none=False)``)
    stays in place.  :meth:`record_gradients` reads each ``p.grad`` once, where
    it is (a float32 contiguous one is not copied first), in the trainer's
    pass that records it.

    Dtype rules: float16, bfloat16 and float64 gradients are converted to
    float32 (float64 values rounded to nearest float32) before they are
    recorded, and predicted gradients are written into ``p.grad`` in the
    parameter's dtype (rounded to nearest for float16/bfloat16).  Other dtypes
    and sparse gradients raise :class:`~vsaopt.errors.DTypeError`.  All
    parameters must be on one device.

    While a gated config's gate stays closed, measuring every backward step
    buys nothing: with ``GateConfig.dormant_after`` (the ``recommended()``
    presets) most backward steps become *dormant* (``StepInfo.records``
    False), and :meth:`record_gradients` then records nothing, reads nothing
    but ``skip_nonfinite``'s finite check, and leaves ``p.grad`` exactly as
    the backward pass wrote it.

    Parameters that change under the accelerator are checked at every
    :meth:`record_gradients` and :meth:`apply_predicted_gradients`: freezing
    (``requires_grad_(False)``) and unfreezing, and casts to another floating
    dtype (``model.double()``), are followed; a frozen parameter counts as
    absent (below).  A change of shape or device, or a module's parameter
    replaced or removed, raises a typed error naming the parameter before
    anything is read or written.

    Missing gradients follow ``torch.optim``: a followed parameter whose
    ``p.grad`` is None after the backward pass (unused in this step) has no
    gradient.  The trainer records zeros for it (its slice of the recorded
    vector is 0), and the PREDICT steps that follow leave its ``p.grad`` as
    they find it (None after ``zero_grad()``), so the optimizer skips it as it
    would without the accelerator; it takes part again from the next backward
    step that gives it a gradient.  A parameter that becomes trainable after
    construction (unfrozen, or added to the module) is not followed: the first
    :meth:`record_gradients` that sees it warns with
    :class:`~vsaopt.torch.param_source.UntrackedParameterWarning` naming it.

    Parameters
    ----------
    model_or_named_parameters : torch.nn.Module, mapping name -> parameter, iterable of (name, parameter), or iterable of parameters
        A module's parameters keep their ``named_parameters()`` names;
        ``model.parameters()`` are named ``"0"``, ``"1"``, ... in order.
        Parameters with ``requires_grad=False`` are left out.
    config : DeterministicPhaseConfig or PhaseConfig, optional
        The trainer's config; its type chooses the trainer.  None: the
        default config of ``trainer``.
    trainer : {"deterministic", "phase"}, optional
        Without a config, least-squares (default) or momentum prediction; with
        one, only a check (a mismatch is a ConfigError naming both).
    optimizer : torch.optim.Optimizer, optional
        The optimizer :meth:`step` steps; it must hold every followed parameter.
    scaler : torch.amp.GradScaler, optional
        For :meth:`step` with mixed precision (see there); needs ``optimizer``.
    backend : None, a backend name or a backend object
        None picks numba (else numpy) for CPU parameters and cupy for CUDA ones.
    apply_corrections : bool
        With ``trainer="phase"``: add the corrections measured at CORRECT steps to
        the next predicted gradient (:meth:`~vsaopt.phase.PhaseTrainer.apply_correction`).
    skip_nonfinite : bool
        Like ``torch.amp.GradScaler``: a backward step whose gradients hold NaN
        or Inf, or a PREDICT step whose prediction is not finite in a
        parameter's dtype, is skipped instead of raising.
        :meth:`record_gradients` (or :meth:`apply_predicted_gradients`) then
        returns False, records nothing and counts the step in
        :attr:`skipped_nonfinite`; the caller skips ``optimizer.step()`` for it
        and ends the step as usual (:meth:`end_step` ignores that step's loss,
        which is usually not finite either).  The step still counts in the
        schedule.

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
    ...         ready = accel.record_gradients()  # False only when skip_nonfinite skipped the step
    ...     else:
    ...         ready = accel.apply_predicted_gradients()
    ...     if ready:
    ...         opt.step()
    ...     accel.end_step(loss)
    >>> stats = accel.get_stats()
    >>> stats.total_steps, stats.predict_steps > 0
    (20, True)
    """

    def __init__(
        self,
        model_or_named_parameters: Any,
        config: Any = None,
        trainer: str | None = None,
        backend: Any = None,
        *,
        optimizer: Any = None,
        scaler: Any = None,
        apply_corrections: bool = True,
        skip_nonfinite: bool = False,
    ) -> None:
        trainer = _trainer_kind(config, trainer)
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise ConfigError(f"optimizer: expected a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
        if scaler is not None and not callable(getattr(scaler, "unscale_", None)):
            raise ConfigError(f"scaler: expected a torch.amp.GradScaler or None, got {type(scaler).__name__}")
        if scaler is not None and optimizer is None:
            raise ConfigError("scaler: needs optimizer= (the scaler steps the optimizer)")
        if not isinstance(apply_corrections, bool):
            raise ConfigError(f"apply_corrections: expected a bool, got {apply_corrections!r}")
        if not isinstance(skip_nonfinite, bool):
            raise ConfigError(f"skip_nonfinite: expected a bool, got {skip_nonfinite!r}")
        source = ParamSource(model_or_named_parameters)
        params = source.params
        self._device = source.device
        self._be = backend_for(self._device, backend)
        self._source = source
        self._params = params
        self._trainer = _TRAINERS[trainer]([(n, tuple(p.shape)) for n, p in params], config, backend=self._be)
        self._kind = trainer
        self._apply_corrections = apply_corrections
        self._skip_nonfinite = skip_nonfinite
        self._buffer = GradBuffer(params, self._device)
        self._present = [True] * len(params)  # which parameters had a gradient in the last recorded step
        self._skipped = 0
        self._skipping = False  # the current step's gradients were skipped (not finite)
        if optimizer is not None:
            held = {id(p) for group in optimizer.param_groups for p in group["params"]}
            missing = [name for name, p in params if id(p) not in held]
            if missing:
                raise ConfigError(f"optimizer: does not hold the parameters {missing[:5]}{' ...' if len(missing) > 5 else ''}; "
                                  "build it over the same model's parameters")
        self._optimizer = optimizer
        self._scaler = scaler

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
    def skipped_nonfinite(self) -> int:
        """Steps skipped because their recorded or predicted gradients were not finite (``skip_nonfinite=True``)."""
        return self._skipped

    @property
    def grad_buffer(self) -> GradBuffer:
        """The flat float32 gradient buffer whose views become the ``p.grad`` tensors."""
        return self._buffer

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

    def record_gradients(self, batch_size: int | None = None) -> bool:
        """Record every parameter's ``p.grad`` (after ``loss.backward()``) as this step's real gradients.

        Each ``p.grad`` is read once, where it is: the trainer's one pass
        (kernel ``gather_stats``) copies it into its history, takes the
        telemetry's sums and checks it finite.  Only gradients that are not
        float32 and contiguous are converted into the gradient buffer first.
        ``p.grad`` is left as it is, for the optimizer.  A parameter without a
        gradient (``p.grad`` None) counts as absent (see the class notes); at
        least one must have one.

        Parameters
        ----------
        batch_size : int, optional
            Samples the gradient was averaged over (passed to the trainer's
            ``record_full_gradients``, which uses it for its noise-scale estimate).

        On a dormant step of a closed gate (``StepInfo.records`` False, see
        :class:`~vsaopt.phase.GateConfig`) nothing is read or recorded and
        ``p.grad`` stays as the backward pass wrote it; with ``skip_nonfinite``
        the gradients are still checked finite (one ``torch.isfinite`` per
        gradient), and without it a non-finite gradient of such a step goes to
        the optimizer unnoticed, as in plain torch.

        Returns
        -------
        bool
            True when recorded (or a dormant step); False when ``skip_nonfinite``
            skipped a non-finite step (skip ``optimizer.step()`` then).

        Raises
        ------
        PhaseError
            Outside a step, in a PREDICT step, a second time in one step, or no parameter has a gradient.
        DTypeError, NonFiniteError, BackendError
            A gradient is sparse, of a non-floating dtype, holds NaN/Inf (without
            ``skip_nonfinite``), or is on another device.  Nothing is changed.
        ConfigError
            ``batch_size`` is not a positive integer.
        """
        self._trainer.require_backward("record_gradients")  # PhaseError before anything is read
        if self._skipping:
            raise PhaseError("record_gradients: this step's gradients were already skipped as not finite")
        if batch_size is not None:
            check_int(batch_size, "batch_size", 1, 2**62)
        if not self._trainer.step_records:  # a dormant step: nothing is read or recorded
            if not self._finite_or_skip():
                return False
            self._trainer.record_full_gradients({}, batch_size=batch_size)
            return True
        trainable = self._source.trainable("record_gradients")
        untracked = self._source.check_module("record_gradients")
        if not any(t and p.grad is not None for t, (_, p) in zip(trainable, self._params)):
            raise PhaseError("record_gradients: no gradient in any trainable parameter (call loss.backward() first)")
        arrays, present = self._buffer.sources(self._params, trainable)
        # one pass of the trainer reads every gradient where it is, copies it into its history and checks it finite;
        # the buffer made the pieces of the trainer's own layout, so the trainer does not check them again
        grads = GradientPieces(self._trainer.layout, arrays, self._trainer.backend)
        try:
            if batch_size is None:
                self._trainer.record_full_gradients(grads)
            else:
                self._trainer.record_full_gradients(grads, batch_size=batch_size)
        except NonFiniteError:  # raised before the trainer changed anything
            if not self._skip_nonfinite:
                raise
            self._skip_step()
            return False
        self._present = present
        for name in untracked:
            warnings.warn(
                f"parameter {name!r} became trainable after the PhaseAccelerator was built and is not followed: "
                "it gets gradients in backward steps only; build a new PhaseAccelerator to include it",
                UntrackedParameterWarning,
                stacklevel=2,
            )
        return True

    def _finite_or_skip(self) -> bool:
        """On a dormant step with ``skip_nonfinite``: whether every ``p.grad`` is finite (else the step is skipped)."""
        if not self._skip_nonfinite:
            return True
        checks = [torch.isfinite(p.grad).all() for _, p in self._params if p.grad is not None]
        if not checks or bool(torch.stack(checks).all()):
            return True
        self._skip_step()
        return False

    def _skip_step(self) -> None:
        self._skipped += 1
        self._skipping = True

    def apply_predicted_gradients(self) -> bool:
        """Write this PREDICT step's predicted gradients into ``p.grad`` (allocated when None).

        The trainer writes the prediction straight into the gradient buffer.
        A float32 parameter's ``p.grad`` is (made) its view: no copy, and the
        same ``p.grad`` memory every PREDICT step.  Other floating dtypes get
        the prediction converted into their own ``p.grad``.  Parameters that
        had no gradient in the last backward step, or are frozen now
        (``requires_grad`` False), keep their ``p.grad`` (see the class notes).

        Returns
        -------
        bool
            True when written; False when ``skip_nonfinite`` skipped a prediction
            that is not finite (skip ``optimizer.step()`` then).

        Raises
        ------
        PhaseError
            Outside a PREDICT step, during warmup, or a second time in one step.
        NonFiniteError
            The prediction is not finite in a parameter's dtype (a float16
            parameter from about 65520 on; any dtype when it overflows float32),
            without ``skip_nonfinite``.  No ``p.grad`` is converted; float32
            ``p.grad`` views may hold the prediction: do not step the optimizer.
        ShapeError, BackendError, DTypeError
            A parameter changed shape or device after construction (see
            :meth:`~vsaopt.torch.param_source.ParamSource.trainable`).
        """
        trainable = self._source.trainable("apply_predicted_gradients")
        write = [t and has for t, has in zip(trainable, self._present)]
        self._trainer.require_predict("apply_predicted_gradients")
        self._buffer.release(self._params, write)  # p.grad tensors that must not show the prediction
        try:
            self._trainer.predict_gradients_into(self._buffer.array)
            if self._kind == "phase" and self._apply_corrections and self._trainer.has_pending_correction:
                self._trainer.apply_correction(self._trainer.layout.split(self._buffer.array))
            bad = self._buffer.overflowing(self._params, write)
            if bad:
                raise NonFiniteError(
                    f"apply_predicted_gradients: the predicted gradient of {bad[0]!r} overflows float16"
                    + (f" (and of {len(bad) - 1} more parameters)" if len(bad) > 1 else "")
                )
        except NonFiniteError:
            if not self._skip_nonfinite:
                raise
            self._skip_step()
            return False
        self._buffer.install(self._params, write)
        return True

    def end_step(self, loss: Any) -> None:
        """End the step with its loss (a Python number or a one-element tensor; finite), or ``None``.

        ``None`` says no loss was measured: a PREDICT step may skip its forward
        pass as well as its backward pass (the trainers' ``end_step(None)``).
        The loss of a step whose gradients ``skip_nonfinite`` skipped is not used
        (the step ends as with ``None``).

        Raises
        ------
        PhaseError
            No step in progress.
        DTypeError, NonFiniteError
            ``loss`` is not a real number, or not finite as float32.
        """
        self._end(None if loss is None else _check_loss(loss, "loss"), self._trainer.end_step)

    def _end(self, value: float | None, end: Any) -> None:
        """End the step with a checked loss value through ``end`` (the trainer's ``end_step`` or ``take_dormant_step``); a step whose gradients were skipped ends without one."""
        end(None if self._skipping else value)
        self._skipping = False

    def step(self, closure: Any, *, batch_size: int | None = None, before_update: Any = None) -> Any:
        """One whole training step in ``torch.optim``'s closure convention; returns the loss, or None on a PREDICT step.

        Needs ``optimizer=`` at construction.  When the phase needs real
        gradients, ``closure()`` runs (it zeroes the gradients, computes the
        loss, calls ``backward()`` and returns the loss) and the gradients are
        recorded; otherwise the closure does not run and the prediction is
        written into ``p.grad``.  Then ``before_update()`` runs, if given (the
        place for gradient clipping: the gradients are in ``p.grad`` and
        unscaled), the optimizer steps, and the step ends with the loss.

        With ``scaler=`` (a ``torch.amp.GradScaler``) the closure calls
        ``scaler.scale(loss).backward()``; a backward step unscales the
        gradients before they are recorded and steps through
        ``scaler.step(optimizer)`` and ``scaler.update()``, which skip a step
        whose gradients overflowed (it is then not recorded either, as with
        ``skip_nonfinite``).  A PREDICT step's gradients are unscaled
        already: it calls ``optimizer.step()`` and leaves the scaler alone.
        A step skipped as not finite does not step the optimizer.

        Parameters
        ----------
        closure : callable
            Returns the loss: a one-element floating tensor (or a Python float).
        batch_size : int, optional
            Samples the loss was averaged over (see :meth:`record_gradients`).
        before_update : callable, optional
            Called with no arguments after the gradients are in ``p.grad`` and
            before the optimizer steps, e.g. ``lambda: torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)``.

        Raises
        ------
        ConfigError
            No optimizer was given, or ``closure`` / ``before_update`` is not callable.
        DTypeError
            The closure returned something other than a one-element real tensor or number.
        PhaseError
            A step begun with :meth:`begin_step` is in progress.

        Notes
        -----
        An exception raised by the closure (or a bad loss) leaves the step
        open: fix the cause and call :meth:`step` again (it reruns the closure
        of that same step), or end it with ``end_step(None)``.

        Examples
        --------
        >>> import torch
        >>> from vsaopt.phase import DeterministicPhaseConfig
        >>> _ = torch.manual_seed(0)
        >>> model = torch.nn.Linear(8, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.05)
        >>> cfg = DeterministicPhaseConfig(warmup_steps=4, full_steps=2, predict_steps=6, correct_every=3)
        >>> accel = PhaseAccelerator(model, cfg, optimizer=opt, backend="numpy")
        >>> x, y = torch.randn(32, 8), torch.randn(32, 1)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = torch.nn.functional.mse_loss(model(x), y)
        ...     loss.backward()
        ...     return loss
        >>> losses = [accel.step(closure) for _ in range(20)]
        >>> accel.backward_passes(), sum(loss is None for loss in losses)
        (11, 9)
        """
        if self._optimizer is None:
            raise ConfigError("step: needs the optimizer; build the PhaseAccelerator with optimizer=...")
        if not callable(closure):
            raise ConfigError(f"closure: expected a callable that returns the loss, got {type(closure).__name__}")
        if before_update is not None and not callable(before_update):
            raise ConfigError(f"before_update: expected a callable or None, got {type(before_update).__name__}")
        if batch_size is not None:
            check_int(batch_size, "batch_size", 1, 2**62)
        dormant = self._trainer.next_step_dormant  # the trainer's bookkeeping of such a step is one call at its end
        if not dormant:
            if not self._trainer.in_step:
                self.begin_step()
            elif self._trainer.step_has_gradients or self._skipping:
                raise PhaseError("step: the step in progress already has its gradients; end it with end_step()")
        try:
            return self._run_step(closure, batch_size, before_update, dormant)
        except BaseException:
            if dormant and not self._trainer.in_step:
                self._trainer.begin_step()  # the failed step stays open, as every other step's does
            raise

    def _run_step(self, closure: Any, batch_size: int | None, before_update: Any, dormant: bool) -> Any:
        """The body of :meth:`step` once the step is begun, or known to be dormant (then begun only at its end)."""
        if dormant or self.needs_backward():
            if torch.is_grad_enabled():
                loss = closure()
            else:  # as torch.optim's step(closure): the closure computes gradients even under no_grad
                with torch.enable_grad():
                    loss = closure()
            if loss is None:
                raise DTypeError("closure: returned None; it must return the loss")
            value = _check_loss(loss, "closure")  # a bad loss leaves the step open
            if self._scaler is not None:
                self._scaler.unscale_(self._optimizer)
            # a dormant step records nothing: only skip_nonfinite's check, if asked for, reads the gradients
            records = not dormant and self._trainer.step_records
            recorded = self._record_or_skip(batch_size) if records else self._finite_or_skip()
            if before_update is not None and recorded:
                before_update()
            if self._scaler is not None:
                self._scaler.step(self._optimizer)  # skips the update itself when the gradients overflowed
                self._scaler.update()
            elif recorded:
                self._optimizer.step()
        else:
            loss = value = None
            if self.apply_predicted_gradients():
                if before_update is not None:
                    before_update()
                self._optimizer.step()
        self._end(value, self._trainer.take_dormant_step if dormant else self._trainer.end_step)  # the loss checked above, once
        return loss

    def _record_or_skip(self, batch_size: int | None) -> bool:
        """:meth:`record_gradients`, where a scaler's overflowed step is skipped as ``skip_nonfinite`` skips one."""
        if self._scaler is None or self._skip_nonfinite:
            return self.record_gradients(batch_size)
        self._skip_nonfinite = True
        try:
            return self.record_gradients(batch_size)
        finally:
            self._skip_nonfinite = False

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
        """The accelerator's state in plain types that ``torch.save`` and ``torch.load(weights_only=True)`` round-trip.

        ``{"format", "trainer", "parameter_names", "present", "skipped_nonfinite",
        "skipping", "sha256", "trainer_state": {"header": JSON-able dict, "arrays":
        name -> CPU tensor}}``: only str, int, float, bool, None, lists, dicts and
        tensors.  ``sha256`` covers the accelerator's own fields and the trainer
        state's digest (which covers its arrays), so an edited field is detected.

        Examples
        --------
        >>> import io, torch
        >>> accel = PhaseAccelerator(torch.nn.Linear(2, 1), backend="numpy")
        >>> buf = io.BytesIO()
        >>> torch.save(accel.state_dict(), buf)
        >>> _ = buf.seek(0)
        >>> accel.load_state_dict(torch.load(buf, weights_only=True))
        """
        inner = self._trainer.state_dict()
        state = {
            "format": STATE_FORMAT,
            "trainer": self._kind,
            "parameter_names": list(self.parameter_names),
            "present": list(self._present),
            "skipped_nonfinite": self._skipped,
            "skipping": self._skipping,
            "trainer_state": {"header": inner["header"], "arrays": arrays_to_tensors(inner["arrays"])},
        }
        state["sha256"] = _outer_digest(state)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` saved for the same parameters, trainer and config.

        Also accepts the wrapped trainer's own ``state_dict()`` (numpy arrays).
        Every field is checked (types, ranges, the digest, and agreement with
        the trainer's state) before anything changes.

        Raises
        ------
        CheckpointError
            Another format, trainer, config or parameter list, or an edited or
            inconsistent field; the accelerator is unchanged.
        """
        if not isinstance(state, dict):
            raise CheckpointError(f"state dict: expected a dict, got {type(state).__name__}")
        if state.get("format") != STATE_FORMAT:
            if set(state) == {"header", "arrays"}:  # the trainer's own state
                self._trainer.load_state_dict(state)
                return
            raise CheckpointError(f"state dict: expected format {STATE_FORMAT!r}, got {state.get('format')!r}")
        if set(state) != _STATE_KEYS:
            raise CheckpointError(f"state dict: expected the keys {sorted(_STATE_KEYS)}, got {sorted(map(str, state))}")
        if state["trainer"] != self._kind:
            raise CheckpointError(f"state dict: saved for trainer {state['trainer']!r}, this accelerator has {self._kind!r}")
        if state["parameter_names"] != list(self.parameter_names):
            raise CheckpointError("state dict: saved for other parameters (names or order differ)")
        present, skipped, skipping = state["present"], state["skipped_nonfinite"], state["skipping"]
        if not (isinstance(present, list) and len(present) == len(self._params) and all(isinstance(b, bool) for b in present)):
            raise CheckpointError(f"state dict: 'present' must be a list of {len(self._params)} bools")
        if isinstance(skipped, bool) or not isinstance(skipped, int) or skipped < 0 or not isinstance(skipping, bool):
            raise CheckpointError("state dict: 'skipped_nonfinite' must be an int >= 0 and 'skipping' a bool")
        inner = state["trainer_state"]
        if not isinstance(inner, dict) or set(inner) != {"header", "arrays"} or not isinstance(inner["header"], dict):
            raise CheckpointError("state dict: 'trainer_state' must be a dict of 'header' and 'arrays'")
        if state["sha256"] != _outer_digest(state):
            raise CheckpointError("state dict: digest mismatch (the accelerator's fields were edited or corrupted)")
        head = inner["header"]
        counters: dict = head["state"] if isinstance(head.get("state"), dict) else {}
        steps = counters.get("total_step")
        in_step, recorded = counters.get("in_step"), counters.get("recorded")
        if not (isinstance(steps, int) and isinstance(in_step, bool) and isinstance(recorded, bool)):
            raise CheckpointError("state dict: 'trainer_state' lacks the step counters")
        if skipped > steps + int(in_step):
            raise CheckpointError(f"state dict: 'skipped_nonfinite' {skipped} exceeds the {steps + int(in_step)} steps taken")
        if skipping and not (in_step and not recorded):
            raise CheckpointError("state dict: 'skipping' is set outside a step whose gradients were skipped")
        self._trainer.load_state_dict({"header": head, "arrays": tensors_to_arrays(inner["arrays"], "trainer_state.arrays")})
        self._present, self._skipped, self._skipping = list(present), skipped, skipping

    def __repr__(self) -> str:
        return (
            f"PhaseAccelerator(trainer={self._kind!r}, parameters={len(self._params)}, "
            f"backend={self._be.name!r}, device={str(self._device)!r})"
        )


#: Loss dtypes whose ``item()`` is a Python float.
_FLOAT_LOSS = frozenset({torch.float32, torch.float64, torch.float16, torch.bfloat16})


def _check_loss(loss: Any, what: str) -> float:
    """``loss`` (a one-element real tensor or a real number) as a Python float; DTypeError naming ``what`` otherwise."""
    if type(loss) is torch.Tensor and loss.dtype in _FLOAT_LOSS:  # the usual loss: one dispatcher call
        try:
            return float(loss.item())
        except RuntimeError:  # more than one element: the checks below name the shape
            pass
    if isinstance(loss, torch.Tensor):
        if loss.numel() != 1:
            raise DTypeError(f"{what}: expected a one-element tensor, got shape {tuple(loss.shape)}")
        if not (loss.dtype.is_floating_point or loss.dtype in (torch.int32, torch.int64)):
            raise DTypeError(f"{what}: expected a real tensor, got {loss.dtype}")
        return float(loss.item())  # one dispatcher call: item() reads a one-element tensor of any shape, no graph involved
    if not isinstance(loss, numbers.Real) or isinstance(loss, bool):
        raise DTypeError(f"{what}: expected a real number, a one-element tensor or None, got {type(loss).__name__}")
    return float(loss)


_STATE_KEYS = frozenset({"format", "trainer", "parameter_names", "present", "skipped_nonfinite", "skipping", "sha256", "trainer_state"})


def _outer_digest(state: dict) -> str:
    """SHA-256 of the accelerator's own fields and of its trainer state's digest."""
    fields = {k: v for k, v in state.items() if k not in ("sha256", "trainer_state")}
    trainer_state = state.get("trainer_state")
    header = trainer_state.get("header") if isinstance(trainer_state, dict) else None
    fields["trainer_sha256"] = header.get("sha256") if isinstance(header, dict) else None
    return digest(fields, {})
