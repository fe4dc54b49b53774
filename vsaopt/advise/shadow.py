"""The gated presets' own trainers, run beside the measurement's training steps: what they skip on this very run.

At every training step of the measurement each preset's trainer (a host
backend, numba where it loads: every backend decides alike; the
``recommended()`` config) is asked, as in a real run, whether the
step needs a backward pass; it records the real gradient when it does and
predicts when it does not.  The ``phase`` preset's choice trains the model:
on its PREDICT steps the measurement's update gets the predicted gradient, so
the measured run is that preset's run, with its feedback through the
optimizer's momentum.  The least-squares preset follows the same weights.
The trainers hold a few gradients each: memory stays bounded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..backend import resolve_backend
from ..phase import DeterministicPhaseTrainer
from .gate_model import PRESETS

__all__ = ["PresetShadows", "DRIVING_PRESET"]

#: The preset whose choices train the measurement's model.
DRIVING_PRESET = "phase"


@dataclasses.dataclass
class _Record:
    """One preset's measured steps: skipped or not, and its prediction cosine at each measured real step."""

    skipped: list[bool] = dataclasses.field(default_factory=list)
    cosines: list[float] = dataclasses.field(default_factory=list)


class PresetShadows:
    """Each gated preset of :data:`~vsaopt.advise.gate_model.PRESETS` on the measurement's real gradients.

    Parameters
    ----------
    param_shapes : sequence of (name, shape)
    batch_size : int
        Samples each real gradient averages (for the trainers' telemetry).

    Examples
    --------
    >>> shadows = PresetShadows([("w", (4,))], 8)
    >>> g = {"w": np.ones(4, np.float32)}
    >>> used = [shadows.step(g) for _ in range(12)]
    >>> sum(u is not None for u in used) == sum(shadows.skipped("phase"))   # constant gradients: predictable
    True
    >>> sum(shadows.skipped("phase")) > 0, len(shadows.skipped("deterministic"))
    (True, 12)
    """

    def __init__(self, param_shapes: Any, batch_size: int) -> None:
        be = resolve_backend(None, np.zeros(1, np.float32))  # a host backend; every backend decides alike
        self._trainers = {name: cls(list(param_shapes), config(), backend=be) for name, (cls, config) in PRESETS.items()}
        self._records = {name: _Record() for name in PRESETS}
        self.batch_size = int(batch_size)

    def step(self, real: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """One training step with ``real`` (host float32 arrays): the driving preset's prediction, or None (backward pass).

        Every trainer begins, records ``real`` or predicts, and ends the step.
        """
        used = None
        for name, trainer in self._trainers.items():
            record = self._records[name]
            info = trainer.begin_step()
            if info.needs_backward:
                measured_before = trainer.telemetry.samples
                trainer.record_full_gradients(real, batch_size=self.batch_size)
                t = trainer.telemetry
                if t.samples > measured_before and t.prediction_cosine is not None:
                    record.cosines.append(float(t.prediction_cosine))
                record.skipped.append(False)
            else:
                predicted = trainer.get_predicted_gradients()
                if getattr(trainer, "has_pending_correction", False):  # as the training harness does
                    trainer.apply_correction(predicted)
                record.skipped.append(True)
                if name == DRIVING_PRESET:
                    used = predicted
            trainer.end_step(None)
        return used

    def skipped(self, preset: str) -> list[bool]:
        """Per measured step, whether ``preset`` ran it without a backward pass."""
        return list(self._records[preset].skipped)

    def cosines(self, preset: str) -> list[float]:
        """``preset``'s prediction cosine at each of its measured real steps (what its gate reads)."""
        return list(self._records[preset].cosines)

    def least_squares(self, preset: str) -> bool:
        """Whether ``preset`` predicts by a least-squares fit (whose residual can go stale)."""
        return isinstance(self._trainers[preset], DeterministicPhaseTrainer)

    def stale_residual(self, preset: str) -> bool:
        """Whether ``preset``'s least-squares predictor holds a residual from a past correction."""
        trainer = self._trainers[preset]
        return isinstance(trainer, DeterministicPhaseTrainer) and trainer.predictor.get_stats().max_residual > 0

    def longest_run(self, preset: str) -> int:
        """The longest PREDICT run ``preset``'s gate may allow (its ``predict_steps``)."""
        return int(self._trainers[preset].config.predict_steps)
