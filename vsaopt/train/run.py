"""Train one model several ways and time them: ``baseline``, the methods ``phase`` and ``deterministic``, and three controls.

Every mode starts from the same initial weights, sees the same mini-batches in
the same order (one seeded permutation per epoch; ``small_batch`` its own,
smaller ones) and uses the same optimizer
(:class:`~vsaopt.train.optim.SGDMomentum`).  They differ only in where each
step's gradient comes from:

``baseline``
    a forward and backward pass every step;
``phase``
    :class:`~vsaopt.phase.PhaseTrainer` (momentum extrapolation; corrections
    accumulated by a CORRECT step are added to the next predicted gradient);
``deterministic``
    :class:`~vsaopt.phase.DeterministicPhaseTrainer` (least-squares prediction);
``skip``, ``reuse``, ``small_batch``
    controls matched to ``phase``'s *realized* schedule
    (:mod:`vsaopt.train.controls`): as many skipped steps at random
    positions; the last real gradient reused at exactly ``phase``'s predicted
    steps; plain backprop every step at batch ``B / (k + 1)``.

Because a gated schedule decides as it trains how many steps it predicts, the
run has two rounds: first ``baseline`` with the methods (interleaved), then
the controls, built from ``phase``'s record, interleaved with a second
``baseline`` run that is only their wall-clock reference (same weights, data
and metrics; its clock ran under the same load as theirs).
``phase`` runs whenever a control is asked for, and is reported only when
asked for too.

A step without a backward pass also skips its forward pass, except every
``loss_every``-th such step, whose loss is measured (forward only) and given
to the trainer; the others end with ``end_step(None)``.

Wall-clock time counts training steps only (data gathering, forward, backward,
trainer calls, optimizer update); the periodic test-set evaluations are not
timed.  *Time to target* is the training time at the first evaluation whose
test metric reaches the target of :mod:`vsaopt.train.results` (the
baseline's final accuracy minus 0.5 points, or its final MSE plus 5 %).
At steps with a real gradient the phase-trained modes record the trainer's
prediction telemetry (:attr:`~vsaopt.train.results.ModeResult.telemetry`).

The loop (clock, loss measurement, evaluations, warm-up, interleaving) is
:mod:`vsaopt.train.harness`; this module adds the numpy MLP's learner
(:class:`MLPLearner`), the batch order and the two rounds.  The settings
and results are the schema of :mod:`vsaopt.train.results`.
Nothing here prints; :mod:`vsaopt.cli.train` formats the results.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..backend import resolve_backend
from ..errors import ConfigError, NonFiniteError
from ..phase import DeterministicPhaseTrainer, PhaseConfig, PhaseTrainer
from .controls import ControlPlan, plan_controls
from .controls import skip_mask as _skip_steps  # noqa: F401  (the name the tests know)
from .data import Dataset, load_dataset
from .harness import run_interleaved
from .model import MLP
from .optim import SGDMomentum
from .results import ModeResult, RunResult, TrainSettings

__all__ = [
    "MODES",
    "METHOD_MODES",
    "CONTROL_MODES",
    "QUICK_MODES",
    "MLPLearner",
    "run_training",
    "batch_schedule",
    "nominal_predict_share",
]

#: The methods under test.
METHOD_MODES: tuple[str, ...] = ("phase", "deterministic")
#: The controls, matched to ``phase``'s realized schedule (:mod:`vsaopt.train.controls`).
CONTROL_MODES: tuple[str, ...] = ("skip", "reuse", "small_batch")
#: Every mode, in the order of the results.
MODES: tuple[str, ...] = ("baseline", *METHOD_MODES, *CONTROL_MODES)
#: The modes of the quick default run of ``vsaopt train``.
QUICK_MODES: tuple[str, ...] = ("baseline", "phase", "deterministic", "skip")


def batch_schedule(n_train: int, batch_size: int, steps: int, seed: int) -> np.ndarray:
    """Sample indices of every step's mini-batch, ``(steps, batch_size)`` int64.

    One seeded permutation per epoch (``numpy.random.default_rng(seed)``); an
    epoch's incomplete last batch is dropped.  The same for every mode.

    Examples
    --------
    >>> b = batch_schedule(10, 4, 3, seed=0)
    >>> b.shape, len(set(b[0]) | set(b[1])), np.array_equal(b, batch_schedule(10, 4, 3, seed=0))
    ((3, 4), 8, True)
    """
    if batch_size > n_train:
        raise ConfigError(f"batch_size: at most the {n_train} training samples, got {batch_size}")
    rng = np.random.default_rng([seed, 1])
    per_epoch = n_train // batch_size
    epochs = -(-steps // per_epoch)
    rows = [rng.permutation(n_train)[: per_epoch * batch_size].reshape(per_epoch, batch_size) for _ in range(epochs)]
    return np.concatenate(rows)[:steps]


def nominal_predict_share(config: PhaseConfig, steps: int) -> float:
    """Share of PREDICT steps of ``config``'s schedule over ``steps`` steps without adaptive changes or the gate.

    The nominal share of the fixed cycle.  A gated schedule's realized share
    depends on the measured predictability and is known only after a run
    (the controls of :func:`run_training` copy it from ``phase``'s record).

    Examples
    --------
    >>> nominal_predict_share(PhaseConfig(full_steps=2, predict_steps=2, correct_every=5), 100)
    0.5
    >>> nominal_predict_share(PhaseConfig.recommended(), 100)      # its gate may allow fewer
    0.8
    """
    fixed = dataclasses.replace(config, adaptive_phases=False, gate=dataclasses.replace(config.gate, enabled=False))
    trainer = PhaseTrainer([("g", (1,))], fixed, backend="numpy")
    g = {"g": np.zeros(1, np.float32)}
    predicted = 0
    for _ in range(steps):
        info = trainer.begin_step()
        if info.needs_backward:
            trainer.record_full_gradients(g)
        else:
            trainer.get_predicted_gradients()
            predicted += 1
        trainer.end_step(None)
    return predicted / steps


def _flat_dot(a: dict, b: dict, xp: Any) -> float:
    return sum(float(xp.sum(a[k] * b[k])) for k in b)


def _cosine(a: dict, b: dict, xp: Any) -> float:
    na, nb = math.sqrt(_flat_dot(a, a, xp)), math.sqrt(_flat_dot(b, b, xp))
    return _flat_dot(a, b, xp) / (na * nb) if na > 0 and nb > 0 else 0.0


class MLPLearner:
    """The numpy harness's learner: one mode's :class:`MLP`, :class:`SGDMomentum` and trainer (or skip mask).

    ``baseline`` and ``small_batch`` run a backward pass every step (on the
    rows of ``batches``); ``phase`` and ``deterministic`` ask their trainer;
    ``skip`` and ``reuse`` skip the steps of ``skip_mask`` and reuse the last
    real gradient.  See :class:`~vsaopt.train.harness.Learner` for the
    methods; :attr:`telemetry` collects the trainer's prediction telemetry.
    """

    def __init__(self, mode: str, settings: TrainSettings, data: Dataset, init: dict, batches: np.ndarray,
                 skip_mask: np.ndarray | None, be: Any) -> None:
        if mode not in MODES:
            raise ConfigError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
        self.mode, self.data, self.skip_mask, self.be = mode, data, skip_mask, be
        self._idx = be.xp.asarray(batches)  # sample indices where the data live (cupy indexes with device arrays)
        self.batch_size = int(batches.shape[1])  # samples per step
        self._skip_label = "REUSE" if mode == "reuse" else "SKIP"
        sizes = [data.n_features, *settings.hidden, data.n_outputs]
        self.model = MLP(sizes, seed=settings.seed, backend=be, loss="mse" if data.is_regression else "cross_entropy",
                         matmul=settings.matmul)
        #: Per step: the trainer's telemetry after a real gradient, None on other steps (empty without a trainer).
        self.telemetry: list[Any] = []
        self.model.set_params(init)
        self.opt = SGDMomentum(self.model.params, lr=settings.lr, momentum=settings.momentum)
        self.trainer: Any = None
        if mode == "phase":
            self.trainer = PhaseTrainer(self.model.param_shapes(), settings.phase_config, backend=be)
        elif mode == "deterministic":
            self.trainer = DeterministicPhaseTrainer(self.model.param_shapes(), settings.deterministic_config, backend=be)
        self._grads: dict | None = None  # the gradient this step uses
        self._last_real: dict | None = None
        self._label = ""
        self._tracked = self.trainer is not None  # records telemetry, one entry per step
        self._stopped: Any = None  # the trainer, once the model diverged

    def _diverged(self) -> None:
        """The model's gradients or loss are no longer finite: the trainer stops (it refuses them) and the
        remaining steps run plain backprop on them, so the run ends with a non-finite metric: diverged."""
        self._stopped, self.trainer = self.trainer, None

    def begin_step(self, step: int) -> tuple[bool, str]:
        """Whether ``step`` runs a backward pass, and its phase label (``"SKIP"`` for the control's reused steps)."""
        if self.trainer is not None:
            info = self.trainer.begin_step()
            self._label = str(info.phase)
            return bool(info.needs_backward), self._label
        backward = self.skip_mask is None or not self.skip_mask[step]
        self._label = "FULL" if backward else self._skip_label
        return backward, self._label

    def backward_step(self, step: int) -> float:
        """Loss and gradients of the step's mini-batch; the trainer records them."""
        idx = self._idx[step]
        loss, grads = self.model.loss_and_gradients(self.data.x_train[idx], self.data.y_train[idx])
        if self.trainer is not None:
            try:  # the batch size enables the trainer's gradient noise-scale estimate
                self.trainer.record_full_gradients(grads, batch_size=self.batch_size)
            except NonFiniteError:
                self._diverged()
        if self._tracked:  # immutable records; made dicts outside the timed steps
            self.telemetry.append(None if self.trainer is None else self.trainer.telemetry)
        self._grads = self._last_real = grads
        return loss

    def predicted_step(self, step: int, measure_loss: bool) -> float | None:
        """The trainer's predicted gradient (the control: the last real one); the loss when measured."""
        if self.trainer is not None:
            grads = self.trainer.get_predicted_gradients()
            # a CORRECT record of the momentum trainer accumulated a correction for this prediction
            if self.mode == "phase" and self.trainer.has_pending_correction:
                self.trainer.apply_correction(grads)
        else:
            assert self._last_real is not None  # step 0 is never skipped
            grads = self._last_real
        if self._tracked:
            self.telemetry.append(None)
        self._grads = grads
        if not measure_loss:
            return None
        idx = self._idx[step]
        return self.model.loss(self.data.x_train[idx], self.data.y_train[idx])

    def finish_step(self, loss: float | None) -> None:
        """SGD update with this step's gradient; the trainer's step ends with ``loss``."""
        assert self._grads is not None
        self.opt.step(self._grads)
        if self.trainer is not None:
            try:
                self.trainer.end_step(loss)
            except NonFiniteError:
                self._diverged()

    def evaluate(self) -> tuple[float | None, float]:
        """Test accuracy (None for a regression) and loss (for a regression: the test MSE)."""
        m, d = self.model, self.data
        accuracy = None if d.is_regression else m.accuracy(d.x_test, d.y_test)
        return accuracy, m.loss(d.x_test, d.y_test)

    def diagnose(self, step: int) -> tuple[float, float, float]:
        """How close the used gradient is to the real mini-batch and full training-set gradients."""
        xp, m, d = self.be.xp, self.model, self.data
        assert self._grads is not None
        idx = self._idx[step]
        _, real = m.loss_and_gradients(d.x_train[idx], d.y_train[idx])
        _, full = m.loss_and_gradients(d.x_train, d.y_train)
        return _cosine(self._grads, real, xp), _cosine(self._grads, full, xp), _cosine(real, full, xp)

    def trainer_stats(self) -> dict:
        """The trainer's statistics (empty for ``baseline`` and the controls)."""
        trainer = self.trainer if self.trainer is not None else self._stopped
        return {} if trainer is None else trainer.get_stats().to_dict()


def run_training(
    settings: TrainSettings,
    modes: Sequence[str] = MODES,
    *,
    on_step: Callable[[str, int], None] | None = None,
    machine: str = "",
) -> RunResult:
    """Train every mode of ``modes`` (``baseline`` always runs: it defines the target) and time it.

    Two rounds: ``baseline`` and the methods, then the controls, matched to
    ``phase``'s realized schedule (``phase`` runs whenever a control does).
    Within a round the modes advance in turns of ``settings.interleave``
    steps (round robin), so that a change in the machine's load during the
    run slows every mode alike; each mode's clock runs only during its own
    steps.  Before timing, every mode runs ``settings.timing_warmup_steps``
    untimed steps on a throwaway copy (compiled kernels loaded, caches warm).

    Parameters
    ----------
    settings : TrainSettings
    modes : sequence of str
        Some of :data:`MODES`.
    on_step : callable(mode, steps_done), optional
        Called after every training step (the CLI's progress bar).
    machine : str
        Stored in the result (where the times were measured).

    Returns
    -------
    RunResult

    Examples
    --------
    >>> s = TrainSettings(steps=30, hidden=(16,), batch_size=32, eval_every=10, backend="numpy")
    >>> run = run_training(s, ["phase", "skip"])
    >>> list(run.modes), run.modes["phase"].steps
    (['baseline', 'phase', 'skip'], 30)
    >>> run.modes["skip"].backward_passes == run.modes["phase"].backward_passes   # the control skips as often
    True
    >>> list(run_training(s, ["reuse"]).modes)          # phase runs for the control, unreported
    ['baseline', 'reuse']
    """
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ConfigError(f"modes: expected some of {', '.join(MODES)}, got {unknown}")
    if settings.threads:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=settings.threads, user_api="blas"):
            return _run_all(settings, modes, on_step, machine)
    return _run_all(settings, modes, on_step, machine)


def _run_all(settings: TrainSettings, modes: Sequence[str], on_step: Any, machine: str) -> RunResult:
    controls = [m for m in CONTROL_MODES if m in modes]
    methods = [m for m in METHOD_MODES if m in modes or (m == "phase" and controls)]
    be = resolve_backend(None if settings.backend == "auto" else settings.backend)
    data = load_dataset(settings.dataset, seed=settings.seed, backend=be)
    init = MLP([data.n_features, *settings.hidden, data.n_outputs], seed=settings.seed, backend=be).copy_params()
    n_train = int(data.x_train.shape[0])
    batches = batch_schedule(n_train, settings.batch_size, settings.steps, settings.seed)
    learners: dict[str, MLPLearner] = {}  # the last one made per mode: the timed run's
    plan: ControlPlan | None = None

    def learner(mode: str, steps: int) -> MLPLearner:
        rows, mask = batches[:steps], None
        if mode in ("skip", "reuse"):
            assert plan is not None
            mask = (plan.skip if mode == "skip" else plan.reuse)[:steps]
        elif mode == "small_batch":
            assert plan is not None
            rows = batch_schedule(n_train, plan.small_batch, steps, settings.seed)
        learners[mode] = MLPLearner(mode, settings, data, init, rows, mask, be)
        return learners[mode]

    def play(group: list[str], step_name: Callable[[str], str] = str) -> dict[str, ModeResult]:
        out = run_interleaved(
            learner, group, settings.steps, eval_every=settings.eval_every, loss_every=settings.loss_every,
            interleave=settings.interleave, warmup_steps=settings.timing_warmup_steps,
            diagnose=lambda m: settings.diagnose and m != "baseline",
            on_step=None if on_step is None else lambda m, k: on_step(step_name(m), k),
        )
        metric = "mse" if data.is_regression else "accuracy"
        for mode, res in out.items():
            res.metric = metric
            res.telemetry = [None if t is None else t.to_dict() for t in learners[mode].telemetry]
            res.batch_fraction = learners[mode].batch_size / settings.batch_size
        return out

    results = play(["baseline", *methods])
    if controls:
        plan = plan_controls(results["phase"].backward, settings.batch_size, settings.seed)
        # a second baseline run interleaved with the controls is their wall-clock reference
        second = play(["baseline", *controls], lambda m: "baseline (timing reference)" if m == "baseline" else m)
        reference = second.pop("baseline").eval_time
        for res in second.values():
            res.baseline_eval_time = reference
        results.update(second)
    return RunResult(settings.to_dict(), machine, {m: results[m] for m in MODES if m == "baseline" or m in modes})
