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
``f32(acc / f32(W))``.  Because stochastic ternarization is unbiased,
``E[result] = mean_r x_r`` (up to the ``2**-24`` grid of the uniforms); the
same holds for the reduce-scatter scheme.
"""

import dataclasses
import numbers
from collections.abc import Callable
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist

from ..rng import Stream
from ..backend import to_host
from ..checkpoint import Checkpointable, Fields
from ..errors import CheckpointError, ConfigError, NonFiniteError
from ..ternary import pack, quantize_stochastic, unpack
from . import trit_reduce_scatter as rs
from ._dlpack import backend_for, from_array, to_array

__all__ = ["COMM_HOOK_STREAM", "SCHEMES", "CommStats", "TernaryCommState", "ternary_comm_hook", "MAX_RANKS", "MAX_BUCKETS", "MAX_CHUNKS"]

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
    """

    steps: int
    compressed_buckets: int
    fallback_buckets: int
    elements: int
    bytes_sent: int
    fp32_bytes: int
    world_size: int
    reduce_scatter_buckets: int = 0

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
        Philox key; use the same seed on every rank.
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

    def stats(self) -> CommStats:
        """Counters since construction or :meth:`reset_stats`."""
        return CommStats(
            self._n_steps, self._n_compressed, self._n_fallback, self._n_elements, self._bytes, self._fp32_bytes, self._world,
            self._n_reduce_scatter,
        )

    def residual(self, bucket_index: int) -> Optional[torch.Tensor]:
        """The error-feedback residual of a bucket (a float32 tensor sharing the state's memory), or None."""
        r = self._residuals.get(bucket_index)
        return None if r is None else from_array(r)

    def chunk_bounds(self, n: int) -> list[tuple[int, int]]:
        """The ``(start, stop)`` of each chunk of an ``n``-element bucket (one scale each).

        Examples
        --------
        >>> TernaryCommState(chunk_size=4).chunk_bounds(10)
        [(0, 4), (4, 8), (8, 10)]
        """
        size = max(self.chunk_size, -(-n // MAX_CHUNKS))
        return [(lo, min(lo + size, n)) for lo in range(0, n, size)]

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
        k = len(self.chunk_bounds(n))
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

    # --- state ---------------------------------------------------------------------

    def _config_dict(self) -> dict:
        return {"seed": self.seed, "error_feedback": self.error_feedback, "min_compress_numel": self.min_compress_numel, "chunk_size": self.chunk_size,
                "scheme": self.scheme}

    @classmethod
    def _config_from_dict(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ConfigError(f"config: expected an object, got {type(data).__name__}")
        return data

    def _identity(self) -> dict:
        return {}

    @classmethod
    def _construct(cls, identity: dict, config: Any, backend: Any) -> "TernaryCommState":
        return cls(backend=backend, **config)

    def export_state(self) -> tuple[dict, dict]:
        """``(header, arrays)``: per-bucket step counters and error-feedback residuals (``residual.<bucket>``).

        The process group, the backends and the byte counters are not state: a
        resumed job passes its own group and counts its own bytes.
        """
        arrays = {f"residual.{i}": to_host(r) for i, r in self._residuals.items()}
        return {"steps": {str(i): k for i, k in sorted(self._steps.items())}}, arrays

    def import_state(self, f: Fields) -> Callable[[], None]:
        """Validate a state of :meth:`export_state`; the returned function installs it."""
        raw = f.header.get("steps")
        if not isinstance(raw, dict) or len(raw) > MAX_BUCKETS or any(not (k.isdigit() and int(k) < MAX_BUCKETS) for k in raw):
            raise CheckpointError(f"{f.where}.steps: expected an object of at most {MAX_BUCKETS} bucket indices")
        counters = Fields(raw, {}, f"{f.where}.steps")
        steps = {int(k): counters.integer(k) for k in raw}
        residuals = {}
        for name in f.arrays:
            idx = name.removeprefix("residual.")
            f.require(name.startswith("residual.") and idx.isdigit() and int(idx) in steps, f"unexpected array {name!r}")
            residuals[int(idx)] = f.array(name, np.float32, (-1,))
        f.require(self.error_feedback or not residuals, "residuals without error feedback")

        def install() -> None:
            self._steps = steps
            self._residuals = residuals

        return install


def _encode(state: "TernaryCommState", v: Any, be: Any, rank: int, index: int, step: int) -> tuple[Any, Any, Any]:
    """Trits (int8), scales (float32, one per chunk) and the payload bytes of ``v`` (a flat float32 array)."""
    xp = be.xp
    bounds = state.chunk_bounds(v.shape[0])
    trits = xp.empty(v.shape[0], dtype=xp.int8)
    scales = xp.empty(len(bounds), dtype=xp.float32)
    base = (rank << 20) | (index << 10)
    for c, (lo, hi) in enumerate(bounds):
        try:
            t, s = quantize_stochastic(v[lo:hi], state.seed, COMM_HOOK_STREAM, step, base | c, backend=be)
        except NonFiniteError:
            # A non-finite chunk decodes to NaN on every rank (0 * NaN), so NaN/Inf
            # still reach the optimizer (e.g. AMP's GradScaler skips the step).
            t, s = xp.zeros(hi - lo, dtype=xp.int8), np.float32(np.nan)
        trits[lo:hi] = t
        scales[c] = s
    packed = pack(trits, "2bit", backend=be)
    payload = xp.concatenate([scales.view(xp.uint8), packed])  # scales first: aligned float32 view
    return trits, scales, payload


def _scaled(trits: Any, scales: Any, bounds: list, out: Any, xp: Any) -> Any:
    """``out[i] = f32(trits[i]) * scales[c(i)]`` (exact: a trit times a scale), chunk by chunk, into ``out``."""
    for c, (lo, hi) in enumerate(bounds):
        xp.multiply(trits[lo:hi], scales[c], out=out[lo:hi], dtype=xp.float32)
    return out


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
    group = state.process_group if state.process_group is not None else dist.group.WORLD
    world = dist.get_world_size(group)
    rank = dist.get_rank(group)
    buf = bucket.buffer()
    index = int(bucket.index())
    n = buf.numel()
    if bucket.is_last():
        state._n_steps += 1
    state._world = world
    state._n_elements += n
    state._fp32_bytes += _ring_allreduce(4 * n, world)

    if n < state.min_compress_numel:
        state._n_fallback += 1
        state._bytes += _ring_allreduce(buf.element_size() * n, world)
        fut = dist.all_reduce(buf, group=group, async_op=True).get_future()

        def _mean(f: torch.futures.Future) -> torch.Tensor:
            return f.value()[0].div_(world)

        return fut.then(_mean)

    if world > MAX_RANKS:
        raise ConfigError(f"ternary_comm_hook: {world} ranks; the counter layout addresses at most {MAX_RANKS}")
    if index >= MAX_BUCKETS:
        raise ConfigError(f"ternary_comm_hook: bucket index {index} exceeds the {MAX_BUCKETS} buckets the counter layout addresses")
    be = state._backend(buf.device)
    xp = be.xp
    x = buf.detach()
    x32 = x if x.dtype == torch.float32 else x.to(torch.float32)
    v = to_array(x32)
    residual = state._residuals.get(index) if state.error_feedback else None
    if residual is not None and residual.shape[0] != n:
        residual = None
    if residual is not None:
        if not be.owns(residual):  # loaded from a checkpoint: host arrays until first used
            residual = xp.asarray(residual)
        v = v + residual
    step = state._next_step(index)
    bounds = state.chunk_bounds(n)
    if state.scheme_for(n, world) == "reduce_scatter":
        return _reduce_scatter(state, buf, v, be, group, world, rank, index, step, bounds)
    trits, scales, payload = _encode(state, v, be, rank, index, step)
    if state.error_feedback:
        _keep_residual(state, index, v, trits, scales, bounds, xp)
    send = from_array(payload)
    nbytes = int(send.numel())
    state._n_compressed += 1
    state._bytes += _ring_allgather(nbytes, world)
    gathered = [torch.empty_like(send) for _ in range(world)]
    work = dist.all_gather(gathered, send, group=group, async_op=True)
    npacked = -(-n // 4)
    nchunks = len(bounds)

    def _decode(f: torch.futures.Future) -> torch.Tensor:
        f.wait()
        direct, acc = _output(buf, n, xp)
        tmp = xp.empty(n, dtype=xp.float32) if world > 1 else acc
        for r_ in range(world):
            data = to_array(gathered[r_])
            s = data[: 4 * nchunks].view(xp.float32)
            t = unpack(data[4 * nchunks : 4 * nchunks + npacked], n, "2bit", backend=be)
            # acc = 0 + contribution is the contribution itself (scales are >= 0 or NaN: no -0.0 to lose)
            _scaled(t, s, bounds, acc if r_ == 0 else tmp, xp)
            if r_:
                xp.add(acc, tmp, out=acc)
        if world > 1:
            xp.divide(acc, xp.float32(world), out=acc)
        return _write_back(buf, direct, acc)

    return work.get_future().then(_decode)


def _keep_residual(state: "TernaryCommState", index: int, v: Any, trits: Any, scales: Any, bounds: list, xp: Any) -> None:
    """Error feedback: store ``v - scale * trits`` (non-finite entries zeroed) as the bucket's residual."""
    r = v - _scaled(trits, scales, bounds, xp.empty(v.shape[0], dtype=xp.float32), xp)
    r[~xp.isfinite(r)] = 0.0
    state._residuals[index] = r


def _output(buf: torch.Tensor, n: int, xp: Any) -> tuple[bool, Any]:
    """Where to decode: the bucket itself when it is contiguous float32 (the encoder has consumed its values), else a new array."""
    direct = buf.dtype == torch.float32 and buf.is_contiguous()
    return direct, to_array(buf).reshape(-1) if direct else xp.empty(n, dtype=xp.float32)


def _write_back(buf: torch.Tensor, direct: bool, acc: Any) -> torch.Tensor:
    if not direct:
        buf.copy_(from_array(acc).view(buf.shape))
    return buf


def _reduce_scatter(
    state: "TernaryCommState", buf: torch.Tensor, v: Any, be: Any, group: Any, world: int, rank: int, index: int, step: int, bounds: list
) -> torch.futures.Future[torch.Tensor]:
    """The reduce-scatter scheme (:mod:`vsaopt.torch.trit_reduce_scatter`): scale MAX, all-to-all of trits, all-gather of nibbles.

    The first two collectives complete inside this call and only the last one
    is left in flight, so every rank issues every bucket's collectives in the
    same order whatever the order in which futures complete.
    """
    xp = be.xp
    n = v.shape[0]
    local = rs.chunk_scale_bits(v, bounds, be)
    shared = torch.from_numpy(local).to(buf.device)
    dist.all_reduce(shared, op=dist.ReduceOp.MAX, group=group)
    bits = shared.cpu().numpy()
    base = (rank << 20) | (index << 10)
    trits, packed = rs.encode(v, bits, bounds, world, be, state.seed, COMM_HOOK_STREAM, step, base)
    if state.error_feedback:
        scales = xp.asarray(bits.astype(np.uint32).view(np.float32))
        _keep_residual(state, index, v, trits, scales, bounds, xp)
    send = from_array(packed)
    received = torch.empty_like(send)
    dist.all_to_all_single(received, send, group=group)
    shard = from_array(rs.reduce_shard(to_array(received), world, be, state.seed, step, (rank << 20) | (index << 10)))
    gathered = [torch.empty_like(shard) for _ in range(world)]
    work = dist.all_gather(gathered, shard, group=group, async_op=True)
    state._n_compressed += 1
    state._n_reduce_scatter += 1
    state._bytes += rs.reduce_scatter_bytes(n, len(bounds), world)

    def _decode(f: torch.futures.Future) -> torch.Tensor:
        f.wait()
        direct, out = _output(buf, n, xp)
        whole = xp.concatenate([to_array(g) for g in gathered])
        rs.decode(whole, n, bits, bounds, world, be, out)
        return _write_back(buf, direct, out)

    return work.get_future().then(_decode)
