"""Momentum gradient prediction (the crate's ``GradientPredictor``).

History: the last ``history_size`` recorded gradients, in one ring buffer of
shape ``(history_size, total elements)``.  Prediction: ``g[-1] + momentum *
(g[-1] - g[-2])`` (kernel ``momentum_extrapolate``); with one entry ``g[-1]``;
with none, zeros.  Corrections (``actual - last prediction``) accumulate until
:meth:`GradientPredictor.apply_correction` adds ``correction_weight`` times
them to a gradient.

With ``history_compression`` other than "none" (spec/history.md) the rows are
held encoded and decoded when read, and the last prediction is held as the
rows it was computed from, not as a float32 array.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from .._bits import f32_from_bits
from .._arrays import check_finite_bits
from .._grads import FlatGradients, GradientInfo, ParamLayout, may_overflow
from ..backend import resolve_backend
from ..checkpoint import Checkpointable, Fields
from ..errors import ConfigError, DTypeError
from ._scalar import F32, sum_f32
from .configs import PredictionConfig
from .history_codec import EncodedRow, decode_row, encode_row
from .history_io import export_rows, import_rows
from .types import MomentumPredictorStats

__all__ = ["GradientPredictor"]

#: Prediction errors kept (one per parameter per correction), as in the crate.
MAX_ERRORS = 100
#: Errors averaged by :meth:`GradientPredictor.should_compute_full`.
RECENT_ERRORS = 10
#: Mean recent error above which a full gradient is asked for.
ERROR_LIMIT = F32(0.5)
#: Largest factor between a held row's decoded magnitude and the recorded one (a ternary scale rounds up to a
#: power of two; bfloat16 rounds by at most 2**-8).
DECODE_GROWTH = 2.0
#: Why a prediction is refused.
OVERFLOW_REASON = "the prediction overflows float32 (recorded gradients near the float32 limit); use real gradients this step"
#: Why a correction is refused.
CORRECTION_OVERFLOW = "adding the correction overflows float32; the correction stays pending"


class GradientPredictor(Checkpointable):
    """Predicts gradients by momentum extrapolation of the recorded history.

    Parameters
    ----------
    param_shapes : sequence of (name, shape)
    config : PredictionConfig
    backend : None, a backend name or a backend object
        Where arrays live and which kernels run (see :func:`vsaopt.backend.resolve_backend`).

    Examples
    --------
    >>> import numpy as np
    >>> p = GradientPredictor([("w", (2,))], PredictionConfig(momentum=0.5), backend="numpy")
    >>> p.record_gradient({"w": np.array([1.0, 2.0], np.float32)})
    >>> p.record_gradient({"w": np.array([2.0, 2.0], np.float32)})
    >>> p.should_compute_full()
    False
    >>> p.predict_gradient()["w"]
    array([2.5, 2. ], dtype=float32)
    """

    _kind = "GradientPredictor"
    _config_cls = PredictionConfig

    def __init__(self, param_shapes: Any, config: PredictionConfig | None = None, backend: Any = None) -> None:
        if config is None:
            config = PredictionConfig()
        if not isinstance(config, PredictionConfig):
            raise ConfigError(f"config: expected a PredictionConfig, got {type(config).__name__}")
        self._layout = ParamLayout(param_shapes)
        self.config = config
        self._be = resolve_backend(backend)
        self._compression = config.history_compression
        self._reset_state()

    def _reset_state(self) -> None:
        self._ring: list[EncodedRow | None] = [None] * self.config.history_size  # held rows, by ring slot
        self._row_max = [0.0] * self.config.history_size  # a bound on each held row's decoded max |g|, by ring slot
        self._count = 0  # entries in the ring (<= history_size)
        self._head = 0  # ring row of the next record
        self._steps_since_full = 0
        self._total_steps = 0
        self._last_prediction: Any = None  # float32 array ("none") or the tuple of rows it extrapolates
        self._correction: Any = None
        self._correction_max = 0.0  # a bound on max |correction| (Inf or NaN when it overflowed)
        self._errors: deque[np.float32] = deque(maxlen=MAX_ERRORS)
        self._spare: Any = None  # a float32 row no longer used (uncompressed history): the next record's buffer
        self._recycle = False  # whether dropped rows are kept as the spare (once scratch_row was asked for)

    @property
    def backend(self) -> Any:
        """The resolved backend."""
        return self._be

    @property
    def layout(self) -> ParamLayout:
        """The declared parameters: names, shapes, sizes and flat offsets."""
        return self._layout

    @property
    def total_steps(self) -> int:
        """Records plus predictions so far."""
        return self._total_steps

    def _held(self, age: int) -> EncodedRow:
        """Held row of the entry ``age`` records back (0 = newest)."""
        row = self._ring[(self._head - 1 - age) % self.config.history_size]
        assert row is not None
        return row

    def _held_max(self, row: EncodedRow) -> float:
        """The largest ``|value|`` of a held row, decoded."""
        return float(f32_from_bits(int(self._be.abs_stats(decode_row(row, self._be))[1])))

    def _row(self, age: int) -> Any:
        """float32 row of the entry ``age`` records back (0 = newest; uncompressed: the held array itself)."""
        return decode_row(self._held(age), self._be)

    def should_compute_full(self) -> bool:
        """Whether the next step needs a real gradient.

        True with fewer than 2 gradients in history, after ``prediction_steps``
        predictions since the last record, or when the float32 mean of the last 10
        prediction errors (summed newest first) exceeds 0.5.
        """
        if self._count < 2:
            return True
        if self._steps_since_full >= self.config.prediction_steps:
            return True
        if len(self._errors) >= RECENT_ERRORS:
            recent = F32(sum_f32(self._errors[-1 - i] for i in range(RECENT_ERRORS)) / F32(RECENT_ERRORS))
            if recent > ERROR_LIMIT:
                return True
        return False

    @property
    def has_prediction(self) -> bool:
        """Whether a prediction was made since construction or :meth:`reset` (corrections compare against it)."""
        return self._last_prediction is not None

    def record_gradient(self, gradients: Any) -> None:
        """Append real gradients (mapping name -> array, every declared name) to the history."""
        flat, max_abs = self.layout.flatten_bounded(gradients, self._be, "gradients")
        self.record_flat(flat, owned=not isinstance(gradients, FlatGradients), max_abs=max_abs)

    def record_flat(self, flat: Any, correct: bool = False, *, owned: bool = False, max_abs: float | None = None) -> None:
        """Append one validated flat float32 gradient (declaration order) to the history.

        With ``correct`` and a prediction made, the correction ``flat - last
        prediction`` is accumulated too (as :meth:`compute_correction`).  For
        callers that validated and flattened the gradients already (the trainer);
        ``owned``: ``flat`` is a new array the caller gives up (kept without a copy);
        ``max_abs``: a bound on its largest ``|element|`` the caller knows (else one
        ``abs_stats`` pass takes it), from which predictions are known not to overflow.
        """
        if max_abs is None:
            max_abs = float(f32_from_bits(int(self._be.abs_stats(flat)[1])))
        slot = self._head
        self._push(flat, owned)
        self._row_max[slot] = max_abs if self._compression == "none" else DECODE_GROWTH * max_abs
        if correct and self._last_prediction is not None:
            self._correct(flat)

    def scratch_row(self) -> Any:
        """A writeable flat float32 array to gather the next record into (then recorded with ``owned=True``).

        With an uncompressed history, a row this predictor dropped (evicted and
        not the last prediction) when it has one, so that a record allocates no
        memory; else a new array.  Writing it changes nothing the predictor uses.
        From the first call on, the predictor keeps one dropped row for this
        (counted in :attr:`state_bytes`), when it then holds at most
        ``history_size + 1`` rows in all (its most without the spare).
        """
        self._recycle = self._compression == "none"
        if self._spare is not None:
            return self._spare
        return self._be.xp.empty(self.layout.total, dtype=self._be.xp.float32)

    def _release(self, arr: Any) -> None:
        """Keep ``arr``, a float32 array just dropped, as the spare row when nothing held refers to it."""
        if not self._recycle or arr is None or isinstance(arr, tuple) or arr is self._last_prediction:
            return
        held = [r.data for r in self._ring if r is not None]
        if any(a is arr for a in held):
            return
        if self._last_prediction is not None and not any(a is self._last_prediction for a in held):
            return  # a history row and the last prediction outside it: a spare would exceed history_size + 1 rows
        self._spare = arr

    def _push(self, flat: Any, owned: bool = False) -> None:
        if flat is self._spare:
            self._spare = None
        evicted = self._ring[self._head]
        self._ring[self._head] = encode_row(flat, self._total_steps, self._compression, self._be, owned=owned)
        if evicted is not None:
            self._release(evicted.data)
        self._head = (self._head + 1) % self.config.history_size
        self._count = min(self._count + 1, self.config.history_size)
        self._steps_since_full = 0
        self._total_steps += 1

    def _predict_flat(self) -> Any:
        xp = self._be.xp
        if self._count == 0:
            return xp.zeros(self.layout.total, dtype=xp.float32)
        return self._extrapolate(tuple(self._held(age) for age in range(min(self._count, 2))))

    def _prediction_bound(self) -> float:
        """A bound on every value the prediction's float32 operations take (from the held rows' bounds)."""
        if self._count < 2:
            return 0.0  # zeros, or the newest held row itself (finite)
        cap = self.config.history_size
        curr, prev = self._row_max[(self._head - 1) % cap], self._row_max[(self._head - 2) % cap]
        diff = curr + prev
        return max(diff, curr + abs(float(self.config.momentum)) * diff)

    def _checked_prediction(self) -> Any:
        """:meth:`_predict_flat`, refused with :class:`NonFiniteError` naming the parameter when it overflowed.

        The check is one ``abs_stats`` pass, made only when the held rows' bounds
        do not rule an overflow out (gradients near the float32 limit).
        """
        flat = self._predict_flat()
        if may_overflow(self._prediction_bound()):
            self.layout.check_finite(flat, self._be, "predicted gradients", OVERFLOW_REASON)
        return flat

    def _extrapolate(self, rows: tuple[EncodedRow, ...]) -> Any:
        """The prediction from the newest row ``rows[0]`` and, when given, the one before it ``rows[1]``."""
        if len(rows) == 1:
            return decode_row(rows[0], self._be)  # held rows are replaced, never written: no copy
        prev, curr = decode_row(rows[1], self._be), decode_row(rows[0], self._be)
        return self._be.momentum_extrapolate(prev, curr, F32(self.config.momentum))

    def _prediction(self) -> Any:
        """The last prediction as a float32 array (None when none was made)."""
        if isinstance(self._last_prediction, tuple):
            return self._extrapolate(self._last_prediction)
        return self._last_prediction

    def peek_flat(self) -> Any | None:
        """The flat prediction :meth:`predict_gradient` would return now, without counting a step (None with no history).

        The array may share memory with the history: read it, do not write it,
        and do not keep it past the next record (whose buffer it may become).

        Raises
        ------
        NonFiniteError
            The prediction overflows float32 (names the parameter).
        """
        if self._count == 0:
            return None
        return self._row(0) if self._count == 1 else self._checked_prediction()

    def prediction_operand(self) -> Any | None:
        """:meth:`peek_flat` unchecked (it may hold Inf), as the ``pred`` operand of kernel ``gather_stats``."""
        if self._count == 0:
            return None
        return self._row(0) if self._count == 1 else self._predict_flat()

    @property
    def has_pending_correction(self) -> bool:
        """Whether corrections are accumulated and not applied yet (:meth:`apply_correction` would change something)."""
        return self._correction is not None

    @property
    def prediction_is_newest(self) -> bool:
        """Whether the prediction is the newest recorded gradient itself (one entry in history)."""
        return self._count == 1

    def record_measures_prediction(self, correct: bool) -> bool:
        """Always False: a record never reads the prediction, so its sums are taken where the gradient is gathered."""
        return False

    def newest_flat(self) -> Any | None:
        """The newest recorded flat gradient (None with no history).

        Uncompressed, a view of the history: read it, do not write it, and do
        not keep it past the next record (whose buffer it may become).  With
        ``history_compression`` a decoded float32 copy of the held row.
        """
        return self._row(0) if self._count else None

    def _predict_counted(self) -> Any:
        """The flat prediction (read it, do not write it), kept for corrections; counts a predicted step.

        An overflowed prediction raises :class:`NonFiniteError` before anything changes.
        """
        flat = self._checked_prediction()
        dropped = self._last_prediction
        if self._compression == "none" or self._count == 0:
            self._last_prediction = flat
        else:  # the rows it came from: kept alive by this reference, a fraction of a float32 row
            self._last_prediction = tuple(self._held(age) for age in range(min(self._count, 2)))
        if self._count:  # (a prediction from empty history is zeros of no row)
            self._release(dropped)
        self._steps_since_full += 1
        self._total_steps += 1
        return flat

    def predict_gradient(self) -> dict[str, Any]:
        """Predicted gradients (new arrays of the backend, declared shapes); counts a predicted step.

        Raises
        ------
        NonFiniteError
            The prediction overflows float32 (names the parameter); nothing is changed.
        """
        return self.layout.split(self._predict_counted().copy())

    def predict_into(self, out: Any) -> None:
        """Write the prediction :meth:`predict_gradient` would return into ``out`` and count a predicted step.

        ``out``: a writeable flat float32 array of the backend with ``layout.total``
        elements (checked by the caller, e.g. the trainer); one copy, no mapping.

        Raises
        ------
        NonFiniteError
            The prediction overflows float32 (names the parameter); neither ``out`` nor the predictor is changed.
        """
        out[...] = self._predict_counted()

    def compute_correction(self, actual: Any) -> dict[str, Any]:
        """Corrections ``actual - last prediction`` per parameter; accumulated for :meth:`apply_correction`.

        Each parameter's mean ``|correction|`` (spec'd float64 sum / size, as float32)
        joins the error list (last 100 kept).  Returns an empty mapping when nothing
        was predicted yet (as the crate does).
        """
        flat = self.layout.flatten(actual, self._be, "actual")
        if self._last_prediction is None:
            return {}
        return self._correct(flat)

    def _correct(self, flat: Any) -> dict[str, Any]:
        be = self._be
        corr = be.axpy(flat, F32(-1.0), self._prediction())
        errors = []
        max_bits = 0  # of |corr| (NaN bits above Inf)
        for off, n in zip(self.layout.offsets, self.layout.sizes):
            if n == 0:  # a parameter without elements has no mean error
                continue
            total, bits = be.abs_stats(corr[off : off + n])
            errors.append(F32(total / n))
            max_bits = max(max_bits, int(bits))
        corr_max = float(f32_from_bits(max_bits))
        first = self._correction is None
        acc = corr.copy() if first else be.axpy(self._correction, F32(1.0), corr)
        self._errors.extend(errors)
        self._correction = acc
        self._correction_max = corr_max if first else self._correction_max + corr_max
        return self.layout.split(corr)

    def apply_correction(self, gradients: Any) -> None:
        """Add ``correction_weight`` times the accumulated corrections to ``gradients`` in place, then clear them.

        Every array of the mapping must be a writeable floating-point array of the
        backend with its declared shape; the sum is computed in float32 and stored
        into the array.  Nothing is changed when no correction is pending.
        """
        infos = self._writeable_arrays(gradients)
        if self._correction is None:
            return
        w = F32(self.config.correction_weight)
        updated = []
        for info, off, n in zip(infos, self.layout.offsets, self.layout.sizes):
            new = self._be.axpy(info.flat, w, self._correction[off : off + n])
            target = gradients[info.name]
            if target.dtype != new.dtype:  # stored in the caller's dtype: a float16 array has a smaller range
                with np.errstate(over="ignore"):
                    new = new.astype(target.dtype)
                check_finite_bits(int(self._be.abs_stats(new.astype(self._be.xp.float32))[1]), f"gradients[{info.name!r}]",
                                  f"adding the correction leaves the range of {target.dtype}")
            elif may_overflow(float(info.abs_max) + abs(float(w)) * self._correction_max):
                check_finite_bits(int(self._be.abs_stats(new)[1]), f"gradients[{info.name!r}]", CORRECTION_OVERFLOW)
            updated.append((target, new))
        for target, new in updated:
            target[...] = new.reshape(target.shape)
        self._correction = None
        self._correction_max = 0.0

    def _writeable_arrays(self, gradients: Any) -> list[GradientInfo]:
        """The validated gradients (flat float32, with their maxima), each checked to be a writeable float array of the backend."""
        infos = self.layout.validate(gradients, self._be, "gradients")
        for name in self.layout.names:
            g = gradients[name]
            if not self._be.owns(g) or g.dtype.kind != "f":
                raise DTypeError(f"gradients[{name!r}]: apply_correction needs a floating-point array of backend {self._be.name!r} to update in place")
            flags = getattr(g, "flags", None)
            if flags is not None and not getattr(flags, "writeable", True):
                raise DTypeError(f"gradients[{name!r}]: array is read-only; apply_correction updates in place")
        return infos

    def get_stats(self) -> MomentumPredictorStats:
        """Counters and float32 error averages (mean over all kept errors; recent: last 10, newest first)."""
        errs = list(self._errors)
        mean = F32(sum_f32(errs) / F32(len(errs))) if errs else F32(0.0)
        if len(errs) >= RECENT_ERRORS:
            recent = F32(sum_f32(errs[-1 - i] for i in range(RECENT_ERRORS)) / F32(RECENT_ERRORS))
        else:
            recent = mean
        ratio = F32(F32(1.0) - F32(F32(1.0) / F32(self.config.prediction_steps + 1)))
        held = self.state_bytes
        per = held / self.layout.total if self.layout.total else 0.0
        return MomentumPredictorStats(self._total_steps, float(ratio), float(mean), float(recent), self._count, held, per)

    @property
    def state_bytes(self) -> int:
        """Bytes held now, each array once: history rows (with those a pending prediction keeps), last prediction, correction, spare row."""
        held: dict[int, int] = {}
        rows = [r for r in self._ring if r is not None]
        if isinstance(self._last_prediction, tuple):
            rows += list(self._last_prediction)
        for r in rows:
            held[id(r.data)] = r.nbytes
        for a in (self._last_prediction, self._correction, self._spare):
            if a is not None and not isinstance(a, tuple):
                held[id(a)] = int(a.nbytes)
        return sum(held.values())

    def reset(self) -> None:
        """Forget history, predictions, corrections, errors and counters."""
        self._reset_state()

    # --- state -----------------------------------------------------------------

    def export_state(self) -> tuple[dict, dict]:
        """``(header, arrays)`` of the full state; arrays are host copies."""
        be, n, comp = self._be, self.layout.total, self._compression
        rows = [self._held(age) for age in range(self._count - 1, -1, -1)]
        header: dict[str, Any] = {
            "steps_since_full": self._steps_since_full,
            "total_steps": self._total_steps,
            "has_prediction": self._last_prediction is not None,
            "has_correction": self._correction is not None,
        }
        arrays = {**export_rows(rows, "history", comp, n, be), "errors": np.array(list(self._errors), dtype=np.float32)}
        if isinstance(self._last_prediction, tuple):
            # the rows the prediction extrapolates: a history position, or one of the extra saved rows after them
            extra: list[EncodedRow] = []
            where = []
            for r in self._last_prediction:
                pos = next((i for i, h in enumerate(rows) if h is r), None)
                if pos is None:
                    pos = len(rows) + len(extra)
                    extra.append(r)
                where.append(pos)
            header["prediction_rows"] = where
            arrays.update(export_rows(extra, "prediction_extra", comp, n, be))
        elif self._last_prediction is not None:
            arrays["last_prediction"] = be.to_host(self._last_prediction)
        if self._correction is not None:
            arrays["correction"] = be.to_host(self._correction)
        return header, arrays

    def import_state(self, f: Fields) -> Callable[[], None]:
        """Validate a state of :meth:`export_state`; the returned function installs it.

        The history must be finite (recorded gradients are); the last prediction
        and the correction are extrapolations of it and may have overflowed.
        """
        n, cap, comp = self.layout.total, self.config.history_size, self._compression
        total = f.integer("total_steps")
        ssf = f.integer("steps_since_full", 0, total)
        has_pred, has_corr = f.boolean("has_prediction"), f.boolean("has_correction")
        hist = import_rows(f, "history", comp, n, cap, self._be)
        errs = f.f32_list("errors", MAX_ERRORS, finite=False)  # means of corrections, which may overflow
        f.require(len(hist) <= total, "more history rows than steps")
        pred: Any = None
        if has_pred and "prediction_rows" in f.header:
            f.require(comp != "none", "prediction rows in an uncompressed history")
            extra = import_rows(f, "prediction_extra", comp, n, 2, self._be)
            where = f.integer_list("prediction_rows", 2, 0, len(hist) + len(extra) - 1)
            f.require(len(where) >= 1, "a prediction without rows")
            pred = tuple((hist + extra)[i] for i in where)
        elif has_pred:
            pred = f.array("last_prediction", np.float32, (n,), finite=False)
        corr = f.array("correction", np.float32, (n,), finite=False) if has_corr else None
        f.require(has_pred or not f.has("last_prediction"), "a last_prediction array without has_prediction")
        f.require(has_corr or not f.has("correction"), "a correction array without has_correction")
        f.require(not has_corr or has_pred, "a correction without a prediction")
        xp = self._be.xp
        k = len(hist)
        ring: list[EncodedRow | None] = [*hist, *([None] * (cap - k))]
        row_max = [self._held_max(r) for r in hist] + [0.0] * (cap - k)
        corr_dev = None if corr is None else xp.asarray(corr)
        corr_max = 0.0 if corr_dev is None else float(f32_from_bits(int(self._be.abs_stats(corr_dev)[1])))

        def install() -> None:
            self._ring = ring
            self._row_max = row_max
            self._correction_max = corr_max
            self._count = k
            self._head = k % cap
            self._steps_since_full = ssf
            self._total_steps = total
            self._last_prediction = pred if pred is None or isinstance(pred, tuple) else xp.asarray(pred)
            self._correction = corr_dev
            self._errors = deque(errs, maxlen=MAX_ERRORS)
            self._spare = None

        return install
