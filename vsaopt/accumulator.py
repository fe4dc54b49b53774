"""Ternary accumulation (glossary: docs/architecture.md): gradients summed as int8 trit counts, not float32 sums.

:class:`TernaryGradientAccumulator` sums micro-batch gradients as integer
counts of trits with one power-of-two scale per tensor, and returns their
mean as float32.  :class:`TernaryOptimizerWrapper` adds the step/update
bookkeeping of vsa-optim-rs 0.1.1.

How the stochastic mode stays unbiased (``spec/accumulator.md`` has the exact
arithmetic).  Tensor state: int8 counts ``c`` and an exponent ``E``; the
represented sum is ``S = 2**E * c``.

- A gradient ``g`` with ``max|g| <= 2**E`` adds ``t_i = sign(g_i)`` with
  probability ``|g_i| / 2**E`` (else 0): ``E[2**E t_i] = g_i``.
- A gradient with ``max|g| > 2**E`` first raises ``E`` to the smallest
  ``E'`` with ``2**E' >= max|g|`` and rescales every count to
  ``c / 2**(E'-E)`` by stochastic rounding (floor, plus 1 with probability
  equal to the exact dyadic fraction, drawn from a 32-bit Philox word):
  ``E[2**E' c'] = 2**E c``.
- The counts are halved the same way (``E += 1``) only when a count really
  sits at the count maximum ``C`` (127; 7 for ``count_bits=4``, counts held
  as packed nibbles, two per byte, 8x less memory than float32) and one more
  add could pass it.  A cheap bound of ``max|c|`` (+1 per add) decides when
  to look: once it reaches ``C`` the real maximum is measured (an exact
  integer reduction, kernel ``count_abs_max``) and the bound is set to it.
  So ``E`` grows only when the represented sum grows -- by about
  ``log2(steps)`` for gradients of one sign -- the counts never overflow, and
  the relative error of the mean stays at the level set by ``C`` however
  many steps are summed.  ``NonFiniteError`` is raised only when a sum really
  nears the float32 range (``E`` would pass 127).

Every operation is conditionally unbiased, so by the tower property
``E[S] = sum_k g_k`` whatever the scales of the micro-batches (1x or 100x
apart), and ``get_accumulated() = S / count`` is an unbiased estimate of their
mean.  The only departure is the resolution of the uniforms: probabilities are
resolved to ``2**-32``, a bias below ``2**-32 * 2**E`` per element per step.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .rng import Stream
from ._arrays import check_int
from ._bits import F32_INF_BITS, ceil_exponent
from ._grads import GradientInfo, ParamLayout
from .backend import Backend, get_backend, resolve_backend
from .checkpoint import Checkpointable, Fields
from .config import TernaryConfig
from .errors import ConfigError, NonFiniteError

__all__ = [
    "TernaryGradientAccumulator",
    "TernaryOptimizerWrapper",
    "OptimizerStats",
    "STREAM_QUANTIZE",
    "STREAM_RESCALE",
    "COUNT_MAX",
    "MAX_COUNT",
]

#: Philox stream of the stochastic rounding of gradients ("ACQU").
STREAM_QUANTIZE = int(Stream.ACC_QUANTIZE)
#: Philox streams of count rescaling: this value plus the chunk index 0..7 ("ACR" + chunk byte).
STREAM_RESCALE = int(Stream.ACC_RESCALE)
#: Largest magnitude a count may reach, by count width in bits.
COUNT_MAX = {8: 127, 4: 7}
#: Most micro-batches between resets: the mean divides by ``f64(count)``, exact up to ``2**53``.
MAX_COUNT = 2**53
#: Range of the per-tensor exponent ``E`` (``2**-E`` must be an exact float32).
EXP_MIN, EXP_MAX = -126, 127
#: Largest shift one rescale kernel call applies (exact with 32-bit words).
SHIFT_CHUNK = 32


def _ceil_shift(b: int, shift: int) -> int:
    return -((-b) >> shift)


@dataclass(frozen=True)
class _Plan:
    """What one tensor's update will do (computed before any state changes)."""

    exp: int
    shift: int
    bound: int
    has_scale: bool
    add: str  # "none", "stochastic", "threshold"
    inv_scale: float
    threshold: float
    scale_add: float
    counts: Any = None  # working counts already loaded (4-bit: unpacked) when the plan measured them


class TernaryGradientAccumulator(Checkpointable):
    """Accumulate gradients as int8 trit counts with a power-of-two scale per tensor.

    Parameters
    ----------
    param_shapes : sequence of (name, shape)
        The parameters, in a fixed order (the order gives each its tensor index).
    config : TernaryConfig, optional
        ``use_stochastic_rounding=True`` (default): unbiased (see the module
        docstring).  ``False``: the threshold rule of vsa-optim-rs — trit
        ``sign(g_i)`` where ``|g_i| > ternary_threshold * mean|g|`` — with the
        least-squares scale of each step (the mean ``|g_i|`` over kept
        elements) and the mean of those scales applied to the summed trits.
        That estimate is **biased** (it shrinks small entries to zero and
        mixes scales across steps); use it only for reproducibility with the
        crate's behaviour.
    backend : backend, name or None
        Where state lives and kernels run.
    count_bits : {8, 4}
        Width of a held count.  8 (default): int8, 4x less memory than float32
        accumulators.  4: two counts a byte, 8x less memory.  Counts are
        halved (unbiasedly, adding variance) only when a measured count is at
        the maximum (127, or 7) and would pass it: never within the first 127
        (or 7) steps, and for gradients of one sign about once each time the
        number of steps doubles.  The relative error of the mean then stays
        at the level the width allows, whatever the number of steps (for
        gradients of one sign, per element, about 0.08 with 8-bit counts and
        0.6-0.9 with 4-bit counts; :mod:`vsaopt.benchmarks.accumulator_error`).

    Notes
    -----
    State: one count per element (int8, or a nibble), plus a few scalars per
    tensor — never a float32 tensor.  :attr:`nbytes` counts those bytes; :meth:`memory_savings`
    compares them with float32 accumulators of the same shapes (4 bytes per
    element).  Randomness: Philox with key ``config.seed``, counter
    ``(element // 4, tensor index, call number mod 2**32, stream)``; the call
    number counts every :meth:`accumulate` since construction (it is not reset
    by :meth:`reset`), so a replayed sequence of calls gives the same bytes on
    every backend.

    Differences from vsa-optim-rs 0.1.1: int8 state instead of float32;
    unbiased when scales differ; reproducible; ``ternary_threshold`` is relative
    to mean ``|g|`` as the crate documents (the crate applies it absolutely);
    gradients must name exactly the declared parameters.

    Examples
    --------
    >>> import numpy as np
    >>> acc = TernaryGradientAccumulator([("w", (256, 256))], TernaryConfig(seed=1), backend="numpy")
    >>> acc.accumulate({"w": np.full((256, 256), 0.25, np.float32)})
    >>> acc.accumulate({"w": np.full((256, 256), 0.75, np.float32)})
    >>> mean = acc.get_accumulated()["w"]
    >>> acc.count, mean.dtype, round(float(mean.mean()), 2)
    (2, dtype('float32'), 0.5)
    >>> acc.nbytes, acc.float32_nbytes
    (65549, 262144)
    """

    _kind = "TernaryGradientAccumulator"
    _config_cls = TernaryConfig

    def __init__(
        self,
        param_shapes: Any,
        config: TernaryConfig | None = None,
        backend: Backend | str | None = None,
        *,
        count_bits: int = 8,
    ) -> None:
        self._layout = ParamLayout(param_shapes)
        if config is None:
            config = TernaryConfig()
        if not isinstance(config, TernaryConfig):
            raise ConfigError(f"config: expected a TernaryConfig, got {type(config).__name__}")
        integral = isinstance(count_bits, numbers.Integral) and not isinstance(count_bits, (bool, np.bool_))
        if not integral or int(count_bits) not in COUNT_MAX:
            raise ConfigError(f"count_bits: expected 8 or 4, got {count_bits!r}")
        self.config = config
        self.count_bits = int(count_bits)
        self._cmax = COUNT_MAX[self.count_bits]
        self._be = resolve_backend(backend)
        xp = self._be.xp
        self._counts = [xp.zeros(self._held_len(n), dtype=self._held_dtype()) for n in self._layout.sizes]
        t = len(self._layout.pairs)
        self._exp = np.zeros(t, dtype=np.int16)
        self._bound = np.zeros(t, dtype=np.int16)
        self._has_scale = np.zeros(t, dtype=np.bool_)
        self._scale_sum = np.zeros(t, dtype=np.float64)
        self._count = 0
        self._calls = 0

    def _held_len(self, n: int) -> int:
        return n if self.count_bits == 8 else (n + 1) // 2

    def _held_dtype(self) -> Any:
        return self._be.xp.int8 if self.count_bits == 8 else self._be.xp.uint8

    def _load(self, i: int) -> Any:
        """Working int8 counts of tensor ``i`` (the held array itself for 8-bit counts)."""
        if self.count_bits == 8:
            return self._counts[i]
        return self._be.nibble_unpack(self._counts[i], self._layout.sizes[i])

    def _store(self, i: int, counts: Any) -> None:
        if self.count_bits == 4:
            self._counts[i] = self._be.nibble_pack(counts)

    # --- read-only views -----------------------------------------------------

    @property
    def backend(self) -> Backend:
        """The backend holding the state."""
        return self._be

    @property
    def param_shapes(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """The declared ``(name, shape)`` pairs."""
        return self._layout.pairs

    @property
    def count(self) -> int:
        """Micro-batches accumulated since the last :meth:`reset`."""
        return self._count

    def ready_for_update(self) -> bool:
        """Whether ``count >= config.accumulation_steps``."""
        return self._count >= self.config.accumulation_steps

    @property
    def nbytes(self) -> int:
        """Bytes of state actually held: the counts plus the per-tensor exponent, bound, flag and scale sum."""
        return int(
            sum(int(c.nbytes) for c in self._counts)
            + self._exp.nbytes
            + self._bound.nbytes
            + self._has_scale.nbytes
            + self._scale_sum.nbytes
        )

    @property
    def float32_nbytes(self) -> int:
        """Bytes of float32 accumulators of the same shapes (the baseline of :meth:`memory_savings`)."""
        return 4 * sum(self._layout.sizes)

    def memory_savings(self) -> float:
        """Fraction of memory saved against float32 accumulators: ``1 - nbytes / float32_nbytes``."""
        base = self.float32_nbytes
        return 0.0 if base == 0 else 1.0 - self.nbytes / base

    # --- accumulation ----------------------------------------------------------

    def _measured_bound(self, counts: Any, bound: int) -> int:
        """The real ``max |c|`` of working counts ``counts``, exact (``bound`` is the worst case it replaces)."""
        return self._be.count_abs_max(counts)

    def _headroom(self, i: int, bound: int) -> tuple[int, int, Any]:
        """``(bound, halvings, working counts or None)`` of tensor ``i`` before this call's add.

        The worst-case ``bound`` is kept while one more add cannot pass the
        count maximum.  When it could, the held counts are measured (nothing
        changes) and the bound becomes their real ``max |c|``; only if that
        plus one would pass the count maximum are the counts halved (one halving).
        """
        if bound + 1 <= self._cmax:
            return bound, 0, None
        counts = self._load(i)
        bound = self._measured_bound(counts, bound)
        if bound + 1 <= self._cmax:
            return bound, 0, counts
        return _ceil_shift(bound, 1), 1, counts

    def _plan(self, info: GradientInfo) -> _Plan:
        i = info.index
        exp, bound, has = int(self._exp[i]), int(self._bound[i]), bool(self._has_scale[i])
        cfg = self.config
        shift = 0
        if cfg.use_stochastic_rounding:
            if info.max_bits == 0:
                return _Plan(exp, 0, bound, has, "none", 0.0, 0.0, 0.0)
            eg = max(ceil_exponent(info.max_bits), EXP_MIN)
            if not has:
                exp, has = eg, True
            elif eg > exp:
                shift = eg - exp
                exp = eg
            bound, halve, counts = self._headroom(i, _ceil_shift(bound, shift))
            shift += halve
            exp += halve
            if exp > EXP_MAX:
                raise NonFiniteError(
                    f"gradients[{info.name!r}]: the accumulated sum would exceed the float32 range "
                    f"(scale 2**{exp}); call reset()"
                )
            inv = float(np.ldexp(np.float32(1.0), -exp))
            return _Plan(exp, shift, bound + 1, has, "stochastic", inv, 0.0, 0.0, counts)
        # deterministic threshold rule: exp counts the halvings of the counts
        n = self._layout.sizes[i]
        mean = np.float32(info.abs_sum / n) if n else np.float32(0.0)
        thr = np.float32(cfg.ternary_threshold) * mean
        bound, shift, counts = self._headroom(i, bound)
        exp += shift
        if exp > EXP_MAX:
            raise NonFiniteError(f"gradients[{info.name!r}]: too many halvings; call reset()")
        above, kept = self._be.abs_sum_above(info.flat, float(thr)) if n else (0.0, 0)
        scale = float(np.float32(above / kept)) if kept else 0.0
        inv = float(np.ldexp(np.float32(1.0), -exp))
        return _Plan(exp, shift, bound + 1, True, "threshold", inv, float(thr), scale, counts)

    def _rescale(self, counts: Any, i: int, shift: int, step: int) -> None:
        be = self._be
        chunk = 0
        while shift > 0:
            s = min(shift, SHIFT_CHUNK)
            be.accum_rescale(counts, s, self.config.seed, STREAM_RESCALE + chunk, step, i)
            shift -= s
            chunk += 1

    def accumulate(self, gradients: Any) -> None:
        """Add one micro-batch of gradients (a mapping ``name -> array`` naming every declared parameter).

        Raises
        ------
        ShapeError, DTypeError, NonFiniteError, BackendError
            Bad input (see :func:`vsaopt._grads.validate_gradients`); a sum that
            would leave the float32 range raises NonFiniteError.  Nothing
            changes when an error is raised.
        ConfigError
            :attr:`count` is already :data:`MAX_COUNT` (call :meth:`reset`).
        """
        if self._count >= MAX_COUNT:
            raise ConfigError(f"count: at most {MAX_COUNT} micro-batches between resets (the mean divides by it "
                              "exactly only below 2**53); call reset()")
        infos = self._layout.validate(gradients, self._be)
        plans = [self._plan(info) for info in infos]
        step = self._calls & 0xFFFFFFFF
        be, seed = self._be, self.config.seed
        for info, plan in zip(infos, plans):
            i = info.index
            if plan.shift or plan.add != "none":
                counts = self._load(i) if plan.counts is None else plan.counts
                if plan.shift:
                    self._rescale(counts, i, plan.shift, step)
                if plan.add == "stochastic":
                    be.accum_add_stochastic(counts, info.flat, plan.inv_scale, seed, STREAM_QUANTIZE, step, i)
                elif plan.exp == 0:
                    be.accum_add_threshold(counts, info.flat, plan.threshold)
                elif info.flat.shape[0]:
                    trits = be.quantize_threshold(info.flat, plan.threshold).astype(be.xp.float32)
                    be.accum_add_stochastic(counts, trits, plan.inv_scale, seed, STREAM_QUANTIZE, step, i)
                self._store(i, counts)
            if plan.add == "threshold":
                self._scale_sum[i] += plan.scale_add
            self._exp[i], self._bound[i], self._has_scale[i] = plan.exp, plan.bound, plan.has_scale
        self._count += 1
        self._calls += 1

    def _unit(self, i: int) -> float:
        if self.config.use_stochastic_rounding:
            return math.ldexp(1.0, int(self._exp[i]))
        return math.ldexp(float(self._scale_sum[i]) / self._count, int(self._exp[i]))

    def get_accumulated(self) -> dict[str, Any]:
        """The mean of the accumulated gradients, as float32 arrays of the declared shapes.

        Each element is ``f32((f64(c) * unit) / count)`` with ``unit = 2**E``
        (stochastic mode) or ``2**h * (sum of step scales) / count``
        (threshold mode).  Zeros when nothing was accumulated.

        Raises
        ------
        NonFiniteError
            A mean that does not fit float32 (only for sums near the float32 maximum).
        """
        xp = self._be.xp
        out = {}
        for i, (name, shape) in enumerate(self._layout.pairs):
            if self._count == 0:
                out[name] = xp.zeros(shape, dtype=xp.float32)
                continue
            unit = self._unit(i)
            mean = self._be.accum_mean(self._load(i), unit, float(self._count))
            if int(self._bound[i]) * unit / self._count >= float(np.finfo(np.float32).max):
                _, bits = self._be.abs_stats(mean)
                if bits >= F32_INF_BITS:
                    raise NonFiniteError(f"accumulated[{name!r}]: the mean overflows float32")
            out[name] = mean.reshape(shape)
        return out

    def reset(self) -> None:
        """Clear the accumulated state (counts, scales, :attr:`count`); the random call number keeps counting."""
        for c in self._counts:
            c.fill(0)
        self._exp[:] = 0
        self._bound[:] = 0
        self._has_scale[:] = False
        self._scale_sum[:] = 0.0
        self._count = 0

    # --- state -------------------------------------------------------------------

    def _identity(self) -> dict:
        return {**super()._identity(), "count_bits": self.count_bits}

    @classmethod
    def _construct(cls, identity: dict, config: Any, backend: Any) -> TernaryGradientAccumulator:
        return cls(identity.get("param_shapes"), config, backend=backend, count_bits=identity.get("count_bits"))  # type: ignore[arg-type]

    def export_state(self) -> tuple[dict, dict]:
        """``(header, arrays)``: the counters, each tensor's held counts (``counts.<i>``) and the per-tensor scalars.

        Examples
        --------
        >>> acc = TernaryGradientAccumulator([("w", (3,))], backend="numpy")
        >>> sorted(acc.state_dict()["arrays"])
        ['bound', 'counts.0', 'exp', 'has_scale', 'scale_sum']
        """
        arrays = {f"counts.{i}": self._be.to_host(c) for i, c in enumerate(self._counts)}
        arrays.update(exp=self._exp.copy(), bound=self._bound.copy(), has_scale=self._has_scale.copy(), scale_sum=self._scale_sum.copy())
        return {"count": self._count, "calls": self._calls}, arrays

    def import_state(self, f: Fields) -> Callable[[], None]:
        """Validate a state of :meth:`export_state` (dtypes, shapes, ranges, consistency); the returned function installs it."""
        t = len(self._layout.pairs)
        calls = f.integer("calls")
        count = f.integer("count", 0, min(calls, MAX_COUNT))
        held = np.int8 if self.count_bits == 8 else np.uint8
        counts = [f.array(f"counts.{i}", held, (self._held_len(n),)) for i, n in enumerate(self._layout.sizes)]
        exp = f.array("exp", np.int16, (t,))
        bound = f.array("bound", np.int16, (t,))
        has = f.array("has_scale", np.bool_, (t,))
        scale_sum = f.array("scale_sum", np.float64, (t,))
        ref = get_backend("numpy")
        if self.count_bits == 4:
            f.require(not any(n % 2 and int(c[-1]) >> 4 for c, n in zip(counts, self._layout.sizes)), "nonzero padding nibble")
        values = counts if self.count_bits == 8 else [ref.nibble_unpack(c, n) for c, n in zip(counts, self._layout.sizes)]
        stochastic = self.config.use_stochastic_rounding
        lo = EXP_MIN if stochastic else 0
        f.require(bool(((exp >= lo) & (exp <= EXP_MAX)).all()), f"exponents outside [{lo}, {EXP_MAX}]")
        f.require(bool(((bound >= 0) & (bound <= self._cmax)).all()), f"bounds outside [0, {self._cmax}]")
        f.require(all(int(np.abs(v.astype(np.int16)).max(initial=0)) <= int(b) for v, b in zip(values, bound)), "a count exceeds its bound")
        f.require(bool((has | ((exp == 0) & (bound == 0))).all()), "a tensor without a scale holds counts or an exponent")
        f.require(count > 0 or not has.any(), "scales held with nothing accumulated")
        f32_max = float(np.finfo(np.float32).max)
        if stochastic:
            f.require(not scale_sum.any(), "scale sums in stochastic mode")
        else:
            f.require(bool(((scale_sum >= 0) & (scale_sum <= count * f32_max)).all()), "scale sums outside [0, count * float32 max]")
        xp = self._be.xp

        def install() -> None:
            self._counts = [xp.asarray(c) for c in counts]
            self._exp, self._bound, self._has_scale, self._scale_sum = exp, bound, has, scale_sum
            self._count, self._calls = count, calls

        return install

    def __repr__(self) -> str:
        mode = "stochastic" if self.config.use_stochastic_rounding else "threshold"
        return (
            f"TernaryGradientAccumulator(params={len(self._layout.pairs)}, elements={sum(self._layout.sizes)}, "
            f"mode={mode!r}, count={self._count}, backend={self._be.name!r})"
        )


@dataclass(frozen=True)
class OptimizerStats:
    """Statistics of a :class:`TernaryOptimizerWrapper` (the crate's ``OptimizerStats``).

    Examples
    --------
    >>> print(OptimizerStats(step_count=8, update_count=1, memory_savings=0.75, accumulation_steps=8))
    Steps: 8 | Updates: 1 | Memory saved: 75.0%
    """

    step_count: int
    update_count: int
    memory_savings: float
    accumulation_steps: int

    def __str__(self) -> str:
        return f"Steps: {self.step_count} | Updates: {self.update_count} | Memory saved: {self.memory_savings * 100:.1f}%"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (JSON-ready)."""
        return {
            "step_count": self.step_count,
            "update_count": self.update_count,
            "memory_savings": self.memory_savings,
            "accumulation_steps": self.accumulation_steps,
        }


class TernaryOptimizerWrapper(Checkpointable):
    """Gradient accumulation for an optimizer: accumulate micro-batches, update every ``accumulation_steps``.

    Parameters
    ----------
    param_shapes, config, backend, count_bits
        As for :class:`TernaryGradientAccumulator`.

    Examples
    --------
    >>> import numpy as np
    >>> w = TernaryOptimizerWrapper([("b", (4,))], TernaryConfig(accumulation_steps=2), backend="numpy")
    >>> g = {"b": np.ones(4, np.float32)}
    >>> w.step(g), w.step(g)
    (False, True)
    >>> w.get_gradients_for_update()["b"].tolist()
    [1.0, 1.0, 1.0, 1.0]
    >>> w.get_stats().update_count
    1
    """

    def __init__(
        self,
        param_shapes: Any,
        config: TernaryConfig | None = None,
        backend: Backend | str | None = None,
        *,
        count_bits: int = 8,
    ) -> None:
        self.accumulator = TernaryGradientAccumulator(param_shapes, config, backend, count_bits=count_bits)
        self.config = self.accumulator.config
        self._step_count = 0
        self._update_count = 0

    @property
    def step_count(self) -> int:
        """Micro-batches seen."""
        return self._step_count

    @property
    def update_count(self) -> int:
        """Updates handed out by :meth:`get_gradients_for_update`."""
        return self._update_count

    def step(self, gradients: Any) -> bool:
        """Accumulate ``gradients``; True when ``step_count`` is a multiple of ``accumulation_steps``."""
        self.accumulator.accumulate(gradients)
        self._step_count += 1
        return self._step_count % self.config.accumulation_steps == 0

    def get_gradients_for_update(self) -> dict[str, Any]:
        """The accumulated mean gradients; resets the accumulator and counts one update."""
        grads = self.accumulator.get_accumulated()
        self.accumulator.reset()
        self._update_count += 1
        return grads

    def get_stats(self) -> OptimizerStats:
        """Step and update counts, memory saved (from bytes held) and ``accumulation_steps``."""
        return OptimizerStats(
            self._step_count, self._update_count, self.accumulator.memory_savings(), self.config.accumulation_steps
        )

    def reset_state(self) -> None:
        """Zero the step and update counts (the accumulator is left as it is, as in the crate)."""
        self._step_count = 0
        self._update_count = 0

    def load_state(self, step_count: int, update_count: int) -> None:
        """Set the step and update counts (e.g. from a checkpoint); both must be integers >= 0."""
        s = check_int(step_count, "step_count", 0, 2**62)
        u = check_int(update_count, "update_count", 0, 2**62)
        self._step_count, self._update_count = s, u

    # --- state -------------------------------------------------------------------

    _kind = "TernaryOptimizerWrapper"
    _config_cls = TernaryConfig

    def _identity(self) -> dict:
        return self.accumulator._identity()

    @classmethod
    def _construct(cls, identity: dict, config: Any, backend: Any) -> TernaryOptimizerWrapper:
        return cls(identity.get("param_shapes"), config, backend, count_bits=identity.get("count_bits"))  # type: ignore[arg-type]

    def export_state(self) -> tuple[dict, dict]:
        """``(header, arrays)``: the step and update counts and the accumulator's state (``accumulator.*``)."""
        header: dict = {"step_count": self._step_count, "update_count": self._update_count}
        arrays: dict = {}
        self.nest("accumulator", self.accumulator, header, arrays)
        return header, arrays

    def import_state(self, f: Fields) -> Callable[[], None]:
        """Validate a state of :meth:`export_state`; the returned function installs it."""
        steps = f.integer("step_count")
        updates = f.integer("update_count")
        install_acc = self.accumulator.import_state(f.sub("accumulator"))

        def install() -> None:
            install_acc()
            self._step_count, self._update_count = steps, updates

        return install

    def __repr__(self) -> str:
        return f"TernaryOptimizerWrapper(steps={self._step_count}, updates={self._update_count}, {self.accumulator!r})"
