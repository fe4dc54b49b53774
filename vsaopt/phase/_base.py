"""What both phase trainers share: step protocol checks, float32 loss windows and checkpoint framing."""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import Any

import numpy as np

from ..errors import CheckpointError, PhaseError
from . import checkpoint
from ._scalar import F32, adaptive_trend
from .types import StepInfo

log = logging.getLogger("vsaopt")

#: Losses kept for adaptive scheduling (the crate's ``recent_losses``).
RECENT_LOSSES = 100


class TrainerBase:
    """Step-protocol bookkeeping and state-dict framing; subclasses define the schedule."""

    _kind = ""
    config: Any
    _layout: Any
    _phase: Any
    _be: Any
    _phase_step: int
    _total_step: int
    _cycle: int

    def __init__(self, param_shapes: Any, config: Any = None, backend: Any = None) -> None:  # pragma: no cover
        raise NotImplementedError

    def needs_backward(self) -> bool:  # pragma: no cover - defined by each trainer
        raise NotImplementedError

    def state_dict(self) -> dict:  # pragma: no cover - defined by each trainer
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:  # pragma: no cover - defined by each trainer
        raise NotImplementedError

    @property
    def backend(self) -> Any:
        """The resolved backend."""
        return self._be

    @property
    def param_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """The declared ``(name, shape)`` pairs."""
        return self._layout.pairs()

    @property
    def phase_step(self) -> int:
        """Steps taken in the current phase run."""
        return self._phase_step

    @property
    def total_step(self) -> int:
        """Steps ended so far."""
        return self._total_step

    def _next_phase(self) -> Any:  # pragma: no cover - defined by each trainer
        raise NotImplementedError

    def _enter(self, phase: Any) -> None:  # pragma: no cover - defined by each trainer
        raise NotImplementedError

    def begin_step(self) -> StepInfo:
        """Start a step: apply at most one phase transition and say what this step is.

        Raises
        ------
        PhaseError
            The previous step has not ended.
        """
        self._require_idle("begin_step")
        nxt = self._next_phase()
        changed = nxt is not self._phase
        if changed:
            self._enter(nxt)
        self._in_step, self._recorded, self._predicted = True, False, False
        return StepInfo(self._phase, self._phase_step, self._total_step, self._cycle, changed, self.needs_backward())

    #: ``(full_up, full_max, predict_down, predict_min, full_down, full_min, predict_up, predict_max)``.
    _ADAPT_RULE: tuple[int, int, int, int, int, int, int, int]
    _full_len: int
    _predict_len: int

    def _adapt(self) -> None:
        """Adjust the current phase lengths to the loss trend of the recent window (spec/schedule.md)."""
        f_up, f_max, p_down, p_min, f_down, f_min, p_up, p_max = self._ADAPT_RULE
        trend = self._trend(self.config.loss_threshold)
        before = (self._full_len, self._predict_len)
        if trend > 0:
            self._full_len = min(self._full_len + f_up, f_max)
            self._predict_len = max(self._predict_len - p_down, p_min)
        elif trend < 0:
            self._full_len = max(self._full_len - f_down, f_min)
            self._predict_len = min(self._predict_len + p_up, p_max)
        if before != (self._full_len, self._predict_len):
            log.debug("%s adaptive: full %d -> %d, predict %d -> %d", type(self).__name__, before[0], self._full_len,
                      before[1], self._predict_len)

    def _init_step_state(self) -> None:
        self._in_step = False
        self._recorded = False
        self._predicted = False
        self._recent: deque[np.float32] = deque(maxlen=RECENT_LOSSES)

    # --- step protocol -------------------------------------------------------------

    def _require_idle(self, what: str) -> None:
        if self._in_step:
            raise PhaseError(f"{what}: the step begun at total_step {self._total_step} has not ended (call end_step first)")

    def _require_step(self, what: str) -> None:
        if not self._in_step:
            raise PhaseError(f"{what}: no step in progress (call begin_step first)")

    def _require_backward(self, what: str) -> None:
        self._require_step(what)
        if not self.needs_backward():
            raise PhaseError(f"{what}: phase {self._phase} uses predicted gradients; real gradients are recorded only in backward phases")
        if self._recorded:
            raise PhaseError(f"{what}: gradients were already recorded in this step")

    def _require_predict(self, what: str) -> None:
        self._require_step(what)
        if self._predicted:
            raise PhaseError(f"{what}: gradients were already predicted in this step")

    def _trend(self, loss_threshold: float) -> int:
        return adaptive_trend(list(self._recent), loss_threshold)

    # --- checkpoints ---------------------------------------------------------------------

    def _frame(self, header: dict, arrays: dict) -> dict:
        header = {
            "format": checkpoint.FORMAT,
            "version": checkpoint.VERSION,
            "kind": self._kind,
            "config": self.config.to_dict(),
            "param_shapes": self._layout.as_list(),
            **header,
        }
        header["sha256"] = checkpoint.digest(header, arrays)
        return {"header": header, "arrays": arrays}

    def _unframe(self, state: Any) -> tuple[dict, dict]:
        header, arrays = checkpoint.check_state_dict(state, self._kind)
        if header.get("config") != self.config.to_dict():
            raise CheckpointError(f"state dict: saved with another config ({header.get('config')!r})")
        if header.get("param_shapes") != self._layout.as_list():
            raise CheckpointError(f"state dict: saved for parameters {header.get('param_shapes')!r}, this trainer has {self._layout.as_list()!r}")
        return header, arrays

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`state_dict` to ``path`` atomically (temporary file, then rename); no pickle."""
        state = self.state_dict()
        checkpoint.write(path, state["header"], state["arrays"])

    @classmethod
    def _from_file(cls, path: str | os.PathLike, backend: Any, config_cls: type) -> Any:
        header, arrays = checkpoint.read(path)
        if header.get("kind") != cls._kind:
            raise CheckpointError(f"{path}: saved by {header.get('kind')!r}, not a {cls._kind} checkpoint")
        try:
            config = config_cls.from_dict(header["config"])  # type: ignore[attr-defined]
            shapes = [(str(n), tuple(s)) for n, s in header["param_shapes"]]
        except Exception as exc:
            raise CheckpointError(f"{path}: checkpoint config or parameter list is invalid ({exc})") from None
        trainer = cls(shapes, config, backend=backend)
        trainer.load_state_dict({"header": header, "arrays": arrays})
        return trainer

    @staticmethod
    def _prefixed(prefix: str, arrays: dict) -> dict:
        return {f"{prefix}.{k}": v for k, v in arrays.items()}

    @staticmethod
    def _unprefixed(prefix: str, arrays: dict) -> dict:
        p = prefix + "."
        return {k[len(p) :]: v for k, v in arrays.items() if k.startswith(p)}

    @staticmethod
    def _f32_list(arrays: dict, name: str, cap: int) -> list[np.float32]:
        a = arrays.get(name)
        if not isinstance(a, np.ndarray) or a.dtype != np.float32 or a.ndim != 1 or a.shape[0] > cap:
            raise CheckpointError(f"state dict: {name} must be a float32 vector of at most {cap} values")
        if not np.isfinite(a).all():
            raise CheckpointError(f"state dict: {name} holds non-finite values")
        return [F32(v) for v in a]

    @staticmethod
    def _ints(header: dict, names: tuple[str, ...]) -> dict[str, int]:
        out = {}
        for n in names:
            v = header.get(n)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise CheckpointError(f"state dict: {n} must be a non-negative int, got {v!r}")
            out[n] = v
        return out

    @staticmethod
    def _bools(header: dict, names: tuple[str, ...]) -> dict[str, bool]:
        out = {}
        for n in names:
            v = header.get(n)
            if not isinstance(v, bool):
                raise CheckpointError(f"state dict: {n} must be a bool, got {v!r}")
            out[n] = v
        return out
