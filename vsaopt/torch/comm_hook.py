"""Ternary all-reduce (glossary: docs/architecture.md): a TernGrad-style compressed gradient hook for ``DistributedDataParallel``.

Two schemes exchange a bucket; ``TernaryCommState(scheme="auto")`` picks, per
bucket, the one that sends fewer bytes (all-gather at two ranks, reduce-scatter
from four; both are bit-identical on every rank).

**All-gather.**  Each rank ternarizes its gradient bucket
(:func:`vsaopt.ternary.quantize_stochastic`, one ``max |x|`` scale per chunk),
packs the trits four to a byte (:func:`vsaopt.ternary.pack`, ``"2bit"``), and
exchanges packed trits and float32 scales with one ``all_gather``.  Every rank
decodes the gathered payloads in rank order with the same float32 arithmetic.
A rank sends ``(W - 1) (4 K + n / 4)`` bytes: it grows with the world size.

**Reduce-scatter** (:mod:`vsaopt.torch.trit_reduce_scatter`, ``spec/comm.md``).
An ``all_reduce`` MAX of the per-chunk scales (as int32 bit patterns) gives
every rank the same scales; each rank quantizes against them and sends shard
``j`` of its packed trits to rank ``j`` with ``all_to_all_single``; rank ``j``
sums the trits exactly, rounds the sums stochastically to 4 bits and the
shards are exchanged with ``all_gather``.  A rank sends about
``0.75 (W - 1) / W * n`` bytes, at most ``n`` / 10.6 of the fp32 all-reduce at any
``W``.  These three collectives all work on gloo (CPU) and NCCL (CUDA).

Randomness: element ``i`` of chunk ``c`` of bucket ``b`` on rank ``r`` at hook
step ``k`` (the number of earlier calls for bucket ``b``) uses the Philox draw
``(seed, stream=COMM_HOOK_STREAM, step=k mod 2**32,
tensor_index=(r << 20) | (b << 10) | c)``, so ranks draw independently and a
run is reproducible from the seed.

All-gather decoding (per element ``i``, chunk ``c(i)``): ``acc = 0.0f``; for ranks
``r = 0 .. W-1``: ``acc = f32(acc + f32(t_r[i]) * s_r[c(i)])``; result
``f32(acc / f32(W))``.

Compute: the backend's ``comm_*`` kernels.  ``comm_encode`` does, per chunk in
one pass, ``v = gradient + residual``, the scale, the stochastic trits, their
2-bit packing and the new residual (updated in place); ``comm_decode_trits``
and ``comm_decode_nibbles`` write the mean straight into the bucket;
``comm_reduce_shard`` sums an owner's shards.  :class:`CommStats` reports the
time of each stage.  Because stochastic ternarization is unbiased,
``E[result] = mean_r x_r`` (up to the ``2**-24`` grid of the uniforms); the
same holds for the reduce-scatter scheme.
"""

import dataclasses
import hashlib
import json
import numbers
import re
import time
from collections.abc import Callable
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist

from .._bits import F32_INF_BITS
from ..rng import Stream
from ..backend import BACKEND_NAMES, to_host
from ..checkpoint import Checkpointable, Fields
from ..errors import BackendError, CheckpointError, ConfigError, DTypeError, EncodingError, ShapeError
from . import trit_reduce_scatter as rs
from ._dlpack import FLOAT_DTYPES, backend_for, from_array, to_array

__all__ = [
    "COMM_HOOK_STREAM",
    "SCHEMES",
    "PROTOCOL_VERSION",
    "CommStats",
    "TernaryCommState",
    "ternary_comm_hook",
    "MAX_RANKS",
    "MAX_BUCKETS",
    "MAX_CHUNKS",
]

#: Philox ``stream`` word of the hook's draws: ASCII "TERN".
COMM_HOOK_STREAM = int(Stream.COMM_HOOK)
#: Ranks addressable in ``tensor_index`` (12 bits).
MAX_RANKS = 1 << 12
#: Bucket indices addressable in ``tensor_index`` (10 bits).
MAX_BUCKETS = 1 << 10
#: Chunks per bucket addressable in ``tensor_index`` (10 bits); larger buckets get larger chunks.
MAX_CHUNKS = 1 << 10
#: Values of ``TernaryCommState(scheme=...)``.
SCHEMES = ("auto", "all_gather", "reduce_scatter")
#: Version of the exchange of ``spec/comm.md``; the ranks check at their first call that they all run the same one.
PROTOCOL_VERSION = 1
#: A bucket index, or the index part of a ``residual.<index>`` array name, written in canonical decimal.
_INDEX_TEXT = re.compile(r"0|[1-9][0-9]*")


@dataclasses.dataclass(frozen=True)
class CommStats:
    """What the hook exchanged on this rank since the state was built or :meth:`TernaryCommState.reset_stats`.

    Byte counts follow ring algorithms (what gloo and NCCL use): an all-gather
    of ``s`` bytes per rank sends ``(W - 1) s`` bytes from each rank, an
    all-reduce of ``S`` bytes sends ``2 (W - 1) / W * S``, an all-to-all of
    ``S`` bytes sends ``(W - 1) / W * S``.

    Attributes
    ----------
    steps : int
        Backward passes seen (calls for the last bucket).
    compressed_buckets, fallback_buckets : int
        Bucket calls exchanged as trits (either scheme), and as an fp32 (bucket dtype) all-reduce.
    elements : int
        Gradient elements communicated.
    bytes_sent : int
        Bytes this rank sent.
    fp32_bytes : int
        Bytes an fp32 all-reduce of the same buckets would have sent.
    world_size : int
    reduce_scatter_buckets : int
        The compressed bucket calls that used the reduce-scatter scheme.
    encode_seconds, reduce_seconds, decode_seconds : float
        The hook's own compute on this rank, per stage, summed over bucket
        calls: encoding (scales, trits, packing, error-feedback residual),
        the shard sums of the reduce-scatter scheme, and decoding into the
        bucket.  Wall-clock time around the kernels, collectives excluded; on
        a GPU backend it is the time to launch the kernels.
    """

    steps: int
    compressed_buckets: int
    fallback_buckets: int
    elements: int
    bytes_sent: int
    fp32_bytes: int
    world_size: int
    reduce_scatter_buckets: int = 0
    encode_seconds: float = 0.0
    reduce_seconds: float = 0.0
    decode_seconds: float = 0.0

    @property
    def compression_ratio(self) -> float:
        """``fp32_bytes / bytes_sent`` (0.0 before any exchange)."""
        return self.fp32_bytes / self.bytes_sent if self.bytes_sent else 0.0

    @property
    def bytes_per_step(self) -> float:
        """``bytes_sent / steps`` (0.0 before the first step)."""
        return self.bytes_sent / self.steps if self.steps else 0.0

    def to_dict(self) -> dict:
        """JSON-ready dict, with ``compression_ratio`` and ``bytes_per_step``."""
        d = dataclasses.asdict(self)
        d["compression_ratio"] = self.compression_ratio
        d["bytes_per_step"] = self.bytes_per_step
        return d


def _ring_allgather(nbytes: int, world: int) -> int:
    return (world - 1) * nbytes


def _ring_allreduce(nbytes: int, world: int) -> int:
    return (2 * (world - 1) * nbytes) // world


class TernaryCommState(Checkpointable):
    """State of :func:`ternary_comm_hook`: seed, options, per-bucket step counters and residuals, byte counts.

    Parameters
    ----------
    process_group : ProcessGroup, optional
        The group DDP reduces over (the default group when None).
    seed : int
        Philox key; the same on every rank.
    error_feedback : bool
        Keep, per bucket, the part of the gradient the trits did not carry
        (``v - scale * trits`` with ``v = gradient + residual``) and add it to the
        next step's gradient.  Costs one float32 copy of every bucket.  The
        averaged gradient of one step is then no longer an unbiased estimate of
        that step's gradient; the sum over steps tracks the true sum.  A bucket
        whose size changes (DDP rebuilds buckets after the first step) starts
        with a zero residual.
    min_compress_numel : int
        Buckets with fewer elements go through an ordinary all-reduce (in the
        bucket's dtype), averaged over ranks.
    chunk_size : int
        Elements per scale.  Smaller chunks track the gradient's magnitude more
        closely (lower variance) at 4 bytes per chunk; a bucket is split into at
        most :data:`MAX_CHUNKS` chunks (larger buckets use larger chunks).
    backend : None, a backend name or a backend object
        vsaopt backend for quantization and packing (None: numba or numpy for
        CPU buckets, cupy for CUDA buckets).
    scheme : {"auto", "all_gather", "reduce_scatter"}
        How compressed buckets are exchanged (see the module docstring).
        ``"auto"`` takes, per bucket, the scheme that sends fewer bytes
        (all-gather on ties): all-gather at 2 ranks, reduce-scatter from 4.
        The reduce-scatter scheme shares one scale per chunk across ranks
        (the largest), so its variance is a little higher at the same ``W``.

    Every rank builds its state with the same options.  At the first hook call
    (and the first after :meth:`load_state_dict` or on a new process group) the
    ranks exchange their options, step counters and the world size and rank
    their residuals were made at, in one fixed-size ``all_gather``, before any
    collective whose size depends on them.  A mismatch raises on every rank:
    :class:`~vsaopt.errors.ConfigError` naming the options that differ and
    where, or :class:`~vsaopt.errors.CheckpointError` for a state of another
    world size, rank or step.  One state serves one DDP model: its step counters
    and residuals are per bucket, so buckets of a second model are refused
    (:class:`~vsaopt.errors.ConfigError`).

    Examples
    --------
    >>> state = TernaryCommState(seed=3, error_feedback=True, backend="numpy")
    >>> state.stats().steps, state.chunk_size
    (0, 65536)
    """

    _kind = "TernaryCommState"

    def __init__(
        self,
        process_group: Any = None,
        *,
        seed: int = 0,
        error_feedback: bool = False,
        min_compress_numel: int = 1024,
        chunk_size: int = 65536,
        backend: Any = None,
        scheme: str = "auto",
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) < 2**64:
            raise ConfigError(f"seed: expected an integer in [0, 2**64), got {seed!r}")
        if scheme not in SCHEMES:
            raise ConfigError(f"scheme: expected one of {list(SCHEMES)}, got {scheme!r}")
        if not isinstance(error_feedback, bool):
            raise ConfigError(f"error_feedback: expected a bool, got {error_feedback!r}")
        for name, v, lo in (("min_compress_numel", min_compress_numel, 0), ("chunk_size", chunk_size, 1)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not lo <= int(v) <= 2**40:
                raise ConfigError(f"{name}: expected an integer in [{lo}, 2**40], got {v!r}")
        _check_process_group(process_group)
        _check_backend_arg(backend)
        self.process_group: Any = process_group
        self.seed: int = int(seed)
        self.error_feedback: bool = error_feedback
        self.min_compress_numel: int = int(min_compress_numel)
        self.chunk_size: int = int(chunk_size)
        self.scheme: str = scheme
        self._backend_arg: Any = backend
        self._backends: dict[str, Any] = {}
        self._steps: dict[int, int] = {}
        self._residuals: dict[int, Any] = {}
        # (world size, rank) the step counters and residuals belong to; None before the first exchange
        self._membership: Optional[tuple[int, int]] = None
        # the process group the ranks last agreed on (see _agree); None: agree at the next call
        self._agreed_group: Any = None
        # ids of the parameters of the model served: gathered during the first step, then fixed (see _check_model)
        self._model_params: set[int] = set()
        self._model_known: bool = False
        self.reset_stats()

    def reset_stats(self) -> None:
        """Zero the byte and bucket counters (step counters and residuals are kept)."""
        self._n_steps = 0
        self._n_compressed = 0
        self._n_fallback = 0
        self._n_reduce_scatter = 0
        self._n_elements = 0
        self._bytes = 0
        self._fp32_bytes = 0
        self._world = 0
        self._seconds = {"encode": 0.0, "reduce": 0.0, "decode": 0.0}

    def stats(self) -> CommStats:
        """Counters since construction or :meth:`reset_stats`."""
        return CommStats(
            self._n_steps, self._n_compressed, self._n_fallback, self._n_elements, self._bytes, self._fp32_bytes, self._world,
            self._n_reduce_scatter, self._seconds["encode"], self._seconds["reduce"], self._seconds["decode"],
        )

    def residual(self, bucket_index: int) -> Optional[torch.Tensor]:
        """The error-feedback residual of a bucket (a float32 tensor sharing the state's memory, which each hook call updates in place), or None."""
        r = self._residuals.get(bucket_index)
        return None if r is None else from_array(r)

    def chunk_bounds(self, n: int) -> list[tuple[int, int]]:
        """The ``(start, stop)`` of each chunk of an ``n``-element bucket (one scale each).

        Examples
        --------
        >>> TernaryCommState(chunk_size=4).chunk_bounds(10)
        [(0, 4), (4, 8), (8, 10)]
        """
        size = self._chunk_of(n)
        return [(lo, min(lo + size, n)) for lo in range(0, n, size)]

    def _chunk_of(self, n: int) -> int:
        """Elements per chunk of an ``n``-element bucket: ``max(chunk_size, ceil(n / MAX_CHUNKS))``."""
        return max(self.chunk_size, -(-n // MAX_CHUNKS))

    def scheme_for(self, n: int, world: int) -> str:
        """The scheme an ``n``-element compressed bucket uses at ``world`` ranks (``"all_gather"`` or ``"reduce_scatter"``).

        Examples
        --------
        >>> state = TernaryCommState()
        >>> state.scheme_for(10**6, 2), state.scheme_for(10**6, 4)
        ('all_gather', 'reduce_scatter')
        """
        if self.scheme != "auto":
            return self.scheme
        k = -(-n // self._chunk_of(n))
        return "reduce_scatter" if rs.reduce_scatter_bytes(n, k, world) < rs.all_gather_bytes(n, k, world) else "all_gather"

    def _backend(self, device: torch.device) -> Any:
        key = str(device)
        if key not in self._backends:
            self._backends[key] = backend_for(device, self._backend_arg)
        return self._backends[key]

    def _next_step(self, index: int) -> int:
        k = self._steps.get(index, 0)
        self._steps[index] = k + 1
        return k % 2**32

    def _check_model(self, params: Optional[frozenset[int]]) -> None:
        """ConfigError when a bucket holds parameters of another model than the one of the state's first step."""
        if params is not None and self._model_known and not params <= self._model_params:
            raise ConfigError(
                "bucket: holds parameters of another model than the one this TernaryCommState served in its first step; "
                "build one state per DDP model (step counters and residuals belong to one model's buckets)"
            )

    def _note_model(self, params: Optional[frozenset[int]], last: bool) -> None:
        """Gather the parameters of the first step; the step's last bucket fixes the model."""
        if params is None or self._model_known:
            return
        self._model_params |= params
        self._model_known = last

    def _bound_membership(self) -> Optional[tuple[int, int]]:
        """The (world size, rank) the state's counters and residuals were made at, when it holds any."""
        return self._membership if (self._steps or self._residuals) else None

    def _agree(self, group: Any, world: int, rank: int, device: torch.device) -> None:
        """At the first call on ``group``: every rank checks, collectively, that all ranks hold the same configuration.

        One ``all_gather`` of :data:`_AGREEMENT_WORDS` int64 words per rank
        (the same size whatever the configuration); every rank then reads the
        same table, so every rank raises the same error or none.
        """
        if self._agreed_group is group:
            return
        mine = torch.tensor(_agreement_row(self), dtype=torch.int64, device=device)
        rows = [torch.empty_like(mine) for _ in range(world)]
        dist.all_gather(rows, mine, group=group)
        _check_agreement(torch.stack(rows).cpu().numpy(), world)
        self._agreed_group = group
        self._membership = (world, rank)

    # --- state ---------------------------------------------------------------------

    def _config_dict(self) -> dict:
        return {"seed": self.seed, "error_feedback": self.error_feedback, "min_compress_numel": self.min_compress_numel, "chunk_size": self.chunk_size,
                "scheme": self.scheme}

    @classmethod
    def _config_from_dict(cls, data: Any) -> Any:
        """The saved options, with exactly the option names of :meth:`_config_dict` (their values are checked on construction)."""
        if not isinstance(data, dict):
            raise CheckpointError(f"config: expected an object, got {type(data).__name__}")
        want = {"seed", "error_feedback", "min_compress_numel", "chunk_size", "scheme"}
        if set(data) != want:
            raise CheckpointError(f"config: expected the options {sorted(want)}, got {sorted(map(str, data))}")
        return data

    def _identity(self) -> dict:
        return {}

    @classmethod
    def _construct(cls, identity: dict, config: Any, backend: Any) -> "TernaryCommState":
        return cls(backend=backend, **config)

    def export_state(self) -> tuple[dict, dict]:
        """``(header, arrays)``: per-bucket step counters, error-feedback residuals (``residual.<bucket>``), world size and rank.

        ``world_size`` and ``rank`` are those of the process group the counters
        and residuals were made on (null before the first exchange): a state
        loads only on the same rank of a group of the same size.  The process
        group, the backends and the byte counters are not state: a resumed job
        passes its own group and counts its own bytes.
        """
        arrays = {f"residual.{i}": to_host(r) for i, r in self._residuals.items()}
        world, rank = self._membership if self._membership is not None else (None, None)
        return {"steps": {str(i): k for i, k in sorted(self._steps.items())}, "world_size": world, "rank": rank}, arrays

    def import_state(self, f: Fields) -> Callable[[], None]:
        """Validate a state of :meth:`export_state`; the returned function installs it.

        Raises
        ------
        CheckpointError
            A field of the wrong type or range, an unknown field or array, a
            residual that is not a finite float32 vector or belongs to a bucket
            without a step counter, or a state saved at another world size or rank than this
            state's process group has now (checked here when the group exists,
            else at the first hook call).
        """
        unknown = sorted(set(f.header) - {"steps", "world_size", "rank"})
        f.require(not unknown, f"unknown fields {unknown}")
        steps = _read_steps(f)
        residuals = _read_residuals(f, steps)
        f.require(self.error_feedback or not residuals, "residuals without error feedback")
        membership = _read_membership(f)
        if membership is not None and (steps or residuals):
            _check_membership_now(membership, self.process_group)

        def install() -> None:
            self._steps = steps
            self._residuals = residuals
            self._membership = membership
            self._agreed_group = None  # the ranks check the loaded counters and membership together at the next call

        return install

    def load_state_dict(self, state: Any) -> None:
        """Restore a :meth:`state_dict` saved by a state with the same options, on the same rank of a group of the same size.

        Raises
        ------
        CheckpointError
            Another kind, options (named in the message), world size or rank,
            a modified state, or a field of the wrong type or range; the state
            is unchanged.
        """
        _check_saved_config(state, self._config_dict())
        super().load_state_dict(state)


def _check_process_group(group: Any) -> None:
    """ConfigError unless ``group`` is None or a ``torch.distributed.ProcessGroup`` this process belongs to."""
    if group is None:
        return
    if dist.is_available() and group is dist.GroupMember.NON_GROUP_MEMBER:
        raise ConfigError("process_group: this process is not a member of the group (new_group returned GroupMember.NON_GROUP_MEMBER)")
    cls = getattr(dist, "ProcessGroup", None)
    if cls is None or not isinstance(group, cls):
        raise ConfigError(f"process_group: expected None or a torch.distributed.ProcessGroup, got {type(group).__name__}")


def _check_backend_arg(backend: Any) -> None:
    """ConfigError unless ``backend`` is None, a backend name or a backend object (the backend itself loads at first use)."""
    if backend is None or (hasattr(backend, "name") and hasattr(backend, "xp")):
        return
    names = ("auto",) + BACKEND_NAMES
    if not isinstance(backend, str) or backend not in names:
        raise ConfigError(f"backend: expected None, one of {list(names)} or a backend object, got {backend!r}")


def _resolve_group(process_group: Any) -> tuple[Any, int, int]:
    """``(group, world size, rank)`` of the state's group (the default group when None).

    Raises
    ------
    BackendError
        No process group is initialized, or the group was destroyed.
    """
    if not dist.is_available() or not dist.is_initialized():
        raise BackendError(
            "process_group: no process group is initialized (call torch.distributed.init_process_group first; "
            "the hook cannot run after destroy_process_group)"
        )
    group = process_group if process_group is not None else dist.group.WORLD
    try:
        rank = dist.get_rank(group)
        world = dist.get_world_size(group)
    except (RuntimeError, ValueError) as exc:
        raise BackendError(f"process_group: the group cannot be used (was it destroyed?): {exc}") from None
    if rank < 0:
        raise BackendError("process_group: this process is not a member of the group")
    return group, world, rank


def _read_steps(f: Fields) -> dict[int, int]:
    """The ``steps`` object: canonical decimal bucket indices below MAX_BUCKETS -> counts >= 1."""
    raw = f.header.get("steps")
    ok = isinstance(raw, dict) and len(raw) <= MAX_BUCKETS
    if not ok or any(not (_INDEX_TEXT.fullmatch(k) and int(k) < MAX_BUCKETS) for k in raw):
        raise CheckpointError(f"{f.where}.steps: expected an object of at most {MAX_BUCKETS} bucket indices (decimal, below {MAX_BUCKETS})")
    counters = Fields(raw, {}, f"{f.where}.steps")
    return {int(k): counters.integer(k, 1) for k in raw}


def _read_residuals(f: Fields, steps: dict[int, int]) -> dict[int, np.ndarray]:
    """The ``residual.<bucket>`` arrays: finite float32 vectors of buckets in ``steps``.

    A residual whose length differs from its bucket's is dropped at the next
    call (as when DDP rebuilds its buckets), so any length is safe.
    """
    residuals = {}
    for name in f.arrays:
        idx = name.removeprefix("residual.")
        known = name.startswith("residual.") and _INDEX_TEXT.fullmatch(idx) is not None and int(idx) in steps
        f.require(known, f"unexpected array {name!r}")
        residuals[int(idx)] = f.array(name, np.float32, (-1,))
    return residuals


def _read_membership(f: Fields) -> Optional[tuple[int, int]]:
    """``(world_size, rank)``, both null or ``1 <= world_size <= MAX_RANKS`` and ``0 <= rank < world_size``."""
    for name in ("world_size", "rank"):
        if name not in f.header:
            raise CheckpointError(f"{f.where}.{name}: missing")
    if f.header["world_size"] is None and f.header["rank"] is None:
        return None
    world = f.integer("world_size", 1, MAX_RANKS)
    return world, f.integer("rank", 0, world - 1)


def _check_membership_now(saved: tuple[int, int], process_group: Any) -> None:
    """CheckpointError when the group exists now and its world size or this rank differs from ``saved``."""
    try:
        _, world, rank = _resolve_group(process_group)
    except BackendError:
        return  # no group yet: the first hook call checks (see TernaryCommState._agree)
    if (world, rank) != saved:
        raise CheckpointError(
            f"TernaryCommState: state saved at world size {saved[0]} by rank {saved[1]}, "
            f"this process group has world size {world} and this is rank {rank}; load each rank's own state"
        )


def _check_saved_config(state: Any, mine: dict) -> None:
    """CheckpointError naming the options of a saved TernaryCommState that differ from ``mine``."""
    header = state.get("header") if isinstance(state, dict) else None
    if not isinstance(header, dict) or header.get("kind") != TernaryCommState._kind or not isinstance(header.get("config"), dict):
        return  # the generic checks of load_state_dict name what is wrong
    saved = header["config"]
    differ = [k for k in sorted(set(saved) | set(mine)) if saved.get(k, "<absent>") != mine.get(k, "<absent>")]
    if differ:
        shown = ", ".join(f"{k}: saved {saved.get(k, '<absent>')!r}, here {mine.get(k, '<absent>')!r}" for k in differ)
        raise CheckpointError(f"state dict: saved with another config ({shown})")


# --- agreement of the ranks -----------------------------------------------------------

#: What each rank contributes to the agreement at its first call, one int64 word each.
_AGREEMENT_WORDS = (
    "protocol", "seed_high", "seed_low", "error_feedback", "min_compress_numel", "chunk_size", "scheme",
    "steps_digest", "saved_world_size", "saved_rank",
)
#: The options every rank must hold alike, as named in error messages.
_AGREED_OPTIONS = ("protocol", "seed", "error_feedback", "min_compress_numel", "chunk_size", "scheme")


def _steps_digest(steps: dict[int, int]) -> int:
    """A 63-bit digest of the per-bucket step counters (equal counters give equal digests)."""
    text = json.dumps(sorted(steps.items())).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1


def _agreement_row(state: TernaryCommState) -> list[int]:
    """This rank's :data:`_AGREEMENT_WORDS`."""
    world, rank = state._bound_membership() or (-1, -1)
    return [
        PROTOCOL_VERSION, state.seed >> 32, state.seed & 0xFFFFFFFF, int(state.error_feedback), state.min_compress_numel,
        state.chunk_size, SCHEMES.index(state.scheme), _steps_digest(state._steps), world, rank,
    ]


def _options_of(row: Any) -> dict[str, Any]:
    """The :data:`_AGREED_OPTIONS` a row of words stands for, as the user wrote them."""
    w = [int(x) for x in row]
    scheme = SCHEMES[w[6]] if 0 <= w[6] < len(SCHEMES) else w[6]
    return {"protocol": w[0], "seed": (w[1] << 32) | w[2], "error_feedback": bool(w[3]), "min_compress_numel": w[4],
            "chunk_size": w[5], "scheme": scheme}


def _ranks_text(ranks: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(r) for r in ranks[:limit]) + (f", ... ({len(ranks)} ranks)" if len(ranks) > limit else "")
    return ("rank " if len(ranks) == 1 else "ranks ") + shown


def _by_value(values: list[Any]) -> str:
    """``"300 on rank 0; 500 on ranks 1, 2"``: each distinct value with the ranks that hold it."""
    groups: dict[str, list[int]] = {}
    for r, v in enumerate(values):
        groups.setdefault(repr(v), []).append(r)
    return "; ".join(f"{v} on {_ranks_text(ranks)}" for v, ranks in groups.items())


def _check_agreement(table: np.ndarray, world: int) -> None:
    """Raise, alike on every rank, when the gathered rows (one per rank, :data:`_AGREEMENT_WORDS`) disagree.

    Raises
    ------
    ConfigError
        Ranks hold different options; the message names each option and the ranks per value.
    CheckpointError
        A rank holds counters and residuals of another world size or rank, or
        the ranks hold different step counters.
    """
    options = [_options_of(row) for row in table]
    differ = [name for name in _AGREED_OPTIONS if len({repr(o[name]) for o in options}) > 1]
    if differ:
        what = "; ".join(f"{name} ({_by_value([o[name] for o in options])})" for name in differ)
        raise ConfigError(f"TernaryCommState: the ranks disagree on {what}; build the state with the same options on every rank")
    saved = [(r, int(row[8]), int(row[9])) for r, row in enumerate(table) if row[8] >= 0 and (row[8] != world or row[9] != r)]
    if saved:
        what = "; ".join(f"rank {r} holds a state of world size {w} (rank {k})" for r, w, k in saved)
        raise CheckpointError(
            f"TernaryCommState: {what}, but this process group has world size {world}; "
            "load each rank's own state, saved at the same world size"
        )
    if len({int(d) for d in table[:, 7]}) > 1:
        groups: dict[int, list[int]] = {}
        for r, d in enumerate(table[:, 7]):
            groups.setdefault(int(d), []).append(r)
        alike = " | ".join(_ranks_text(ranks) for ranks in groups.values())
        raise CheckpointError(
            f"TernaryCommState: the ranks hold different step counters (alike within: {alike}); "
            "resume every rank from a checkpoint of the same step"
        )


def _read_bucket(bucket: Any, state: Any) -> tuple[torch.Tensor, int, bool]:
    """``(buffer, index, is_last)`` of a GradBucket, checked: a dense 1-D float tensor on CPU or CUDA, an index >= 0.

    Raises
    ------
    ConfigError
        ``state`` is not a TernaryCommState, ``bucket`` lacks the GradBucket
        methods, or its index is not a non-negative integer.
    DTypeError
        The buffer is not a dense float32/float16/bfloat16/float64 tensor.
    ShapeError
        The buffer is not 1-D.
    BackendError
        The buffer is on another device than CPU or CUDA.
    """
    if not isinstance(state, TernaryCommState):
        raise ConfigError(f"state: expected a TernaryCommState, got {type(state).__name__}")
    missing = [m for m in ("buffer", "index", "is_last") if not callable(getattr(bucket, m, None))]
    if missing:
        raise ConfigError(f"bucket: expected a torch.distributed.GradBucket, got {type(bucket).__name__} (no {', '.join(missing)}())")
    buf = bucket.buffer()
    if not isinstance(buf, torch.Tensor):
        raise DTypeError(f"bucket.buffer(): expected a torch.Tensor, got {type(buf).__name__}")
    if buf.layout != torch.strided or buf.dtype not in FLOAT_DTYPES:
        raise DTypeError(f"bucket.buffer(): expected a dense float32, float16, bfloat16 or float64 tensor, got {buf.dtype} ({buf.layout})")
    if buf.dim() != 1:
        raise ShapeError(f"bucket.buffer(): expected a 1-D tensor (DDP's flat bucket), got shape {tuple(buf.shape)}")
    if buf.device.type not in ("cpu", "cuda"):
        raise BackendError(f"bucket.buffer(): tensors on device {buf.device} are not supported (cpu and cuda are)")
    index = bucket.index()
    if isinstance(index, bool) or not isinstance(index, numbers.Integral) or index < 0:
        raise ConfigError(f"bucket.index(): expected a non-negative integer, got {index!r}")
    return buf, int(index), bool(bucket.is_last())


def _parameter_ids(bucket: Any) -> Optional[frozenset[int]]:
    """The identities of a DDP GradBucket's parameters (None for a stand-in bucket, which has no model)."""
    if not isinstance(bucket, dist.GradBucket):
        return None
    return frozenset(id(p) for p in bucket.parameters())


def _check_addressable(world: int, index: int) -> None:
    """ConfigError when the rank or bucket fields of ``tensor_index`` cannot hold ``world`` ranks or bucket ``index``."""
    if world > MAX_RANKS:
        raise ConfigError(f"ternary_comm_hook: {world} ranks; the counter layout addresses at most {MAX_RANKS}")
    if index >= MAX_BUCKETS:
        raise ConfigError(f"ternary_comm_hook: bucket index {index} exceeds the {MAX_BUCKETS} buckets the counter layout addresses")


def ternary_comm_hook(state: "TernaryCommState", bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """DDP communication hook: average gradients across ranks as stochastic trits plus per-chunk scales.

    Register with ``ddp_model.register_comm_hook(state, ternary_comm_hook)``.
    A rank sends, per bucket of ``n`` elements and ``K`` chunks, ``(W-1) (4 K +
    ceil(n / 4))`` bytes under the all-gather scheme and about ``0.75 (W-1) / W
    * n`` under the reduce-scatter scheme (:meth:`TernaryCommState.scheme_for`
    says which), against ``2 (W-1) / W * 4 n`` for an fp32 all-reduce; buckets below
    ``state.min_compress_numel`` elements use the ordinary all-reduce.  Works
    with gloo (CPU tensors) and NCCL (CUDA tensors, with cupy installed).
    float16/bfloat16/float64 buckets are quantized in float32 and written back
    in their own dtype.

    Parameters
    ----------
    state : TernaryCommState
    bucket : torch.distributed.GradBucket

    Returns
    -------
    torch.futures.Future
        Completes with the bucket's buffer holding the averaged gradient.

    Examples
    --------
    >>> import torch
    >>> from torch.nn.parallel import DistributedDataParallel as DDP
    >>> ddp = DDP(model)  # doctest: +SKIP
    >>> ddp.register_comm_hook(TernaryCommState(seed=0), ternary_comm_hook)  # doctest: +SKIP
    """
    buf, index, last = _read_bucket(bucket, state)
    group, world, rank = _resolve_group(state.process_group)
    n = buf.numel()
    compress = n >= state.min_compress_numel
    if compress:
        _check_addressable(world, index)
    be = state._backend(buf.device) if compress else None
    params = _parameter_ids(bucket)
    state._check_model(params)
    state._agree(group, world, rank, buf.device)
    # everything is validated: from here on the state changes
    state._note_model(params, last)
    if last:
        state._n_steps += 1
    state._world = world
    state._n_elements += n
    state._fp32_bytes += _ring_allreduce(4 * n, world)
    if not compress:
        return _all_reduce_mean(state, buf, group, world)
    x, residual = _inputs(state, buf, index, be)
    step = state._next_step(index)
    scheme = _reduce_scatter if state.scheme_for(n, world) == "reduce_scatter" else _all_gather
    return scheme(state, buf, x, residual, be, group, world, rank, index, step, state._chunk_of(n))


def _all_reduce_mean(state: "TernaryCommState", buf: torch.Tensor, group: Any, world: int) -> torch.futures.Future[torch.Tensor]:
    """A bucket below ``min_compress_numel``: an all-reduce in the bucket's dtype, divided by ``W``."""
    state._n_fallback += 1
    state._bytes += _ring_allreduce(buf.element_size() * buf.numel(), world)
    fut = dist.all_reduce(buf, group=group, async_op=True).get_future()

    def _mean(f: torch.futures.Future) -> torch.Tensor:
        return f.value()[0].div_(world)

    return fut.then(_mean)


def _inputs(state: "TernaryCommState", buf: torch.Tensor, index: int, be: Any) -> tuple[Any, Any]:
    """``(x, residual)``: the bucket as a contiguous float32 array, and under error feedback the bucket's residual (None when it has none of this size)."""
    t = buf.detach()
    x = be.xp.ascontiguousarray(to_array(t if t.dtype == torch.float32 else t.to(torch.float32)))
    residual = state._residuals.get(index) if state.error_feedback else None
    if residual is None or residual.shape[0] != x.shape[0]:
        return x, None
    if not be.owns(residual):  # loaded from a checkpoint: host arrays until first used
        residual = be.xp.asarray(residual)
    return x, residual


def _payload_scales(bits: Any, xp: Any) -> Any:
    """The float32 scales the all-gather scheme sends: ``f32_from_bits(B[c])``, NaN (``0x7FC00000``) for a non-finite chunk."""
    return xp.where(bits >= F32_INF_BITS, 0x7FC00000, bits).astype(xp.int32).view(xp.float32)


def _all_gather(
    state: "TernaryCommState", buf: torch.Tensor, x: Any, residual: Any, be: Any, group: Any, world: int, rank: int, index: int,
    step: int, chunk: int,
) -> torch.futures.Future[torch.Tensor]:
    """The all-gather scheme: every rank's packed trits and scales to every rank, decoded in rank order.

    One fused pass encodes the bucket (:func:`vsaopt.backends.numpy.comm.comm_encode`:
    per chunk the scale, the trits, their packing and the residual) and one
    decodes every rank's payload into the bucket.
    """
    xp = be.xp
    n = x.shape[0]
    nchunks = -(-n // chunk)
    start = time.perf_counter()
    packed, bits, kept = be.comm_encode(
        x, residual, None, chunk, -(-n // 4), state.seed, COMM_HOOK_STREAM, step, (rank << 20) | (index << 10), state.error_feedback
    )
    if state.error_feedback:
        state._residuals[index] = kept
    payload = xp.concatenate([_payload_scales(bits, xp).view(xp.uint8), packed])  # scales first: aligned float32 view
    state._seconds["encode"] += time.perf_counter() - start
    send = from_array(payload)
    state._n_compressed += 1
    state._bytes += _ring_allgather(int(send.numel()), world)
    rows = torch.empty((world, send.numel()), dtype=send.dtype, device=send.device)
    work = dist.all_gather(list(rows.unbind(0)), send, group=group, async_op=True)

    def _decode(f: torch.futures.Future) -> torch.Tensor:
        f.wait()
        start = time.perf_counter()
        direct, out = _output(buf, n, xp)
        payloads = to_array(rows)
        scales = xp.ascontiguousarray(payloads[:, : 4 * nchunks]).view(xp.float32)
        if not be.comm_decode_trits(payloads, 4 * nchunks, scales, chunk, out):
            raise EncodingError("packed: malformed 2bit data (invalid code or nonzero padding)")
        result = _write_back(buf, direct, out)
        state._seconds["decode"] += time.perf_counter() - start
        return result

    return work.get_future().then(_decode)


def _output(buf: torch.Tensor, n: int, xp: Any) -> tuple[bool, Any]:
    """Where to decode: the bucket itself when it is contiguous float32 (the encoder has consumed its values), else a new array."""
    direct = buf.dtype == torch.float32 and buf.is_contiguous()
    return direct, to_array(buf).reshape(-1) if direct else xp.empty(n, dtype=xp.float32)


def _write_back(buf: torch.Tensor, direct: bool, acc: Any) -> torch.Tensor:
    if not direct:
        buf.copy_(from_array(acc).view(buf.shape))
    return buf


def _reduce_scatter(
    state: "TernaryCommState", buf: torch.Tensor, x: Any, residual: Any, be: Any, group: Any, world: int, rank: int, index: int,
    step: int, chunk: int,
) -> torch.futures.Future[torch.Tensor]:
    """The reduce-scatter scheme (:mod:`vsaopt.torch.trit_reduce_scatter`): scale MAX, all-to-all of trits, all-gather of nibbles.

    The first two collectives complete inside this call and only the last one
    is left in flight, so every rank issues every bucket's collectives in the
    same order whatever the order in which futures complete.
    """
    xp = be.xp
    n = x.shape[0]
    start = time.perf_counter()
    shared = from_array(rs.chunk_scale_bits(x, residual, chunk, be))  # where the bucket is: no host copy
    state._seconds["encode"] += time.perf_counter() - start
    dist.all_reduce(shared, op=dist.ReduceOp.MAX, group=group)
    bits = to_array(shared)
    start = time.perf_counter()
    base = (rank << 20) | (index << 10)
    packed, kept = rs.encode(x, residual, bits, chunk, world, be, state.seed, COMM_HOOK_STREAM, step, base, state.error_feedback)
    if state.error_feedback:
        state._residuals[index] = kept
    state._seconds["encode"] += time.perf_counter() - start
    send = from_array(packed)
    received = torch.empty_like(send)
    dist.all_to_all_single(received, send, group=group)
    start = time.perf_counter()
    shard = from_array(rs.reduce_shard(to_array(received), world, be, state.seed, step, base))
    state._seconds["reduce"] += time.perf_counter() - start
    rows = torch.empty((world, shard.numel()), dtype=shard.dtype, device=shard.device)
    work = dist.all_gather(list(rows.unbind(0)), shard, group=group, async_op=True)
    state._n_compressed += 1
    state._n_reduce_scatter += 1
    state._bytes += rs.reduce_scatter_bytes(n, -(-n // chunk), world)

    def _decode(f: torch.futures.Future) -> torch.Tensor:
        f.wait()
        start = time.perf_counter()
        direct, out = _output(buf, n, xp)
        rs.decode(to_array(rows).reshape(-1), n, bits, chunk, world, be, out)
        result = _write_back(buf, direct, out)
        state._seconds["decode"] += time.perf_counter() - start
        return result

    return work.get_future().then(_decode)
