"""Mutations of the schedule family: predictor kernels, the adaptive rule, the gate, telemetry and the phase tables."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import mutation

F32 = np.float32


def _into(r: Any, out: Any) -> Any:
    """A kernel's result ``r``, written into ``out`` when the caller gave one (the kernels' ``out=`` convention)."""
    if out is None:
        return r
    out[...] = r
    return out


def _into_pair(b: Any, v: Any, out: Any) -> Any:
    """:func:`_into` for a kernel returning two arrays (``out`` a pair)."""
    if out is None:
        return b, v
    out[0][...], out[1][...] = b, v
    return out


@mutation("schedule", "precision", "kernel:predict_linear")
def predict_linear_fused(orig: Any) -> Any:
    """(baseline + velocity*dt) + residual*w formed in float64 and rounded once (fused)."""

    def predict_linear(baseline: Any, velocity: Any, residual: Any, dt: float, w: float, out: Any = None) -> Any:
        with np.errstate(all="ignore"):
            r = ((baseline.astype(np.float64) + velocity.astype(np.float64) * np.float64(F32(dt)))
                 + residual.astype(np.float64) * np.float64(F32(w))).astype(np.float32)
        return _into(r, out)

    return predict_linear


@mutation("schedule", "order", "kernel:predict_linear")
def predict_linear_reassociated(orig: Any) -> Any:
    """baseline + (velocity*dt + residual*w) instead of (baseline + velocity*dt) + residual*w."""

    def predict_linear(baseline: Any, velocity: Any, residual: Any, dt: float, w: float, out: Any = None) -> Any:
        with np.errstate(all="ignore"):
            r = (baseline + (velocity * F32(dt) + residual * F32(w))).astype(np.float32)
        return _into(r, out)

    return predict_linear


@mutation("schedule", "precision", "kernel:momentum_extrapolate")
def momentum_expanded(orig: Any) -> Any:
    """curr + m*(curr - prev) computed as curr*(1 + m) - prev*m."""

    def momentum_extrapolate(prev: Any, curr: Any, momentum: float) -> Any:
        m = F32(momentum)
        with np.errstate(all="ignore"):
            return (curr * (F32(1.0) + m) - prev * m).astype(np.float32)

    return momentum_extrapolate


@mutation("schedule", "precision", "kernel:axpy")
def axpy_fused(orig: Any) -> Any:
    """x + a*y formed in float64 and rounded once (fused multiply-add)."""

    def axpy(x: Any, a: float, y: Any) -> Any:
        with np.errstate(all="ignore"):
            return (x.astype(np.float64) + np.float64(F32(a)) * y.astype(np.float64)).astype(np.float32)

    return axpy


def _residual(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def residual_update(residual: Any, actual: Any, baseline: Any, velocity: Any, dt: float, decay: float,
                            one_minus_decay: float, out: Any = None, err: Any = None) -> Any:
            if rule == "one_minus_in_f32":
                one_minus_decay = float(F32(1.0) - F32(decay))
            elif rule == "one_minus_in_f64":
                one_minus_decay = 1.0 - float(decay)
                with np.errstate(all="ignore"):
                    q = velocity * F32(dt) + baseline
                    e = (actual - q).astype(np.float32)
                    new = (residual * F32(decay) + (e.astype(np.float64) * one_minus_decay).astype(np.float32)).astype(np.float32)
                if out is not None:
                    out[...] = new
                    new = out
                if err is not None:
                    err[...] = e
                    e = err
                return new, e
            elif rule == "fused":
                with np.errstate(all="ignore"):
                    q = velocity * F32(dt) + baseline
                    e = (actual - q).astype(np.float32)
                    new = (residual.astype(np.float64) * np.float64(F32(decay))
                           + e.astype(np.float64) * np.float64(F32(one_minus_decay))).astype(np.float32)
                if out is not None:
                    out[...] = new
                    new = out
                if err is not None:
                    err[...] = e
                    e = err
                return new, e
            return orig(residual, actual, baseline, velocity, dt, decay, one_minus_decay, out, err)

        return residual_update

    return make


_RESIDUAL_EQUIVALENT = {
    "one_minus_in_f32": "for a float32 d in [0, 1], 1 - d is exact in float64 unless d < 2**-29, where both roundings give 1; "
                        "float32 subtraction is correctly rounded, so f32(1) - f32(d) = f32(1 - d) always",
}

for _rule, _doc in (
    ("one_minus_in_f32", "1 - decay computed in float32 from f32(decay) instead of rounding the float64 difference."),
    ("one_minus_in_f64", "(1 - decay) * error with 1 - decay kept in float64."),
    ("fused", "decay*residual + (1 - decay)*error formed in float64 and rounded once."),
):
    _m = _residual(_rule)
    _m.__name__, _m.__doc__ = f"residual_{_rule}", _doc
    mutation("schedule", "precision", "kernel:residual_update", equivalent=_RESIDUAL_EQUIVALENT.get(_rule))(_m)


@mutation("schedule", "precision", "kernel:wls_fit")
def wls_sums_in_f32(orig: Any) -> Any:
    """The weighted sums S0 and S1 accumulated in float32."""

    def wls_fit(history: Any, rows: Any, w: Any, wt: Any, sum_w: float, sum_wt: float, sum_wt2: float, inv_det: float,
                out: Any = None) -> Any:
        n = history.shape[1]
        s0, s1 = np.zeros(n, np.float32), np.zeros(n, np.float32)
        for i in range(rows.shape[0]):
            g = history[int(rows[i])]
            s0 = s0 + F32(w[i]) * g
            s1 = s1 + F32(wt[i]) * g
        b = ((sum_wt2 * s0.astype(np.float64) - sum_wt * s1.astype(np.float64)) * inv_det).astype(np.float32)
        v = ((sum_w * s1.astype(np.float64) - sum_wt * s0.astype(np.float64)) * inv_det).astype(np.float32)
        return _into_pair(b, v, out)

    return wls_fit


@mutation("schedule", "precision", "kernel:wls_fit")
def wls_divides_by_det(orig: Any) -> Any:
    """The fit divides by det instead of multiplying by the float64 reciprocal."""

    def wls_fit(history: Any, rows: Any, w: Any, wt: Any, sum_w: float, sum_wt: float, sum_wt2: float, inv_det: float,
                out: Any = None) -> Any:
        n = history.shape[1]
        s0, s1 = np.zeros(n), np.zeros(n)
        for i in range(rows.shape[0]):
            g = history[int(rows[i])].astype(np.float64)
            s0 += np.float64(w[i]) * g
            s1 += np.float64(wt[i]) * g
        det = 1.0 / inv_det
        b = ((sum_wt2 * s0 - sum_wt * s1) / det).astype(np.float32)
        v = ((sum_w * s1 - sum_wt * s0) / det).astype(np.float32)
        return _into_pair(b, v, out)

    return wls_fit


@mutation("schedule", "precision", "vsaopt.phase._scalar:powi")
def powi_is_pow(orig: Any) -> Any:
    """decay**k computed with the library pow instead of binary exponentiation."""
    return lambda base, k: float(base) ** k


@mutation("schedule", "order", "vsaopt.phase._scalar:powi")
def powi_left_to_right(orig: Any) -> Any:
    """decay**k as k successive multiplications."""

    def powi(base: float, k: int) -> float:
        r = 1.0
        for _ in range(k):
            r = r * float(base)
        return r

    return powi


def _trend(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def adaptive_trend(recent: list, loss_threshold: float) -> int:
            if rule == "needs_21":
                return 0 if len(recent) <= 20 else orig(recent, loss_threshold)
            if len(recent) < 20:
                return 0
            if rule == "f64_means":
                early, late = float(np.mean(np.array(recent[:10], np.float64))), float(np.mean(np.array(recent[-10:], np.float64)))
                up, down = 1.0 + loss_threshold, 0.95
            else:
                early = F32(sum(F32(v) for v in recent[:10]) / F32(10.0)) if rule != "sum_f64" else F32(sum(float(v) for v in recent[:10]) / 10.0)
                late = F32(sum(F32(v) for v in recent[-10:]) / F32(10.0)) if rule != "sum_f64" else F32(sum(float(v) for v in recent[-10:]) / 10.0)
                up = F32(F32(1.0) + F32(loss_threshold)) if rule != "up_f64" else 1.0 + loss_threshold
                down = F32(0.95) if rule != "down_f64" else 0.95
            if rule in ("up_f64", "down_f64"):
                rise, fall = float(late) > float(early) * float(up), float(late) < float(early) * float(down)
            else:
                rise, fall = late > F32(early * up), late < F32(early * down)
            if rule == "rise_ge":
                rise = late >= F32(early * up)
            if rule == "fall_le":
                fall = late <= F32(early * down)
            return 1 if rise else -1 if fall else 0

        return adaptive_trend

    return make


for _rule, _cls, _doc in (
    ("needs_21", "boundary", "The adaptive rule needs more than 20 losses (> instead of >=)."),
    ("f64_means", "precision", "The early and late means and their comparisons in float64."),
    ("sum_f64", "precision", "The ten losses summed in float64, then rounded."),
    ("up_f64", "precision", "early * (1 + loss_threshold) formed in float64."),
    ("down_f64", "precision", "early * 0.95 formed in float64 (0.95 not rounded to float32)."),
    ("rise_ge", "boundary", "Rising when late >= early * (1 + loss_threshold)."),
    ("fall_le", "boundary", "Falling when late <= early * 0.95."),
):
    _m = _trend(_rule)
    _m.__name__, _m.__doc__ = f"trend_{_rule}", _doc
    mutation("schedule", _cls, "vsaopt.phase._scalar:adaptive_trend")(_m)


@mutation("schedule", "rule", "vsaopt.phase._base:TrainerBase.end_step")
def loss_window_of_99(orig: Any) -> Any:
    """The recent-loss window keeps 99 losses instead of 100."""

    def end_step(self: Any, loss: Any) -> None:
        orig(self, loss)
        if len(self._recent) > 99:
            self._recent.popleft()

    return end_step


def _gate(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def gate_budget(quality: Any, last: Any, samples: int, config: Any, cap: int) -> int:
            if rule == "quality_only":
                return orig(quality, quality, samples, config, cap)
            if rule == "min_samples_gt" and samples == config.min_samples:
                return 0
            if quality is None or last is None or samples < config.min_samples:
                return 0
            q = float(min(quality, last))
            if q <= 0.0:
                return 0
            if q >= 1.0:
                return cap
            safety = float(config.safety) if rule == "safety_f64" else float(F32(config.safety))
            x = q / (safety * (1.0 - q))
            k = math.floor(min(x, 2.0**62)) - (0 if rule == "no_minus_one" else 1)
            if rule == "round":
                k = round(min(x, 2.0**62)) - 1
            return int(max(0, min(cap, k)))

        return gate_budget

    return make


for _rule, _cls, _doc in (
    ("quality_only", "rule", "The gate reads the averaged quality only, not min(quality, last cosine)."),
    ("min_samples_gt", "boundary", "The gate opens only above min_samples measurements (> instead of >=)."),
    ("safety_f64", "precision", "The safety factor used as float64 instead of its float32 rounding."),
    ("no_minus_one", "rule", "k = floor(x) instead of floor(x) - 1."),
    ("round", "rounding", "k = round(x) - 1 instead of floor(x) - 1."),
):
    _m = _gate(_rule)
    _m.__name__, _m.__doc__ = f"gate_{_rule}", _doc
    mutation("schedule", _cls, "vsaopt.phase.telemetry:gate_budget")(_m)


@mutation("schedule", "boundary", "vsaopt.phase.telemetry:spec_cosine")
def cosine_not_clamped(orig: Any) -> Any:
    """The cosine is not clamped to [-1, 1] (rounding can give 1.0000001)."""

    def spec_cosine(dot: float, a: float, b: float) -> Any:
        if not (math.isfinite(dot) and math.isfinite(a) and math.isfinite(b)) or a <= 0 or b <= 0:
            return F32(0.0)
        return F32(dot / (math.sqrt(a) * math.sqrt(b)))

    return spec_cosine


@mutation("schedule", "precision", "vsaopt.phase.telemetry:spec_cosine")
def cosine_one_sqrt(orig: Any) -> Any:
    """|a| |b| computed as sqrt(A * B)."""

    def spec_cosine(dot: float, a: float, b: float) -> Any:
        if not (math.isfinite(dot) and math.isfinite(a) and math.isfinite(b)) or a <= 0 or b <= 0:
            return F32(0.0)
        p = a * b
        if not math.isfinite(p) or p <= 0:
            return F32(0.0)
        return F32(min(1.0, max(-1.0, dot / math.sqrt(p))))

    return spec_cosine


@mutation("schedule", "precision", "vsaopt.phase.telemetry:PredictionMonitor._average")
def ema_weight_in_f64(orig: Any) -> Any:
    """The averages use 1 - decay in float64 (not rounded to float32) and one rounding at the end."""

    def average(self: Any, name: str, x: Any, fresh: bool) -> None:
        old = self._values[name]
        d = float(self._decay)
        self._values[name] = x if old is None or fresh else F32(min(1.0, max(-1.0, d * float(old) + (1.0 - d) * float(x))))

    return average


@mutation("schedule", "rule", "vsaopt.phase.telemetry:PredictionMonitor._average")
def ema_starts_at_zero(orig: Any) -> Any:
    """The averages start from 0 instead of the first value."""

    def average(self: Any, name: str, x: Any, fresh: bool) -> None:
        if self._values[name] is None:
            self._values[name] = F32(0.0)
        orig(self, name, x, fresh)

    return average


@mutation("schedule", "boundary", "vsaopt.phase.phase_trainer:PhaseTrainer._next_phase")
def predict_ends_one_step_late(orig: Any) -> Any:
    """PREDICT ends when its step count passes predict_steps (> instead of >=)."""
    from ...phase.types import TrainingPhase  # noqa: PLC0415

    def next_phase(self: Any) -> Any:
        nxt = orig(self)
        if self._phase is TrainingPhase.PREDICT and nxt is TrainingPhase.FULL and self._phase_step == self._predict_len \
                and self._predict_len > 0:
            return TrainingPhase.PREDICT
        return nxt

    return next_phase


@mutation("schedule", "boundary", "vsaopt.phase.phase_trainer:PhaseTrainer._next_phase",
          equivalent="PREDICT is entered in begin_step and end_step counts that step, so every later begin_step reads a "
                     "PREDICT step count of at least 1: the s > 0 guard never decides")
def correct_checked_at_step_zero(orig: Any) -> Any:
    """A CORRECT step is also due at PREDICT step 0 (the s > 0 guard missing)."""
    from ...phase.types import TrainingPhase  # noqa: PLC0415

    def next_phase(self: Any) -> Any:
        if self._phase is TrainingPhase.PREDICT and self._phase_step == 0:
            return TrainingPhase.CORRECT
        return orig(self)

    return next_phase


@mutation("schedule", "rule", "vsaopt.phase.deterministic_trainer:DeterministicPhaseTrainer._next_phase")
def residual_trigger_ignored(orig: Any) -> Any:
    """The deterministic trainer ignores the predictor's residual and horizon triggers."""
    from ...phase.types import DeterministicPhase  # noqa: PLC0415

    def next_phase(self: Any) -> Any:
        p, s = self._phase, self._phase_step
        if p is DeterministicPhase.PREDICT:
            if s > 0 and s % self.config.correct_every == 0:
                return DeterministicPhase.CORRECT
            return DeterministicPhase.FULL if s >= self._predict_len else p
        return orig(self)

    return next_phase


@mutation("schedule", "boundary", "vsaopt.phase.deterministic_predictor:DeterministicPredictor.needs_correction")
def residual_threshold_inclusive(orig: Any) -> Any:
    """A residual equal to residual_threshold triggers a correction (>= instead of >)."""

    def needs_correction(self: Any) -> bool:
        if self._steps_since_fit >= self.config.prediction_horizon:
            return True
        return F32(self._residual_peak) >= F32(self.config.residual_threshold)

    return needs_correction


@mutation("schedule", "rule", "vsaopt.phase.deterministic_trainer:DeterministicPhaseTrainer._enter")
def cycle_counted_after_warmup(orig: Any) -> Any:
    """Leaving WARMUP for FULL counts a cycle."""
    from ...phase.types import DeterministicPhase  # noqa: PLC0415

    def enter(self: Any, new: Any) -> None:
        old = self._phase
        orig(self, new)
        if new is DeterministicPhase.FULL and old is DeterministicPhase.WARMUP:
            self._cycle += 1

    return enter


@mutation("schedule", "rule", "vsaopt.phase._base:TrainerBase._adapt")
def adapt_without_caps(orig: Any) -> Any:
    """Phase lengths adapted without their maxima (only the minima kept)."""

    def adapt(self: Any) -> None:
        f_up, f_max, p_down, p_min, f_down, f_min, p_up, p_max = self._ADAPT_RULE
        trend = self._trend(self.config.loss_threshold)
        if trend > 0:
            self._full_len = self._full_len + f_up
            self._predict_len = max(self._predict_len - p_down, p_min)
        elif trend < 0:
            self._full_len = max(self._full_len - f_down, f_min)
            self._predict_len = self._predict_len + p_up

    return adapt


# --- dormant measurement (section 11) ---------------------------------------------------------------------------------

@mutation("schedule", "rule", "vsaopt.phase.telemetry:PredictionMonitor._average")
def dormant_sample_keeps_average(orig: Any) -> Any:
    """A dormant sample's measurement averages rho into the stale value instead of restarting it."""

    def average(self: Any, name: str, x: Any, fresh: bool) -> None:
        orig(self, name, x, False)

    return average


def _sampler(rule: str) -> Any:
    def make(orig: Any) -> Any:
        def after_measurement(self: Any, wake: bool) -> None:
            if rule == "zeros_kept_on_wake" and wake and self.after:
                zeros = self.zeros
                orig(self, wake)
                self.zeros = zeros
                return
            if rule == "dormant_one_late" and not wake and self.after and self.zeros + 1 == self.after and self.gap == 0:
                self.zeros = self.after - 1  # needs one more closed measurement
                return
            gap = self.gap
            orig(self, wake)
            if self.gap and not wake:
                if rule == "gap_not_doubled":
                    self.gap = self.left = min(self.after, self.max_gap)
                elif rule == "gap_uncapped":
                    self.gap = self.left = self.after if gap == 0 else 2 * gap
                elif rule == "first_gap_max":
                    self.gap = self.left = self.max_gap if gap == 0 else self.gap
                elif rule == "no_priming":
                    self.prime = 0
                elif rule == "one_prime_short":
                    self.prime = self.primes - 1

        return after_measurement

    return make


for _rule, _cls, _doc in (
    ("zeros_kept_on_wake", "rule", "Opening the gate does not reset the count of closed measurements."),
    ("dormant_one_late", "boundary", "Dormancy starts after dormant_after + 1 closed measurements (> instead of ==)."),
    ("gap_not_doubled", "rule", "The gap stays at dormant_after instead of doubling after each closed sample."),
    ("gap_uncapped", "boundary", "The gap doubles past dormant_max_gap."),
    ("first_gap_max", "rule", "The first gap is dormant_max_gap instead of min(dormant_after, dormant_max_gap)."),
    ("no_priming", "rule", "A sample measures its first record (no priming records refill the history)."),
    ("one_prime_short", "boundary", "A sample primes one record fewer than the prediction reads."),
):
    _m = _sampler(_rule)
    _m.__name__, _m.__doc__ = f"dormant_{_rule}", _doc
    mutation("schedule", _cls, "vsaopt.phase.dormancy:DormantSampler.after_measurement")(_m)


@mutation("schedule", "rule", "vsaopt.phase.telemetry:PredictionMonitor._average")
def dormant_sample_restarts_quality(orig: Any) -> Any:
    """A dormant sample's measurement restarts the gate's quality average too."""

    def average(self: Any, name: str, x: Any, fresh: bool) -> None:
        orig(self, name, x, fresh or (name == "quality" and self.dormancy.gap > 0))

    return average


@mutation("schedule", "rule", "vsaopt.phase.telemetry:PredictionMonitor._wakes")
def dormancy_wakes_only_when_open(orig: Any) -> Any:
    """A dormant gate wakes only when its budget opens (not when the sample's cosine alone would open it)."""

    def wakes(self: Any, budget: int) -> bool:
        return budget > 0

    return wakes


@mutation("schedule", "rule", "vsaopt.phase.phase_trainer:PhaseTrainer.__init__")
def momentum_primes_history_size(orig: Any) -> Any:
    """The momentum predictor's samples prime history_size records instead of min(history_size, 2)."""

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        orig(self, *args, **kwargs)
        self._monitor.dormancy.primes = self.config.prediction_config.history_size

    return init


@mutation("schedule", "rule", "vsaopt.phase.deterministic_trainer:DeterministicPhaseTrainer.__init__")
def least_squares_primes_window(orig: Any) -> Any:
    """The least-squares predictor's samples prime history_window records instead of history_window + 2."""

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        orig(self, *args, **kwargs)
        self._monitor.dormancy.primes = self.config.history_window

    return init


@mutation("schedule", "rule", "vsaopt.phase.telemetry:PredictionMonitor.measure")
def dormancy_counts_unpredicted(orig: Any) -> Any:
    """A measurement without a prediction (warmup, the first record) counts as closed."""

    def measure(self: Any, sums: Any, **kwargs: Any) -> int:
        budget = orig(self, sums, **kwargs)
        if self.config.enabled and sums.dot_predicted is None:
            self.dormancy.after_measurement(budget > 0)
        return budget

    return measure


@mutation("schedule", "rule", "vsaopt.phase.telemetry:PredictionMonitor.prime")
def priming_keeps_previous_norm(orig: Any) -> Any:
    """A priming record does not replace the kept |previous|^2 (the next measurement's A is stale)."""

    def prime(self: Any, real_sumsq: float) -> None:
        self.dormancy.primed()

    return prime
