"""Weighted least-squares gradient prediction (the crate's ``DeterministicPredictor``).

Each record appends the gradient with its global step to a ring of the last
``history_window + 2`` gradients and refits, for every element at once, the
line ``g(t) = baseline + velocity * t`` (``t`` relative to the newest entry)
with weights ``history_decay ** age`` (kernel ``wls_fit``).  A prediction at
global step ``s`` is ``baseline + velocity * (s - fit_step) + residual *
history_decay ** steps_since_fit`` (kernel ``predict_linear``).  A correction
record first folds the error of the current line into the residual (kernel
``residual_update``, or ``residual_stats`` with its statistics).
spec/schedule.md states every operation.

Uncompressed, the ring has one row more than the history: the row the next
record is gathered into (:meth:`DeterministicPredictor.scratch_row`), so a
trainer's real step copies nothing into the history, and the row a record
drops is the next spare.  Fit and residual are updated in place; a
correction's residual update takes, in the same pass, the sums of the
prediction it replaces (kernel ``residual_stats``), which a trainer's
telemetry then need not take where it gathers the gradient.

With ``history_compression`` other than "none" (spec/history.md) the rows are
held encoded, the fit is not held but recomputed from them (in blocks of
:data:`FIT_BLOCK` elements) when a prediction or a correction needs it, and
the residual is held as bfloat16.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._bits import f32_from_bits, sign_cleared_bits
from .._grads import ParamLayout, may_overflow
from ..backend import get_backend, resolve_backend
from ..checkpoint import Checkpointable, Fields
from ..errors import ConfigError, DTypeError, PhaseError
from ._scalar import F32, powi
from .configs import DeterministicPredictionConfig
from .history_codec import EncodedRow, bf16_decode, bf16_encode, decode_block, decode_row, encode_row
from .history_io import export_rows, import_rows
from .types import DeterministicPredictorStats

__all__ = ["DeterministicPredictor"]

#: |det| below which the fit degenerates to baseline = newest, velocity = 0.
DET_EPS = 1e-10
#: Elements per block when a compressed history is decoded for the fit (a multiple of 4).
FIT_BLOCK = 1 << 20
#: Largest factor between a held row's decoded magnitude and the recorded one (a ternary scale rounds up to a
#: power of two; bfloat16 rounds by at most 2**-8).
DECODE_GROWTH = 2.0
#: Why a prediction is refused.
OVERFLOW_REASON = "the prediction overflows float32 (recorded gradients near the float32 limit); use real gradients this step"


def _max_abs(bits: int) -> float:
    """The largest ``|x|`` given the sign-cleared bit maximum of :func:`abs_stats`."""
    return float(f32_from_bits(sign_cleared_bits(bits)))


def _segment_max_abs(x: np.ndarray, offsets: tuple[int, ...], sizes: tuple[int, ...]) -> list[float]:
    """``max |x|`` of each segment of host float32 ``x`` (0 for an empty one) in one pass, on the bit patterns."""
    bits = x.view(np.uint32) & np.uint32(0x7FFFFFFF)
    starts = [off for off, n in zip(offsets, sizes) if n]
    peaks = iter(np.maximum.reduceat(bits, starts).tolist() if starts else [])
    return [_max_abs(next(peaks)) if n else 0.0 for n in sizes]


class DeterministicPredictor(Checkpointable):
    """Closed-form weighted least-squares gradient predictor with residual tracking.

    Parameters
    ----------
    param_shapes : sequence of (name, shape)
    config : DeterministicPredictionConfig
    backend : None, a backend name or a backend object

    Examples
    --------
    >>> import numpy as np
    >>> cfg = DeterministicPredictionConfig(warmup_steps=3)
    >>> p = DeterministicPredictor([("w", (2,))], cfg, backend="numpy")
    >>> for step in range(3):   # g(step) = 1 + 0.5 * step
    ...     p.record_gradient({"w": np.full(2, 1 + 0.5 * step, np.float32)}, is_correction=False)
    >>> p.is_ready(), p.predict_gradient()["w"]
    (True, array([2.5, 2.5], dtype=float32))
    """

    _kind = "DeterministicPredictor"
    _config_cls = DeterministicPredictionConfig

    def __init__(self, param_shapes: Any, config: DeterministicPredictionConfig | None = None, backend: Any = None) -> None:
        if config is None:
            config = DeterministicPredictionConfig()
        if not isinstance(config, DeterministicPredictionConfig):
            raise ConfigError(f"config: expected a DeterministicPredictionConfig, got {type(config).__name__}")
        self._layout = ParamLayout(param_shapes)
        self.config = config
        self._be = resolve_backend(backend)
        self._cap = config.history_window + 2
        self._compression = config.history_compression
        xp = self._be.xp
        self._ring: Any = None
        if self._compression == "none":  # the history's rows and the next record's
            self._ring = xp.zeros((self._cap + 1, self.layout.total), dtype=xp.float32)
        self._decay32 = F32(config.history_decay)
        #: Segment bounds of the parameters in the flat vector (kernel ``residual_stats``).
        self._bounds = np.array([*self.layout.offsets, self.layout.total], dtype=np.int64)
        self._reset_state()

    def _reset_state(self) -> None:
        xp = self._be.xp
        self._steps: list[int] = []  # global steps of the history entries, oldest first
        self._slots: list[int] = []  # their ring rows
        self._free = 0  # the ring row the next record is written into
        self._row_max = [0.0] * (self._cap + 1)  # a bound on each ring row's decoded max |g|
        self._fit_max = (0.0, 0.0)  # bounds on max |baseline| and max |velocity| of the current fit
        self._scratch: Any = None  # the view of it scratch_row handed out
        if self._compression != "none":
            self._ring = [None] * (self._cap + 1)  # held rows (EncodedRow), by ring row
        self._recorded = 0
        self._global_step = 0
        self._steps_since_fit = 0
        self._ready = False
        self._baseline: Any = None
        self._velocity: Any = None
        self._fit_pending = False  # the held baseline and velocity are not yet computed for the current fit
        self._fit_step = 0
        self._fitted = False
        self._residual = xp.zeros(self.layout.total, dtype=xp.float32 if self._compression == "none" else xp.uint16)
        self._set_residual_max([0.0] * len(self.layout.names))
        self._total_steps = 0
        self._full_steps = 0
        self._predicted_steps = 0
        self._mean_abs_error = F32(0.0)
        self._early_corrections = 0

    @property
    def backend(self) -> Any:
        """The resolved backend."""
        return self._be

    @property
    def layout(self) -> ParamLayout:
        """The declared parameters: names, shapes, sizes and flat offsets."""
        return self._layout

    @property
    def global_step(self) -> int:
        """Records plus predictions so far (the step the next call is at)."""
        return self._global_step

    @property
    def steps_since_fit(self) -> int:
        """Predictions since the last record."""
        return self._steps_since_fit

    def is_ready(self) -> bool:
        """Whether warmup is over (``warmup_steps`` gradients recorded)."""
        return self._ready

    def in_warmup(self) -> bool:
        """Whether predictions are still refused."""
        return not self._ready

    def needs_correction(self) -> bool:
        """True once ``prediction_horizon`` predictions followed the last fit, or when any ``|residual|`` element exceeds ``residual_threshold``."""
        if self._steps_since_fit >= self.config.prediction_horizon:
            return True
        return F32(self._residual_peak) > F32(self.config.residual_threshold)

    def _set_residual_max(self, maxes: list[float]) -> None:
        """Hold each parameter's ``max |residual|``, their largest (NaN left out) and a bound (Inf when one is NaN)."""
        self._residual_max = maxes
        finite_or_inf = [m for m in maxes if not math.isnan(m)]
        self._residual_peak = max(finite_or_inf, default=0.0)
        self._residual_bound = self._residual_peak if len(finite_or_inf) == len(maxes) else math.inf

    # --- records ---------------------------------------------------------------

    def record_gradient(self, gradients: Any, is_correction: bool = False) -> None:
        """Record real gradients (every declared name); refit; on a correction first update the residual."""
        if not isinstance(is_correction, bool):
            raise DTypeError(f"is_correction: expected True or False, got {is_correction!r}")
        flat, max_abs = self.layout.flatten_bounded(gradients, self._be, "gradients")
        self.record_flat(flat, is_correction, max_abs=max_abs)

    def scratch_row(self) -> Any:
        """A flat float32 array to gather the next record into.

        Uncompressed, the ring row the next record takes (a view that
        :meth:`record_flat` keeps without a copy; it holds no history until
        then); with ``history_compression`` a new array, encoded by the record.
        """
        if self._compression != "none":
            return self._be.xp.empty(self.layout.total, dtype=self._be.xp.float32)
        self._scratch = self._ring[self._free]
        return self._scratch

    def record_measures_prediction(self, is_correction: bool) -> bool:
        """Whether :meth:`record_flat` with this ``is_correction`` returns the sums of the prediction it replaces.

        True for a correction of a ready predictor with an uncompressed history:
        the residual update reads the prediction's operands and takes
        ``S(g*pred)`` and ``S(pred*pred)`` in its pass (kernel ``residual_stats``).
        """
        return is_correction and self._ready and self._compression == "none"

    def record_flat(self, flat: Any, is_correction: bool = False, *, max_abs: float | None = None) -> tuple[float, float] | None:
        """Record one validated flat float32 gradient (declaration order); for callers that flattened it already.

        Returns ``(S(g*pred), S(pred*pred))`` of the prediction at this step
        (that of :meth:`peek_flat` before the call) when
        :meth:`record_measures_prediction` says so, else None.  ``max_abs``: a
        bound on its largest ``|element|`` the caller knows (else one
        ``abs_stats`` pass takes it), from which predictions are known not to overflow.
        """
        if max_abs is None:
            max_abs = float(f32_from_bits(int(self._be.abs_stats(flat)[1])))
        lazy = self._compression != "none"
        if is_correction:
            self._settle_fit()  # the residual update reads the line through the history before this record
        self._row_max[self._free] = DECODE_GROWTH * max_abs if lazy else max_abs
        if lazy and self._ready and is_correction:
            self._update_residual(flat)  # the line of the history before this record
        if lazy:
            self._ring[self._free] = encode_row(flat, self._global_step, self._compression, self._be)
        elif flat is not self._scratch:  # gathered elsewhere: copied into the ring
            self._ring[self._free] = flat
        self._push()
        self._recorded += 1
        self._total_steps += 1
        self._full_steps += 1
        sums = None
        if not self._ready:
            if self._recorded >= self.config.warmup_steps:
                self._ready = True
                self._fit()
        else:
            if is_correction:
                if self._steps_since_fit < self.config.prediction_horizon:
                    self._early_corrections += 1
                if not lazy:
                    sums = self._update_residual(flat)
            self._fit()
        self._global_step += 1
        self._steps_since_fit = 0
        return sums

    def _push(self) -> None:
        """Append the row just written at ``_free`` to the history; the dropped oldest row (or an unused one) is next."""
        self._scratch = None
        self._slots.append(self._free)
        self._steps.append(self._global_step)
        if len(self._steps) <= self._cap:
            self._free = len(self._slots)  # rows fill in order until the ring is full
            return
        del self._steps[0]
        self._free = self._slots.pop(0)
        if self._compression != "none":
            self._ring[self._free] = None

    def _residual_f32(self) -> Any:
        """The residual as float32 (decoded from bfloat16 under compression)."""
        return self._residual if self._compression == "none" else bf16_decode(self._residual, self._be)

    def _update_residual(self, actual: Any) -> tuple[float, float] | None:
        """Fold the error of the current line into the residual; uncompressed, returns the prediction's sums (kernel ``residual_stats``)."""
        be = self._be
        baseline, velocity, residual, dt, wres = self._linear_operands()
        one_minus = F32(1.0 - float(self._decay32))
        sums = None
        if self._compression == "none":  # in place, in one pass with every statistic
            dot_pred, sumsq_pred, totals, bits = be.residual_stats(self._residual, actual, baseline, velocity, dt, wres,
                                                                   self._decay32, one_minus, self._bounds)
            sums = (dot_pred, sumsq_pred)
            maxes = [_max_abs(int(b)) for b in bits]
        else:  # held as bfloat16; the maxima are those of the held values
            new_res, err = be.residual_update(residual, actual, baseline, velocity, dt, self._decay32, one_minus)
            held = bf16_encode(new_res, be)
            new_res = bf16_decode(held, be)
            segments = list(zip(self.layout.offsets, self.layout.sizes))
            totals = [be.abs_stats(err[off : off + n])[0] for off, n in segments]
            maxes = [_max_abs(be.abs_stats(new_res[off : off + n])[1]) for off, n in segments]
            self._residual = held
        mae = self._mean_abs_error
        for total, n in zip(totals, self.layout.sizes):
            if n:  # a parameter without elements has no mean error
                mae = F32(F32(F32(0.9) * mae) + F32(F32(0.1) * F32(float(total) / n)))
        self._set_residual_max(maxes)
        self._mean_abs_error = mae
        return sums

    def _held_max(self, row: Any) -> float:
        """The largest ``|value|`` of a held ring row (a float32 row, or an encoded one, decoded)."""
        flat = decode_row(row, self._be) if isinstance(row, EncodedRow) else row
        return _max_abs(int(self._be.abs_stats(flat)[1]))

    def _line(self) -> tuple[Any, Any]:
        """``(baseline, velocity)`` of the current fit: held, or recomputed from a compressed history."""
        if self._compression == "none":
            self._settle_fit()
            return self._baseline, self._velocity
        return self._compute_fit()

    def _settle_fit(self) -> None:
        """Compute the held baseline and velocity of the current fit if they are pending (an uncompressed history).

        A fit's arrays are computed when first read, from the history it was
        fitted to: every record refits, and until a record that reads the old
        line (a correction, :meth:`record_flat`) the history does not change.
        Records that only refill the history (a dormant sample's) therefore
        cost no pass over it.
        """
        if self._fit_pending:
            self._compute_fit((self._baseline, self._velocity))
            self._fit_pending = False

    def _weights(self, steps: list[int] | None = None, slots: list[int] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float, float]:
        """Ring rows (oldest first), ``w_i``, ``w_i*t_i`` and the three float64 sums (of the history, or of ``steps`` in ``slots``)."""
        steps = self._steps if steps is None else steps
        slots = self._slots if slots is None else slots
        k = len(steps)
        newest = steps[-1]
        rows = np.array(slots, dtype=np.int64)
        d = float(self._decay32)
        w = np.empty(k, dtype=np.float64)
        wt = np.empty(k, dtype=np.float64)
        sum_w = sum_wt = sum_wt2 = 0.0
        for i in range(k):
            wi = powi(d, k - 1 - i)
            ti = float(steps[i] - newest)
            w[i] = wi
            wt[i] = wi * ti
            sum_w = sum_w + wi
            sum_wt = sum_wt + wi * ti
            sum_wt2 = sum_wt2 + (wi * ti) * ti
        return rows, w, wt, sum_w, sum_wt, sum_wt2

    def _fit(self) -> None:
        """Fit the line through the history now: its bounds at once, the held arrays (uncompressed) when first read (:meth:`_settle_fit`)."""
        if self._compression == "none":
            if self._baseline is None:  # the held arrays, allocated once
                xp, n = self._be.xp, self.layout.total
                self._baseline, self._velocity = xp.empty(n, dtype=xp.float32), xp.empty(n, dtype=xp.float32)
            self._fit_pending = True
        self._fitted = True
        self._fit_step = self._global_step
        self._fit_max = self._fit_bounds(self._steps, self._slots, self._row_max)

    def _fit_bounds(self, steps: list[int], slots: list[int], row_max: list[float]) -> tuple[float, float]:
        """Bounds on ``max |baseline|`` and ``max |velocity|`` of the fit through the history now (no pass over it).

        The fit is linear in the rows: ``baseline = sum_i c_i g_i`` and
        ``velocity = sum_i d_i g_i`` with the coefficients of ``wls_fit``, so
        ``sum_i |c_i| * max_i |g_i|`` bounds the first (float64 roundings are far
        inside the margin of :data:`~vsaopt._grads.SAFE_MAGNITUDE`).
        """
        rows, w, wt, sw, swt, swt2 = self._weights(steps, slots)
        largest = max(row_max[int(r)] for r in rows)
        det = sw * swt2 - swt * swt
        if abs(det) < DET_EPS:
            return row_max[int(rows[-1])], 0.0
        abs_wt = float(np.abs(wt).sum())
        inv = abs(1.0 / det)
        return ((abs(swt2) * sw + abs(swt) * abs_wt) * inv * largest, (abs(sw) * abs_wt + abs(swt) * sw) * inv * largest)

    def _compute_fit(self, out: tuple[Any, Any] | None = None) -> tuple[Any, Any]:
        """The least-squares line through the history now (float32 baseline and velocity; into ``out`` when given)."""
        rows, w, wt, sw, swt, swt2 = self._weights()
        det = sw * swt2 - swt * swt
        xp, n = self._be.xp, self.layout.total
        if abs(det) < DET_EPS:
            newest = self._ring[int(rows[-1])]
            if self._compression != "none":
                newest = decode_row(newest, self._be)
            if out is None:
                return newest.copy(), xp.zeros(n, dtype=xp.float32)
            out[0][...] = newest
            out[1].fill(0)
            return out
        args = (xp.asarray(w), xp.asarray(wt), sw, swt, swt2, 1.0 / det)
        if self._compression == "none":
            return self._be.wls_fit(self._ring, xp.asarray(rows), *args, out=out)  # type: ignore[no-any-return]
        held = [self._ring[int(r)] for r in rows]
        order = xp.arange(len(held), dtype=xp.int64)
        baseline = xp.empty(n, dtype=xp.float32)
        velocity = xp.empty(n, dtype=xp.float32)
        for lo in range(0, n, FIT_BLOCK):  # the fit is per element: blocks give the same bytes
            hi = min(lo + FIT_BLOCK, n)
            baseline[lo:hi], velocity[lo:hi] = self._be.wls_fit(decode_block(held, lo, hi, self._be), order, *args)
        return baseline, velocity

    # --- predictions -------------------------------------------------------------

    def _linear_operands(self) -> tuple[Any, Any, Any, np.float32, np.float32]:
        """``(baseline, velocity, residual, dt, w)`` of the prediction at the current step (kernel ``predict_linear``)."""
        dt = F32(self._global_step - self._fit_step)
        wres = F32(powi(float(self._decay32), self._steps_since_fit))
        baseline, velocity = self._line()
        return baseline, velocity, self._residual_f32(), dt, wres

    def _predict_flat(self, out: Any = None) -> Any:
        """The prediction at the current step, into ``out`` when given (else a new array)."""
        if out is None:
            return self._be.predict_linear(*self._linear_operands())
        return self._be.predict_linear(*self._linear_operands(), out=out)

    def _prediction_bound(self) -> float:
        """A bound on every value the prediction's float32 operations take (``predict_linear``'s operands' bounds)."""
        base, vel = self._fit_max
        dt = float(self._global_step - self._fit_step)
        wres = float(powi(float(self._decay32), self._steps_since_fit))
        return base + vel * abs(dt) + self._residual_bound * abs(wres)

    def _checked_prediction(self, out: Any = None) -> Any:
        """:meth:`_predict_flat`, refused with :class:`NonFiniteError` naming the parameter when it overflowed.

        When the bounds of the fit and the residual do not rule an overflow out,
        the prediction goes to a new array first and one ``abs_stats`` pass
        checks it, so a refused prediction writes nothing into ``out``.
        """
        if not may_overflow(self._prediction_bound()):
            return self._predict_flat(out)
        flat = self._predict_flat()
        self.layout.check_finite(flat, self._be, "predicted gradients", OVERFLOW_REASON)
        if out is None:
            return flat
        out[...] = flat
        return out

    def peek_flat(self) -> Any | None:
        """The flat prediction :meth:`predict_gradient` would return now, without counting a step (None during warmup).

        Raises
        ------
        NonFiniteError
            The prediction overflows float32 (names the parameter).
        """
        return self._checked_prediction() if self._ready else None

    def prediction_operand(self) -> tuple[Any, Any, Any, np.float32, np.float32] | None:
        """What :meth:`peek_flat` computes, unevaluated: the ``predict_linear`` operands (None during warmup).

        The ``pred`` operand of kernel ``gather_stats``, which computes the
        prediction in its own pass instead of reading a materialized one.
        """
        return self._linear_operands() if self._ready else None

    @property
    def prediction_is_newest(self) -> bool:
        """Always False: the prediction is the fit's extrapolation."""
        return False

    def newest_flat(self) -> Any | None:
        """The newest recorded flat gradient (None before the first record).

        Uncompressed, a view of the history: read it, do not write it.  With
        ``history_compression`` a decoded float32 copy of the held row.
        """
        if not self._steps:
            return None
        newest = self._ring[self._slots[-1]]
        return newest if self._compression == "none" else decode_row(newest, self._be)

    def _predict_counted(self, what: str, out: Any = None) -> Any:
        """The flat prediction at the current step (into ``out``, else a new array); counts a predicted step."""
        if not self._ready:
            raise PhaseError(f"{what}: cannot predict during warmup (record more gradients first)")
        flat = self._checked_prediction(out)
        self._total_steps += 1
        self._predicted_steps += 1
        self._global_step += 1
        self._steps_since_fit += 1
        return flat

    def predict_gradient(self) -> dict[str, Any]:
        """Predicted gradients at the current global step (new arrays, declared shapes); counts a step.

        Raises
        ------
        PhaseError
            During warmup.
        NonFiniteError
            The prediction overflows float32 (names the parameter); nothing is changed.
        """
        return self.layout.split(self._predict_counted("predict_gradient"))

    def predict_into(self, out: Any) -> None:
        """Write the prediction :meth:`predict_gradient` would return into ``out`` (flat float32, ``layout.total``); counts a step.

        Raises
        ------
        PhaseError
            During warmup.
        NonFiniteError
            The prediction overflows float32 (names the parameter); neither ``out`` nor the predictor is changed.
        """
        self._predict_counted("predict_into", out)  # the kernel writes into out: one pass

    def get_stats(self) -> DeterministicPredictorStats:
        """Counters, error average and the current largest ``|residual|``."""
        return DeterministicPredictorStats(
            self._total_steps,
            self._full_steps,
            self._predicted_steps,
            float(self._mean_abs_error),
            max(self._residual_max),
            self._early_corrections,
            self.state_bytes,
            self.state_bytes / self.layout.total if self.layout.total else 0.0,
        )

    @property
    def state_bytes(self) -> int:
        """Bytes of state held now: the ring (uncompressed, its spare row included) or the held rows, the fit (held only without compression) and the residual."""
        if self._compression == "none":
            total = int(self._ring.nbytes)
        else:
            total = sum(r.nbytes for r in self._ring if r is not None)
        held = [self._residual, self._baseline, self._velocity]
        return total + sum(int(a.nbytes) for a in held if a is not None)

    def reset(self) -> None:
        """Forget history, fit, residuals and counters."""
        self._reset_state()

    # --- state -----------------------------------------------------------------

    def export_state(self) -> tuple[dict, dict]:
        """``(header, arrays)`` of the full state; arrays are host copies."""
        be, n, comp = self._be, self.layout.total, self._compression
        slots = [self._ring[s] for s in self._slots]
        self._settle_fit()
        if comp == "none":
            rows = [be.to_host(r) for r in slots]
            hist = {"history": np.stack(rows) if rows else np.zeros((0, n), np.float32)}
        else:
            hist = export_rows(slots, "history", comp, n, be)
        header = {
            "steps": list(self._steps),
            "recorded": self._recorded,
            "global_step": self._global_step,
            "steps_since_fit": self._steps_since_fit,
            "ready": self._ready,
            "fitted": self._fitted,
            "fit_step": self._fit_step,
            "total_steps": self._total_steps,
            "full_steps": self._full_steps,
            "predicted_steps": self._predicted_steps,
            "early_corrections": self._early_corrections,
        }
        arrays = {
            **hist,
            "residual": be.to_host(self._residual),
            "mean_abs_error": np.array(self._mean_abs_error, dtype=np.float32),
        }
        if self._baseline is not None:
            arrays["baseline"] = be.to_host(self._baseline)
            arrays["velocity"] = be.to_host(self._velocity)
        return header, arrays

    def import_state(self, f: Fields) -> Callable[[], None]:
        """Validate a state of :meth:`export_state`; the returned function installs it.

        The history must be finite (recorded gradients are); the fit and the
        residual are computed from it and may have overflowed float32.
        """
        n, cap, comp = self.layout.total, self._cap, self._compression
        total = f.integer("total_steps")
        global_step = f.integer("global_step")
        full, predicted = f.integer("full_steps", 0, total), f.integer("predicted_steps", 0, total)
        recorded = f.integer("recorded", full, full)
        steps = f.integer_list("steps", cap, 0, max(global_step - 1, 0))
        ssf = f.integer("steps_since_fit", 0, predicted)
        fit_step = f.integer("fit_step", 0, global_step)
        early = f.integer("early_corrections", 0, full)
        ready, fitted = f.boolean("ready"), f.boolean("fitted")
        if comp == "none":
            hist: Any = f.array("history", np.float32, (len(steps), n))
            residual = f.array("residual", np.float32, (n,), finite=False)
        else:
            hist = import_rows(f, "history", comp, n, cap, self._be)
            f.require(len(hist) == len(steps), "history rows and steps differ in number")
            residual = f.array("residual", np.uint16, (n,))
        mae = f.array("mean_abs_error", np.float32, (), finite=False)
        held_fit = fitted and comp == "none"  # a compressed history's fit is recomputed, not saved
        base = f.array("baseline", np.float32, (n,), finite=False) if held_fit else None
        vel = f.array("velocity", np.float32, (n,), finite=False) if held_fit else None
        f.require(all(a < b for a, b in zip(steps, steps[1:])), "history steps must increase")
        f.require(fitted == ready, "a fit exists exactly when the predictor is ready")
        f.require(full + predicted == total and global_step == total, "step counters disagree")
        f.require(len(steps) <= recorded, "more history rows than records")
        f.require(held_fit or not (f.has("baseline") or f.has("velocity")), "fit arrays without a held fit")
        xp, be = self._be.xp, self._be
        if comp == "none":
            ring = xp.zeros_like(self._ring)
            if steps:
                ring[: len(steps)] = xp.asarray(hist)
        else:
            ring = [*hist, *([None] * (cap + 1 - len(hist)))]
        res = xp.asarray(residual)
        host32 = residual if comp == "none" else bf16_decode(residual, get_backend("numpy"))
        maxes = _segment_max_abs(host32, self.layout.offsets, self.layout.sizes)
        row_max = [self._held_max(ring[i]) for i in range(len(steps))] + [0.0] * (cap + 1 - len(steps))
        if not fitted:
            fit_max = (0.0, 0.0)
        elif held_fit:
            fit_max = (_max_abs(int(be.abs_stats(xp.asarray(base))[1])), _max_abs(int(be.abs_stats(xp.asarray(vel))[1])))
        else:
            fit_max = self._fit_bounds(steps, list(range(len(steps))), row_max)

        def install() -> None:
            self._ring = ring
            self._steps = steps
            self._slots, self._free, self._scratch = list(range(len(steps))), len(steps), None
            self._recorded, self._global_step, self._steps_since_fit = recorded, global_step, ssf
            self._ready, self._fit_step, self._fitted = ready, fit_step, fitted
            self._total_steps, self._full_steps, self._predicted_steps = total, full, predicted
            self._early_corrections = early
            self._mean_abs_error = np.float32(mae)
            self._residual = res
            self._set_residual_max(maxes)
            self._row_max, self._fit_max = row_max, fit_max
            self._baseline = None if base is None else xp.asarray(base)
            self._velocity = None if vel is None else xp.asarray(vel)
            self._fit_pending = False

        return install
