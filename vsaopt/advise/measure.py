"""The measurement behind :func:`vsaopt.advise`: noise scale, drift, consecutive cosines and the presets' own skips on a short, bounded run."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .._arrays import check_int, check_seed
from .._grads import normalize_param_shapes, validate_gradients
from ..backend import get_backend, is_device_array, to_host
from ..errors import DTypeError
from .extrapolate import TailEvidence, measured_share
from .gate_model import PRESETS, expected_cosine, simulated_skip_share
from .model_error import widened_row
from .noise import estimate_noise_scale, noise_ratio
from .result import Advice, BatchAdvice, ShareBand
from .shadow import DRIVING_PRESET, PresetShadows

__all__ = ["advise", "MAX_MEASURED_STEPS", "DRIFT_LAGS", "batch_ladder"]

#: At most this many training steps are run by one measurement.
MAX_MEASURED_STEPS = 400
#: Training steps of the measurement by default (at least 5 per round).
DEFAULT_MEASURE_STEPS = 100
#: Drift lags measured per round: the longest PREDICT run of the presets plus one.
DRIFT_LAGS = 5
#: Multiples of the batch size advised on (below the data size; full batch is added).
BATCH_MULTIPLES = (1, 2, 4, 8, 16)
#: Largest sample batch the estimator's small batch uses by default.
DEFAULT_SMALL_BATCH = 64
#: Streams of the measurement's generators (the bootstrap and the model have their own).
_SAMPLE_STREAM, _ORDER_STREAM = 0xADF1, 0xADF2

LossAndGradients = Callable[[np.ndarray], "tuple[float, Mapping[str, Any]]"]


def batch_ladder(batch_size: int, n_samples: int) -> list[int]:
    """The batch sizes advised on: ``batch_size`` times 1, 2, 4, 8, 16 while below ``n_samples``, then ``n_samples``.

    Examples
    --------
    >>> batch_ladder(64, 1437), batch_ladder(1437, 1437), batch_ladder(16, 40)
    ([64, 128, 256, 512, 1024, 1437], [1437], [16, 32, 40])
    """
    below = [batch_size * m for m in BATCH_MULTIPLES if batch_size * m < n_samples]
    return [*below, n_samples]


class _GradientSource:
    """Calls the user's function, checks what it returns, and flattens the gradient to one float64 host vector."""

    def __init__(self, fn: LossAndGradients, shapes: Any) -> None:
        self.fn, self.shapes, self.calls, self.samples = fn, shapes, 0, 0
        self._host = get_backend("numpy")

    def __call__(self, indices: np.ndarray) -> tuple[Mapping[str, Any], np.ndarray]:
        """The gradient mapping as returned, and its checked flat float64 host copy."""
        grads, infos = self.checked(indices)
        return grads, np.concatenate([i.flat for i in infos]).astype(np.float64)

    def checked(self, indices: np.ndarray) -> tuple[Mapping[str, Any], list[Any]]:
        """The gradient mapping as returned, and its checked host float32 pieces (``GradientInfo``, declaration order)."""
        out = self.fn(indices)
        self.calls += 1
        self.samples += int(indices.size)
        if not isinstance(out, tuple) or len(out) != 2:
            raise DTypeError(f"loss_and_gradients: expected a (loss, gradients) pair, got {type(out).__name__}")
        grads = out[1]
        host = {k: to_host(a, copy=False) if is_device_array(a) else a for k, a in grads.items()} \
            if isinstance(grads, Mapping) else grads
        return grads, validate_gradients(host, self.shapes, self._host, "loss_and_gradients(...)[1]")


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(a @ a), float(b @ b)
    return float(a @ b) / math.sqrt(na * nb) if na > 0 and nb > 0 else 0.0


def _check_callable(value: Any, name: str, optional: bool = False) -> None:
    if (value is None and optional) or callable(value):
        return
    raise DTypeError(f"{name}: expected a callable{' or None' if optional else ''}, got {type(value).__name__}")


def _drift_angle(cosines: np.ndarray) -> float:
    """``phi`` fitted to mean cosines at lags ``1..L`` by least squares on ``arccos(c_L) = L phi``."""
    lags = np.arange(1, cosines.size + 1, dtype=np.float64)
    return float(np.sum(lags * np.arccos(np.clip(cosines, -1.0, 1.0))) / np.sum(lags * lags))


def _drift_band(per_round: np.ndarray, seed: int, resamples: int = 400) -> tuple[float, float, float]:
    """``phi`` of the mean cosines over the rounds, and the 10th and 90th percentiles of a bootstrap over the rounds."""
    value = _drift_angle(per_round.mean(axis=0))
    rng = np.random.default_rng([seed, _SAMPLE_STREAM, 1])
    picks = rng.integers(0, per_round.shape[0], size=(resamples, per_round.shape[0]))
    boot = np.sort([_drift_angle(per_round[p].mean(axis=0)) for p in picks])
    low, high = float(boot[int(0.1 * (resamples - 1))]), float(boot[int(math.ceil(0.9 * (resamples - 1)))])
    return value, min(low, value), max(high, value)


def _like(template: Mapping[str, Any], host: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Copies of the host float32 arrays ``host`` where and as the arrays of ``template`` are (GPU, dtype).

    Copies: an ``update`` that changes its gradients in place leaves the trainer's state alone.
    """
    out = {}
    for name, t in template.items():
        dtype = getattr(t, "dtype", None)
        a: Any = np.array(host[name], dtype=dtype if dtype is not None else np.float32)
        out[name] = get_backend("cupy").to_device(a) if is_device_array(t) else a
    return out


class _Trainer:
    """The measurement's training steps at the user's batch: epoch permutations without replacement, ``update`` after each.

    With ``shadows`` the presets' trainers see every step, and the driving
    preset's predicted gradient replaces the real one in the update on its
    PREDICT steps (the real one is still computed: the consecutive cosines
    and the other preset read it).
    """

    def __init__(self, source: _GradientSource, update: Any, n: int, batch: int, seed: int,
                 shadows: PresetShadows | None = None) -> None:
        self.source, self.update, self.n, self.batch, self.shadows = source, update, n, batch, shadows
        self._rng = np.random.default_rng([seed, _ORDER_STREAM])
        self._queue: list[np.ndarray] = []
        self._previous: np.ndarray | None = None
        #: Cosines of consecutive gradients at the user's batch (what the gate's telemetry reads).
        self.cosines: list[float] = []
        self.steps = 0

    def _next_indices(self) -> np.ndarray:
        if not self._queue:
            order = self._rng.permutation(self.n)
            per_epoch = self.n // self.batch
            self._queue = list(order[: per_epoch * self.batch].reshape(per_epoch, self.batch))[::-1]
        return self._queue.pop()

    def step(self, record: bool) -> None:
        """One gradient at the user's batch, then ``update`` with it; its cosine with the previous one when ``record``."""
        grads, infos = self.source.checked(self._next_indices())
        g = np.concatenate([i.flat for i in infos]).astype(np.float64)
        if record and self._previous is not None:
            self.cosines.append(_cosine(self._previous, g))
        self._previous = g
        used = grads
        if self.shadows is not None:
            predicted = self.shadows.step({i.name: i.flat.reshape(i.shape) for i in infos})
            if predicted is not None:
                used = _like(grads, predicted)
        if self.update is not None:
            self.update(used)
        self.steps += 1


def _validated(loss_and_gradients: Any, parameter_shapes: Any, n_samples: Any, batch_size: Any, update: Any,
               measure_steps: Any, rounds: Any, run_steps: Any, small_batch: Any, big_factor: Any, seed: Any,
               on_progress: Any) -> dict:
    """Every argument checked, before anything is called."""
    _check_callable(loss_and_gradients, "loss_and_gradients")
    _check_callable(update, "update", optional=True)
    _check_callable(on_progress, "on_progress", optional=True)
    shapes = normalize_param_shapes(parameter_shapes, "parameter_shapes")
    n = check_int(n_samples, "n_samples", 2, 2**62)
    batch = check_int(batch_size, "batch_size", 1, n)
    small = min(batch, DEFAULT_SMALL_BATCH) if small_batch is None else check_int(small_batch, "small_batch", 1, 2**20)
    factor = check_int(big_factor, "big_factor", 2, 64)
    r = check_int(rounds, "rounds", 2, MAX_MEASURED_STEPS // DRIFT_LAGS)
    least = DRIFT_LAGS * r if update is not None else 0  # without update the rounds' draws train nothing
    measure = (max(DEFAULT_MEASURE_STEPS, least) if measure_steps is None
               else check_int(measure_steps, "measure_steps", least, MAX_MEASURED_STEPS))
    return {"shapes": shapes, "n": n, "batch": batch, "small": small, "factor": factor, "rounds": r, "measure": measure,
            "run_steps": check_int(run_steps, "run_steps", 1, 10**7), "seed": check_seed(seed)}


def advise(
    loss_and_gradients: LossAndGradients,
    parameter_shapes: Sequence[tuple[str, Sequence[int]]] | Mapping[str, Sequence[int]],
    n_samples: int,
    batch_size: int,
    *,
    update: Callable[[Mapping[str, Any]], None] | None = None,
    measure_steps: int | None = None,
    rounds: int = 8,
    run_steps: int = 300,
    small_batch: int | None = None,
    big_factor: int = 8,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
) -> Advice:
    """Would the gated ``recommended()`` presets skip backward passes on this model, at this batch size or a larger one?

    A short measurement (``measure_steps`` training steps at ``batch_size``, at
    most :data:`MAX_MEASURED_STEPS`, with ``rounds`` measurement rounds spread
    evenly over them) estimates, along the training run:

    - the gradient noise scale ``B_simple`` (McCandlish et al. 2018, appendix
      A; :func:`~vsaopt.advise.noise.estimate_noise_scale`): per round,
      ``big_factor`` gradients over ``small_batch`` samples drawn with
      replacement, and their mean (a gradient over ``big_factor * small_batch``
      samples); the reported value pools the later half of the rounds (the
      noise scale grows as training proceeds), with an 80 % bootstrap
      interval over them;
    - the drift: per round, the gradient on one fixed batch before and 1..5
      training steps later (with ``update``), the turning angle ``phi`` per step;
    - the cosine of consecutive real gradients at ``batch_size`` (``rho``, what
      the gate's telemetry reads).

    With ``update`` the gated presets' own trainers run beside every training
    step (:mod:`vsaopt.advise.shadow`), the ``phase`` preset's choices
    training the model: at ``batch_size`` the advised share of backward passes
    is what they skipped over the measured steps, the rest of the run
    extrapolated from the gate's mechanics, with a band
    (:mod:`vsaopt.advise.extrapolate`).  At the other batch sizes (``batch_size``
    x 2, 4, 8, 16 below the data size, and full batch; also at ``batch_size``
    without ``update``) it is what each preset's trainer skips on
    ``run_steps`` steps of gradients with the measured noise and drift
    (:mod:`vsaopt.advise.gate_model`), each round's estimates standing for
    the run from its step on; its band, from the intervals of both
    estimates, is widened by the model's error at ``batch_size``
    (:mod:`vsaopt.advise.model_error`).

    Parameters
    ----------
    loss_and_gradients : callable(indices) -> (loss, gradients)
        Loss and gradients of the *mean* loss over the training samples
        ``indices`` (an int64 array, repeats allowed), at the current weights;
        gradients a mapping ``name -> array`` of ``parameter_shapes``.
    parameter_shapes : sequence of (name, shape), or mapping name -> shape
    n_samples : int >= 2
        Training samples (indices are drawn from ``range(n_samples)``).
    batch_size : int in [1, n_samples]
        The batch size asked about (the measurement trains at it).
    update : callable(gradients), optional
        One optimizer step with the given gradient mapping (your optimizer, on
        weights you may change: a copy).  On the steps the ``phase`` preset
        would skip it is given the preset's predicted gradient (host float32
        arrays converted to the returned gradients' dtype and device), as in a
        run with that preset.  None: the weights stay fixed, neither the drift
        nor the presets' own skips are measured, and every row is the model's.
    measure_steps : int, optional
        Training steps of the measurement (only with ``update``; at least
        ``5 * rounds``, at most :data:`MAX_MEASURED_STEPS`; default
        ``max(100, 5 * rounds)``, rounded down to a multiple of ``rounds``).
        They are the first steps of the run advised on; each round's
        estimates (pooled with its neighbours') stand for the run from that
        step on, the last round's for the rest of it.
    rounds : int in [2, 80]
        Measurement rounds.
    run_steps : int
        Steps of the run the shares are for.
    small_batch : int, optional
        The estimator's small batch (default ``min(batch_size, 64)``).
    big_factor : int in [2, 64]
        The big batch is ``big_factor * small_batch``.
    seed : int
        Seed of every draw (``numpy.random.default_rng``): the same seed and
        weights give the same advice.
    on_progress : callable(done, total), optional
        Called as the work advances.

    Returns
    -------
    Advice

    Raises
    ------
    ConfigError, DTypeError
        An argument out of range or of the wrong type (before anything is called).
    ShapeError, DTypeError, NonFiniteError
        ``loss_and_gradients`` returned gradients of other names, shapes or
        dtypes, or NaN/Inf (named as ``loss_and_gradients(...)[1]``).

    Examples
    --------
    A linear least-squares model on 400 samples, trained with SGD:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((400, 8)).astype(np.float32)
    >>> y = x @ np.arange(8, dtype=np.float32) + rng.standard_normal(400).astype(np.float32)
    >>> w = np.zeros(8, np.float32)
    >>> def loss_and_gradients(idx):
    ...     r = x[idx] @ w - y[idx]
    ...     return float(r @ r / len(idx)), {"w": 2 * x[idx].T @ r / len(idx)}
    >>> def update(grads):
    ...     w[...] -= 0.01 * grads["w"]
    >>> advice = advise(loss_and_gradients, [("w", (8,))], 400, 16, update=update, seed=0)
    >>> [r.batch_size for r in advice.rows]
    [16, 32, 64, 128, 256, 400]
    >>> advice.noise_scale.value > 0, 0.0 <= advice.here.skip["phase"].value <= 1.0
    (True, True)
    """
    v = _validated(loss_and_gradients, parameter_shapes, n_samples, batch_size, update, measure_steps, rounds,
                   run_steps, small_batch, big_factor, seed, on_progress)
    source = _GradientSource(loss_and_gradients, v["shapes"])
    shadows = PresetShadows(v["shapes"], v["batch"]) if update is not None else None
    trainer = _Trainer(source, update, v["n"], v["batch"], v["seed"], shadows)
    ladder = batch_ladder(v["batch"], v["n"])
    tick = _Progress(on_progress, v["rounds"] + len(ladder) * len(PRESETS))
    measured = _measure_rounds(source, trainer, v, tick)
    late = min(v["rounds"] // 2, v["rounds"] - 2) if measured.drift else 0  # trained: the later half is the run's state
    noise = estimate_noise_scale(measured.small_sq[late:], measured.big_sq[late:], v["small"], v["small"] * v["factor"],
                                 seed=v["seed"])
    drift = np.array(measured.drift)
    angle = _drift_band(drift, v["seed"]) if measured.drift else (0.0, 0.0, 0.0)
    schedule = _Schedule(measured, v, noise, angle)
    rows = [_batch_advice(b, v["n"], schedule, v["seed"], tick) for b in ladder]
    at_batch: dict[str, Any] = {}
    errors = None
    if shadows is not None:
        rows[0], at_batch = _measured_advice(rows[0], shadows, schedule, v)
        assert rows[0].model_skip is not None
        errors = {p: rows[0].skip[p].value - rows[0].model_skip[p].value for p in PRESETS}
    cap = min(_cap(p) for p in PRESETS)
    rows = [r if r.measured else widened_row(r, errors, cap) for r in rows]
    rho = float(np.mean(trainer.cosines)) if trainer.cosines else None
    measurement = {"small_batch": v["small"], "big_batch": v["small"] * v["factor"], "rounds": v["rounds"],
                   "round_steps": measured.steps, "training_steps": trainer.steps, "gradient_evaluations": source.calls,
                   "samples_evaluated": source.samples, "drift_measured": bool(measured.drift),
                   "noise_scale_per_round": [None if math.isinf(x) else x for x in schedule.noise_scales],
                   "drift_angle_per_round": schedule.angles, "measured_batch": at_batch}
    return Advice(v["batch"], v["n"], v["run_steps"], v["seed"], noise, rho, _rho_noise_scale(rho, v["batch"]),
                  [float(c) for c in drift.mean(axis=0)] if measured.drift else [], angle, rows, measurement)


class _Progress:
    """Counts units of work and reports them to ``on_progress``."""

    def __init__(self, callback: Callable[[int, int], None] | None, total: int) -> None:
        self.callback, self.total, self.done = callback, total, 0

    def __call__(self) -> None:
        self.done += 1
        if self.callback is not None:
            self.callback(self.done, self.total)


@dataclasses.dataclass
class _Rounds:
    """Per measurement round: the training step it started at, mean ``|g_small|^2``, ``|g_big|^2``, drift cosines."""

    steps: list[int] = dataclasses.field(default_factory=list)
    small_sq: list[float] = dataclasses.field(default_factory=list)
    big_sq: list[float] = dataclasses.field(default_factory=list)
    drift: list[list[float]] = dataclasses.field(default_factory=list)


def _measure_rounds(source: _GradientSource, trainer: _Trainer, v: dict, tick: _Progress) -> _Rounds:
    """``rounds`` rounds spread evenly over ``measure_steps`` training steps (with ``update``; else at fixed weights)."""
    rng = np.random.default_rng([v["seed"], _SAMPLE_STREAM])
    out = _Rounds()
    spacing = v["measure"] // v["rounds"]
    for _ in range(v["rounds"]):
        out.steps.append(trainer.steps)
        draws = [rng.integers(0, v["n"], size=v["small"]) for _ in range(v["factor"])]
        flats = [source(idx)[1] for idx in draws]
        big = np.mean(flats, axis=0)
        out.small_sq.append(float(np.mean([f @ f for f in flats])))
        out.big_sq.append(float(big @ big))
        fixed = np.concatenate(draws)
        before = source(fixed)[1] if trainer.update is not None else None
        lags = []
        for _ in range(DRIFT_LAGS):
            trainer.step(record=True)
            if before is not None:
                lags.append(_cosine(before, source(fixed)[1]))
        if lags:
            out.drift.append(lags)
        for _ in range(spacing - DRIFT_LAGS if trainer.update is not None else 0):
            trainer.step(record=True)
        tick()
    return out


class _Schedule:
    """Noise scale and drift per step of the advised run: each round's (pooled with its neighbours) from its step on.

    Before the first round: the first round's; after the last: the last round's
    (the noise scale usually keeps growing, so later shares lean high).  The
    band's ends scale every round's values as the whole measurement's interval
    scales its estimate.
    """

    def __init__(self, rounds: _Rounds, v: dict, noise: Any, angle: tuple[float, float, float]) -> None:
        self.run_steps, self.small, self.big = v["run_steps"], v["small"], v["small"] * v["factor"]
        n = len(rounds.steps)
        windows = [slice(max(0, r - 1), min(n, r + 2)) for r in range(n)]
        s, b = np.array(rounds.small_sq), np.array(rounds.big_sq)
        self.noise_scales = [_pooled_noise_scale(s[w], b[w], self.small, self.big) for w in windows]
        drift = np.array(rounds.drift)
        self.angles = [_drift_angle(drift[w].mean(axis=0)) for w in windows] if rounds.drift else [0.0] * n
        self.starts = rounds.steps if rounds.drift else [0] * n
        self._noise_factor = tuple(_factor(x, noise.value) for x in (noise.value, noise.low, noise.high))
        self._angle_factor = tuple(_factor(x, angle[0]) for x in angle)

    def per_step(self, batch: int, n: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """``nu`` and ``phi`` per step at ``batch``; ``end`` 0, 1, 2: the estimate, the optimistic, the pessimistic end."""
        which = np.searchsorted(np.array(self.starts), np.arange(self.run_steps), side="right") - 1
        which = np.clip(which, 0, len(self.starts) - 1)
        nus = np.array([noise_ratio(_scaled(x, self._noise_factor[end]), batch, n) for x in self.noise_scales])
        phis = np.array(self.angles) * self._angle_factor[end]
        return nus[which], phis[which]


def _scaled(x: float, factor: float) -> float:
    """``x * factor`` where an unresolved (infinite) round stays unresolved and ``0 * inf`` is 0."""
    if math.isinf(x):
        return math.inf
    if math.isinf(factor):
        return math.inf if x > 0 else 0.0
    return x * factor


def _factor(x: float, reference: float) -> float:
    """``x / reference`` (1 where both are 0 or both infinite)."""
    if x == reference:
        return 1.0
    return x / reference if reference > 0 and math.isfinite(reference) else (math.inf if x > reference else 0.0)


def _pooled_noise_scale(small_sq: np.ndarray, big_sq: np.ndarray, small: int, big: int) -> float:
    """``B_simple`` of the pooled rounds (infinite when ``|G|^2`` is not resolved)."""
    g2 = (big * big_sq.mean() - small * small_sq.mean()) / (big - small)
    tr = (small_sq.mean() - big_sq.mean()) / (1.0 / small - 1.0 / big)
    return math.inf if g2 <= 0 else max(tr, 0.0) / g2


def _rho_noise_scale(rho: float | None, batch: int) -> float:
    """The telemetry's ``B (1 - rho) / rho``; infinite for ``rho <= 0`` or unmeasured."""
    return math.inf if rho is None or rho <= 0 else batch * (1.0 - rho) / rho


def _batch_advice(batch: int, n: int, schedule: _Schedule, seed: int, tick: _Progress) -> BatchAdvice:
    """The shares at ``batch``: at the estimates, and at both ends of their intervals (more noise with more drift)."""
    skip = {}
    for k, preset in enumerate(PRESETS):
        shares = []
        for end in range(3):
            nus, phis = schedule.per_step(batch, n, end)
            shares.append(simulated_skip_share(preset, nus, phis, schedule.run_steps, seed=seed,
                                               stream=3 * len(PRESETS) * batch + 3 * k + end))
        skip[preset] = ShareBand(shares[0], min(shares), max(shares))
        tick()
    nus, phis = schedule.per_step(batch, n, 0)
    return BatchAdvice(batch, float(nus[-1]), expected_cosine(float(nus[-1]), float(phis[-1])), skip)


def _cap(preset: str) -> float:
    """The most ``preset`` can skip: its longest PREDICT run over one more step."""
    longest = int(PRESETS[preset][1]().predict_steps)
    return longest / (longest + 1)


#: Steps the ceiling's simulation runs before it counts (the gate's start-up; the run's gate is past it).
_CEILING_PREROLL = 10


def _measured_advice(model_row: BatchAdvice, shadows: PresetShadows, schedule: _Schedule, v: dict
                     ) -> tuple[BatchAdvice, dict]:
    """The row of the measured batch from the presets' own skips (:mod:`vsaopt.advise.extrapolate`), and how it was formed."""
    batch, n, run_steps = v["batch"], v["n"], v["run_steps"]
    driving = shadows.skipped(DRIVING_PRESET)[:run_steps]
    third = driving[len(driving) - max(1, len(driving) // 3):]
    tail = max(0, run_steps - len(driving))
    full = batch >= n
    nus, phis = schedule.per_step(batch, n, 1)  # the optimistic ends: least noise, least drift
    skip, how = {}, {}
    for k, preset in enumerate(PRESETS):
        skipped = shadows.skipped(preset)[:run_steps]
        ceiling = 0.0 if tail == 0 or full else simulated_skip_share(
            preset, float(nus[-1]), float(phis[-1]), tail + _CEILING_PREROLL, seed=v["seed"], stream=0xCE11 + k,
            count_from=_CEILING_PREROLL)
        can_trap = shadows.least_squares(preset)
        own_third = skipped[len(skipped) - max(1, len(skipped) // 3):]
        trapped = can_trap and shadows.stale_residual(preset) and any(third) and not any(own_third)
        evidence = TailEvidence(ceiling, full, preset == DRIVING_PRESET, can_trap, trapped, shadows.longest_run(preset),
                                sum(driving))
        skip[preset], how[preset] = measured_share(skipped, run_steps, evidence)
        cosines = shadows.cosines(preset)
        how[preset]["prediction_cosine"] = float(np.mean(cosines[-max(1, len(cosines) // 3):])) if cosines else None
    row = BatchAdvice(model_row.batch_size, model_row.noise_ratio, model_row.cosine, skip, measured=True,
                      model_skip=dict(model_row.skip))
    return row, how
