"""The kernel protocol: what a backend must provide for vsaopt to run on it.

A backend is any object with a ``name``, an array namespace ``xp`` and the
kernels below.  Kernels receive already-validated, C-contiguous arrays of the
stated dtypes (allocated in the backend's namespace) and plain Python scalars;
they return arrays of the same namespace, or host scalars where stated.  The
exact arithmetic of each kernel is normative and written in ``spec/``; every
backend must reproduce the numpy reference byte for byte.

A third-party backend (or a port wrapped for Python) can check itself with
:func:`vsaopt.testing.check_backend`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["KernelBackend", "KERNEL_NAMES", "CORE_KERNELS", "ACCUMULATOR_KERNELS", "PREDICTION_KERNELS", "TRAINING_KERNELS",
           "COMM_KERNELS"]

#: Kernels of the foundation: randomness, reductions, quantizers, packing, VSA algebra.
CORE_KERNELS: tuple[str, ...] = (
    "philox4x32",
    "philox_bits",
    "uniform_f32",
    "abs_stats",
    "quantize_threshold",
    "quantize_stochastic",
    "pack_2bit",
    "unpack_2bit",
    "pack_base3",
    "unpack_base3",
    "trit_bind",
    "trit_unbind",
    "bundle_sum",
    "dot",
    "row_sumsq",
    "equal_count",
)
#: Kernels of ternary accumulation and VSA gradient compression.
ACCUMULATOR_KERNELS: tuple[str, ...] = (
    "random_signs",
    "fwht",
    "srht_gather",
    "srht_scatter",
    "abs_sum_above",
    "accum_add_stochastic",
    "accum_add_threshold",
    "accum_rescale",
    "count_abs_max",
    "accum_mean",
    "nibble_pack",
    "nibble_unpack",
)
#: Kernels of gradient prediction (phase training).
PREDICTION_KERNELS: tuple[str, ...] = (
    "predict_linear", "momentum_extrapolate", "axpy", "residual_update", "wls_fit", "gather_stats", "residual_stats",
)
#: Kernels of the bundled training harness (:mod:`vsaopt.train`).
TRAINING_KERNELS: tuple[str, ...] = ("matmul_ordered",)
#: Kernels of the DDP communication hook (spec/comm.md §6): fused encode, shard sums and decodes.
COMM_KERNELS: tuple[str, ...] = ("comm_scale_bits", "comm_encode", "comm_decode_trits", "comm_reduce_shard", "comm_decode_nibbles")
#: Every kernel a complete backend provides, in the order of ``spec/``.
KERNEL_NAMES: tuple[str, ...] = CORE_KERNELS + ACCUMULATOR_KERNELS + PREDICTION_KERNELS + TRAINING_KERNELS + COMM_KERNELS

Array = Any


@runtime_checkable
class KernelBackend(Protocol):
    """Structural type of a vsaopt backend (see ``spec/SPEC.md`` for the arithmetic)."""

    #: Registry name, e.g. ``"numpy"``, ``"numba"``, ``"cupy"``.
    name: str
    #: Array namespace (``numpy`` or ``cupy``) used for glue code and allocation.
    xp: Any

    def philox4x32(self, counter: Array, key: Array, rounds: int) -> Array:
        """Philox4x32 block function: uint32 ``(n, 4)`` counters, uint32 ``(n, 2)`` keys -> uint32 ``(n, 4)``."""
        ...

    def philox_bits(self, n: int, seed: int, stream: int, step: int, tensor: int) -> Array:
        """The 32-bit Philox word of each element ``0..n-1`` under the spec's counter layout: uint32 ``(n,)``."""
        ...

    def uniform_f32(self, n: int, seed: int, stream: int, step: int, tensor: int) -> Array:
        """``(philox_bits >> 8) * 2**-24`` as float32 ``(n,)``, in ``[0, 1)``."""
        ...

    def abs_stats(self, x: Array) -> tuple[float, int]:
        """Spec'd float64 sum of ``|x|`` and the maximum sign-cleared bit pattern of float32 ``x`` (host scalars)."""
        ...

    def quantize_threshold(self, x: Array, threshold: float) -> Array:
        """Trits of float32 ``x``: +1 where ``x > t``, -1 where ``x < -t``, else 0, with ``t`` float32; int8."""
        ...

    def quantize_stochastic(
        self, x: Array, scale: float, seed: int, stream: int, step: int, tensor: int
    ) -> Array:
        """TernGrad trits: ``sign(x)`` where ``u < |x| / scale`` (float32), else 0; int8."""
        ...

    def pack_2bit(self, trits: Array) -> tuple[Array, bool]:
        """Four trits per byte (code ``t mod 3`` at bits ``2*(i%4)``); also whether every input was a trit."""
        ...

    def unpack_2bit(self, packed: Array, n: int, out: Array | None = None) -> tuple[Array, bool]:
        """Inverse of :meth:`pack_2bit` for ``n`` trits; also whether every code and pad was valid.

        Written into ``out`` (an int8 ``(n,)`` array not overlapping ``packed``) when given, else a new array; returned.
        """
        ...

    def pack_base3(self, trits: Array) -> tuple[Array, bool]:
        """Five trits per byte (``sum (t_k mod 3) * 3**k``); also whether every input was a trit."""
        ...

    def unpack_base3(self, packed: Array, n: int, out: Array | None = None) -> tuple[Array, bool]:
        """Inverse of :meth:`pack_base3` for ``n`` trits; also whether every byte and pad was valid (``out`` as :meth:`unpack_2bit`)."""
        ...

    def trit_bind(self, a: Array, b: Array, out: Array | None = None) -> Array:
        """``(a - b) mod 3`` mapped to ``{-1, 0, +1}``; int8, same length (into ``out``, not overlapping ``a`` or ``b``, when given)."""
        ...

    def trit_unbind(self, a: Array, b: Array, out: Array | None = None) -> Array:
        """``(a + b) mod 3`` mapped to ``{-1, 0, +1}``; int8, same length (``out`` as :meth:`trit_bind`)."""
        ...

    def bundle_sum(self, vectors: Array) -> Array:
        """Sum over axis 0 of ``(k, n)``: float32 accumulated in row order; int8 summed exactly into int32."""
        ...

    def dot(self, a: Array, b: Array) -> Array:
        """All pairwise dot products of rows, ``(n, d) x (m, d) -> (n, m)``: float32 -> float64 spec'd sum; int8 -> int64."""
        ...

    def row_sumsq(self, a: Array) -> Array:
        """Sum of squares of each row of ``(n, d)``: float32 -> float64 spec'd sum; int8 -> int64."""
        ...

    def equal_count(self, a: Array, b: Array) -> Array:
        """Number of equal elements for each pair of rows, ``(n, d) x (m, d) -> (n, m)`` int64."""
        ...

    # --- ternary accumulation and VSA compression kernels -------------------

    def random_signs(self, x: Array, seed: int, stream: int, step: int, tensor: int) -> Array:
        """``x_i`` negated where bit ``i % 32`` of draw word ``i // 32`` is 1; float32 (IEEE negation) or int8."""
        ...

    def fwht(self, x: Array, block: int, scale: float) -> Array:
        """Unnormalised Walsh-Hadamard transform of each ``block``-long block of float32 ``x`` (stages h = 1, 2, ...), times f32 ``scale``."""
        ...

    def srht_gather(
        self, z: Array, d: int, m: int, a_lo: float, a_hi: float, seed: int, stream: int, step: int, tensor: int
    ) -> Array:
        """``y[j] = z[r_j] * a_j`` at one stratified random position per stratum for ``j < m``, zeros to ``d``; float32."""
        ...

    def srht_scatter(
        self, y: Array, nprime: int, m: int, a_lo: float, a_hi: float, seed: int, stream: int, step: int, tensor: int
    ) -> Array:
        """Transpose of :meth:`srht_gather`: ``v[r_j] = y[j] * a_j``, ``+0.0`` elsewhere; float32 ``(nprime,)``."""
        ...

    def abs_sum_above(self, x: Array, threshold: float) -> tuple[float, int]:
        """Spec'd float64 sum of ``|x_i|`` over ``|x_i| > t`` (f32 ``t``) and their count (host scalars)."""
        ...

    def accum_add_stochastic(
        self, counts: Array, g: Array, inv_scale: float, seed: int, stream: int, step: int, tensor: int
    ) -> Array:
        """In place: int8 ``counts += sign(g) * [w < f32(|g| * inv_scale) * 2**32]`` (f64 compare); returns ``counts``."""
        ...

    def accum_add_threshold(self, counts: Array, g: Array, threshold: float) -> Array:
        """In place: int8 ``counts += [g > t] - [g < -t]`` (f32 ``t``); returns ``counts``."""
        ...

    def accum_rescale(self, counts: Array, shift: int, seed: int, stream: int, step: int, tensor: int) -> Array:
        """In place, ``1 <= shift <= 32``: ``c = (c >> s) + [w < (c mod 2**s) << (32 - s)]``; returns ``counts``."""
        ...

    def count_abs_max(self, counts: Array) -> int:
        """``max |c_i|`` of int8 counts as an exact host integer (``|-128| = 128``); 0 for no counts; other dtypes: DTypeError."""
        ...

    def accum_mean(self, counts: Array, unit: float, divisor: float) -> Array:
        """``f32((f64(c) * unit) / divisor)`` of each int8 count; float32."""
        ...

    def nibble_pack(self, counts: Array) -> Array:
        """int8 counts in ``[-8, 7]`` as 4-bit two's complement, two a byte (element ``2j`` in the low nibble); uint8."""
        ...

    def nibble_unpack(self, packed: Array, n: int) -> Array:
        """Inverse of :meth:`nibble_pack`: ``n`` int8 counts, nibbles sign-extended."""
        ...

    # --- prediction kernels ----------------------------------------------------

    def predict_linear(self, baseline: Array, velocity: Array, residual: Array, dt: float, w: float, out: Array | None = None) -> Array:
        """Float32 ``(baseline + velocity*dt) + residual*w``, each operation rounded, in that order; 1-D.

        Written into ``out`` (a float32 ``(n,)`` array not overlapping the inputs) when given, else a new array; returned.
        """
        ...

    def momentum_extrapolate(self, prev: Array, curr: Array, momentum: float) -> Array:
        """Float32 ``curr + momentum*(curr - prev)``: difference, product, sum, each rounded; 1-D."""
        ...

    def axpy(self, x: Array, a: float, y: Array) -> Array:
        """Float32 ``x + a*y``, the product rounded before the sum; 1-D."""
        ...

    def residual_update(
        self, residual: Array, actual: Array, baseline: Array, velocity: Array, dt: float, decay: float, one_minus_decay: float,
        out: Array | None = None, err: Array | None = None,
    ) -> tuple[Array, Array]:
        """Float32 ``(decay*r + one_minus_decay*e, e)`` with ``e = actual - (baseline + velocity*dt)``; 1-D.

        Written into ``out`` (which may be ``residual`` itself) and ``err`` (not overlapping any input) when given.
        """
        ...

    def wls_fit(
        self, history: Array, rows: Array, w: Array, wt: Array, sum_w: float, sum_wt: float, sum_wt2: float, inv_det: float,
        out: tuple[Array, Array] | None = None,
    ) -> tuple[Array, Array]:
        """Float32 ``(baseline, velocity)`` of the weighted least-squares line through ``history[rows]`` (float64 sums in row order).

        Written into ``out = (baseline, velocity)`` (float32 ``(n,)``, not overlapping ``history``) when given.
        """
        ...

    def gather_stats(
        self, pieces: Any, out: Array, prev: Array | None, pred: Array | None
    ) -> tuple[float, float | None, float | None, float | None]:
        """Copy the concatenation ``x`` of float32 1-D ``pieces`` into ``out``; spec'd float64 ``S(x*x)``, ``S(x*prev)``, ``S(x*pred)``, ``S(pred*pred)``.

        ``prev`` and ``pred`` are float32 ``(n,)`` or None (their sums are then None);
        each sum equals ``row_sumsq`` / ``dot`` of ``x`` (SPEC.md section 4).
        """
        ...

    def residual_stats(
        self, residual: Array, actual: Array, baseline: Array, velocity: Array, dt: float, w: float, decay: float,
        one_minus_decay: float, bounds: Any,
    ) -> tuple[float, float, Any, Any]:
        """A correction's ``residual_update`` written into ``residual``, with the sums of the prediction it replaces and per-segment statistics.

        With ``pred = predict_linear(baseline, velocity, residual, dt, w)`` and
        ``(r', e) = residual_update(residual, actual, ...)`` of the residual
        before the call: returns ``S(actual*pred)``, ``S(pred*pred)`` (spec'd
        float64), and for each segment ``[bounds[i], bounds[i+1])`` (host
        int64 bounds from 0 to n) the ``abs_stats`` sum of ``e`` (host float64
        array) and bit maximum of ``r'`` (host uint32 array) (SPEC.md section 4).
        """
        ...

    # --- training harness kernels ----------------------------------------------

    def matmul_ordered(self, a: Array, b: Array) -> Array:
        """Float32 ``(n, k) x (k, m) -> (n, m)``: each element a sequential sum over ``k`` from +0.0, every product and addition rounded (no FMA)."""
        ...
