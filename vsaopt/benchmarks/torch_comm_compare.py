"""The ternary DDP hook against what DDP users pick instead: fp32 all-reduce, ``fp16_compress_hook``, ``powerSGD_hook``.

:func:`comm_compare_benchmark` trains the same MLP on the bundled digits data
with DistributedDataParallel on ``W`` local gloo processes (127.0.0.1), once
per hook, and measures per hook: the bytes each rank hands to collectives per
step, the hook's compute time, the step time and the final test accuracy.  It
then models the step time on real links, ``local + hook compute + bytes /
bandwidth``, and extends it on paper to larger ``W`` with each hook's byte
formula (bandwidth only: per-message latency is not modeled).

Bytes are counted from the tensors passed to ``torch.distributed``'s
collectives, under ring algorithms: an all-reduce of ``S`` bytes sends ``2 (W-1)/W
S``, an all-gather of ``s`` bytes per rank ``(W-1) s``, an all-to-all of ``S`` bytes
``(W-1)/W S``.  Hook compute is the hook's time on a one-rank group of the same
process (its collectives are local copies there; the ternary hook uses the
scheme it uses at ``W``), and "local" is the step time with no exchange at all.
For the ternary hook the compute is also split into its stages (encode,
shard sums, decode: :class:`~vsaopt.torch.comm_hook.CommStats`), both on the
one-rank group and as measured inside the ``W``-process training run (per
step; there the ranks share the machine's cores).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from typing import Any

from ..errors import ConfigError
from ..torch.launch import run_local_processes  # raises TorchUnavailableError (an ImportError) without torch

__all__ = ["HOOKS", "LINK_GBITS", "MODEL_WORLDS", "STAGES", "comm_compare_benchmark", "modeled_bytes"]

#: Hooks compared, in table order.
HOOKS = ("fp32", "fp16", "powersgd1", "powersgd4", "ternary")
#: Link speeds of the modeled step times, Gbit/s.
LINK_GBITS = (1.0, 10.0, 100.0)
#: World sizes of the modeled figures (2 and 4 are also measured).
MODEL_WORLDS = (2, 4, 8, 16, 32, 64, 128, 256)


class _ByteCounter:
    """Counts the bytes this rank sends through ``torch.distributed`` collectives (ring algorithms)."""

    def __init__(self, world: int) -> None:
        self.world = world
        self.bytes = 0
        self.enabled = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        import torch.distributed as dist

        saved = dist.all_reduce, dist.all_gather, dist.all_to_all_single
        w = self.world

        def all_reduce(tensor: Any, *a: Any, **k: Any) -> Any:
            if self.enabled:
                self.bytes += 2 * (w - 1) * tensor.numel() * tensor.element_size() // w
            return saved[0](tensor, *a, **k)

        def all_gather(out: Any, tensor: Any, *a: Any, **k: Any) -> Any:
            if self.enabled:
                self.bytes += (w - 1) * tensor.numel() * tensor.element_size()
            return saved[1](out, tensor, *a, **k)

        def all_to_all_single(out: Any, tensor: Any, *a: Any, **k: Any) -> Any:
            if self.enabled:
                self.bytes += (w - 1) * tensor.numel() * tensor.element_size() // w
            return saved[2](out, tensor, *a, **k)

        setattr(dist, "all_reduce", all_reduce)
        setattr(dist, "all_gather", all_gather)
        setattr(dist, "all_to_all_single", all_to_all_single)
        try:
            yield
        finally:
            for name, fn in zip(("all_reduce", "all_gather", "all_to_all_single"), saved):
                setattr(dist, name, fn)


def _model(widths: tuple[int, ...], seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    layers: list[Any] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def _register(ddp: Any, hook: str, group: Any, cfg: dict, world: int) -> Any:
    """Register ``hook`` on ``ddp`` (communicating over ``group``); returns its state."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook

    from ..torch.comm_hook import TernaryCommState, ternary_comm_hook

    if hook == "fp32":
        ddp.register_comm_hook(group, default_hooks.allreduce_hook)
        return None
    if hook == "fp16":
        ddp.register_comm_hook(group, default_hooks.fp16_compress_hook)
        return None
    if hook.startswith("powersgd"):
        state = powerSGD_hook.PowerSGDState(
            process_group=group, matrix_approximation_rank=int(hook[8:]), start_powerSGD_iter=2, random_seed=cfg["seed"]
        )
        ddp.register_comm_hook(state, powerSGD_hook.powerSGD_hook)
        return state
    n = sum(p.numel() for p in ddp.module.parameters())
    probe = TernaryCommState(chunk_size=cfg["chunk_size"])
    tstate = TernaryCommState(
        group, seed=cfg["seed"], error_feedback=True, chunk_size=cfg["chunk_size"], backend=cfg["backend"], scheme=probe.scheme_for(n, world)
    )
    ddp.register_comm_hook(tstate, ternary_comm_hook)
    return tstate


#: Stages of the ternary hook's compute, as named in CommStats (``<stage>_seconds``).
STAGES = ("encode", "reduce", "decode")


def _stage_seconds(stats: Any) -> dict[str, float]:
    return {k: float(getattr(stats, f"{k}_seconds")) for k in STAGES}


def _train(hook: str, rank: int, world: int, group: Any, cfg: dict, data: tuple, counter: _ByteCounter | None) -> dict:
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP

    xtr, ytr, xte, yte = data
    x, y = xtr[rank::world], ytr[rank::world]
    model = _model(tuple(cfg["widths"]), cfg["seed"])
    ddp = DDP(model, process_group=group, bucket_cap_mb=25)
    state: Any = None
    if hook == "local":
        ddp.register_comm_hook(None, _no_exchange)
    else:
        state = _register(ddp, hook, group, cfg, world)
    opt = torch.optim.SGD(ddp.parameters(), lr=cfg["lr"], momentum=0.9)
    order = torch.Generator().manual_seed(cfg["seed"] + rank)
    perm = torch.randperm(x.shape[0], generator=order)
    b, times, pos = cfg["batch_size"], [], 0
    for step in range(cfg["warmup"] + cfg["steps"]):
        if pos + b > x.shape[0]:
            perm, pos = torch.randperm(x.shape[0], generator=order), 0
        idx = perm[pos : pos + b]
        pos += b
        if step == cfg["warmup"]:
            if counter is not None:
                counter.bytes, counter.enabled = 0, True
            if hook == "ternary":
                state.reset_stats()
        t0 = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(ddp(x[idx]), y[idx]).backward()
        opt.step()
        if step >= cfg["warmup"]:
            times.append(time.perf_counter() - t0)
    if counter is not None:
        counter.enabled = False
    with torch.no_grad():
        acc = float((model(xte).argmax(1) == yte).float().mean())
    out: dict[str, Any] = {"seconds_per_step": statistics.median(times), "accuracy": acc}
    if counter is not None:
        out["bytes_per_step"] = counter.bytes / cfg["steps"]
    if hook == "ternary":
        out["stage_seconds"] = {k: v / cfg["steps"] for k, v in _stage_seconds(state.stats()).items()}
    return out


def _no_exchange(state, bucket):  # type: ignore[no-untyped-def]  # DDP rejects a bucket annotation other than GradBucket
    """A hook that exchanges nothing: the step time without communication."""
    import torch

    fut: torch.futures.Future = torch.futures.Future()
    fut.set_result(bucket.buffer())
    return fut


class _Bucket:
    """A stand-in for ``torch.distributed.GradBucket`` over a flat buffer and parameter shapes."""

    def __init__(self, buffer: Any, shapes: list) -> None:
        self._buf, self._grads, pos = buffer, [], 0
        for s in shapes:
            k = 1
            for d in s:
                k *= d
            self._grads.append(buffer[pos : pos + k].view(s))
            pos += k

    def buffer(self) -> Any:
        return self._buf

    def index(self) -> int:
        return 0

    def is_last(self) -> bool:
        return True

    def gradients(self) -> list:
        return self._grads

    def parameters(self) -> list:
        return self._grads


def _hook_compute(hook: str, group: Any, cfg: dict, world: int, repeats: int) -> tuple[float, dict | None]:
    """Median seconds of one hook call to completion on the one-rank ``group`` (compute: the collectives are local).

    Also, for the ternary hook, the median seconds of each of its :data:`STAGES` per call (None for the others).
    """
    import torch
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook

    from ..torch.comm_hook import TernaryCommState, ternary_comm_hook

    model = _model(tuple(cfg["widths"]), cfg["seed"])
    shapes = [tuple(p.shape) for p in reversed(list(model.parameters()))]  # DDP's bucket order
    n = sum(p.numel() for p in model.parameters())
    grad = torch.randn(n, generator=torch.Generator().manual_seed(1)) * 0.01
    state: Any
    fn: Any
    if hook == "fp32":
        fn, state = default_hooks.allreduce_hook, group
    elif hook == "fp16":
        fn, state = default_hooks.fp16_compress_hook, group
    elif hook.startswith("powersgd"):
        fn = powerSGD_hook.powerSGD_hook
        state = powerSGD_hook.PowerSGDState(group, matrix_approximation_rank=int(hook[8:]), start_powerSGD_iter=2, random_seed=0)
    else:
        fn = ternary_comm_hook
        scheme = TernaryCommState(chunk_size=cfg["chunk_size"]).scheme_for(n, world)
        state = TernaryCommState(group, error_feedback=True, chunk_size=cfg["chunk_size"], backend=cfg["backend"], scheme=scheme)
    times = []
    stages: dict[str, list[float]] = {k: [] for k in STAGES}
    for k in range(repeats + 3):
        bucket = _Bucket(grad.clone(), shapes)
        before = _stage_seconds(state.stats()) if hook == "ternary" else {}
        t0 = time.perf_counter()
        fn(state, bucket).wait()  # a stand-in bucket: the hooks read only what _Bucket provides
        if k >= 3:  # PowerSGD compresses from its second iteration; numba compiles on first use
            times.append(time.perf_counter() - t0)
            for name, v in (_stage_seconds(state.stats()).items() if hook == "ternary" else ()):
                stages[name].append(v - before[name])
    return statistics.median(times), ({k: statistics.median(v) for k, v in stages.items()} if hook == "ternary" else None)


def _worker(rank: int, world: int, cfg: dict) -> dict:
    import torch.distributed as dist

    from ..torch.demo import load_digits_split

    data = load_digits_split(cfg["seed"])
    solo, _ = dist.new_subgroups(group_size=1)
    out: dict = {"hooks": {}}
    if rank == 0:  # compute-only figures, measured while the other ranks wait
        out["local_seconds"] = _train("local", 0, 1, solo, cfg, data, None)["seconds_per_step"]
        out["compute"] = {h: _hook_compute(h, solo, cfg, world, cfg["compute_repeats"]) for h in HOOKS}
    dist.barrier()
    counter = _ByteCounter(world)
    with counter.installed():
        for hook in HOOKS:
            dist.barrier()
            out["hooks"][hook] = _train(hook, rank, world, None, cfg, data, counter)
    return out


def modeled_bytes(hook: str, world: int, measured: dict[int, float], parameters: int, chunk_size: int = 65536) -> float:
    """Bytes per rank per step of ``hook`` at ``world`` ranks.

    All-reduce based hooks scale their measured bytes at the smallest measured
    world size by the ring factor ``2 (W-1)/W``; the ternary hook uses its
    scheme's formula (the smaller of all-gather and reduce-scatter).

    Examples
    --------
    >>> modeled_bytes("fp32", 4, {2: 4000.0}, 1000)
    6000.0
    """
    from ..torch import trit_reduce_scatter as rs
    from ..torch.comm_hook import TernaryCommState

    if hook == "ternary":
        k = len(TernaryCommState(chunk_size=chunk_size).chunk_bounds(parameters))
        return float(min(rs.reduce_scatter_bytes(parameters, k, world), rs.all_gather_bytes(parameters, k, world)))
    w0 = min(measured)
    return measured[w0] * ((world - 1) / world) / ((w0 - 1) / w0)


def comm_compare_benchmark(
    *,
    world_sizes: tuple[int, ...] = (2, 4),
    steps: int = 60,
    warmup: int = 3,
    widths: tuple[int, ...] = (64, 1024, 1024, 10),
    batch_size: int = 32,
    lr: float = 0.02,
    chunk_size: int = 65536,
    backend: Any = None,
    compute_repeats: int = 10,
    seed: int = 0,
    timeout: float = 300.0,
) -> dict:
    """Measure the ternary hook, fp32, fp16 and PowerSGD (rank 1 and 4) on ``W`` local gloo processes and model larger ``W``.

    Parameters
    ----------
    world_sizes : tuple of int
        Process counts measured (one launch each).
    steps, warmup : int
        Timed and untimed training steps per hook (SGD with momentum 0.9 at ``lr``,
        ``batch_size`` digits per rank and step).
    widths : tuple of int
        MLP layer widths (the default has 1.13 M parameters: one 25 MB bucket).
    chunk_size, backend
        Of :class:`~vsaopt.torch.comm_hook.TernaryCommState` (error feedback on).
    compute_repeats : int
        Hook calls timed for the compute figures.

    Returns
    -------
    dict
        ``parameters``; ``measured[W][hook]``: ``bytes_per_step``, ``seconds_per_step``
        (median over timed steps, slowest rank), ``accuracy`` (rank 0, digits test split),
        ``compute_seconds`` and ``compute_ns_per_parameter``, and for the ternary hook
        ``compute_stages`` (median seconds per call of each of :data:`STAGES` on the
        one-rank group) and ``run_stage_seconds`` (mean seconds per step of each stage in
        the training run, slowest rank); ``local_seconds[W]``; ``formula_bytes[W]`` (the ternary
        formula at the measured ``W``); ``modeled[W][hook]``: ``bytes``, ``ratio`` (fp32 bytes
        over the hook's) and ``seconds`` at each of :data:`LINK_GBITS`.

    Examples
    --------
    >>> r = comm_compare_benchmark(world_sizes=(2,), steps=5)  # doctest: +SKIP
    >>> r["modeled"][256]["ternary"]["ratio"] > 6  # doctest: +SKIP
    True
    """
    for name, v, lo in (("steps", steps, 1), ("warmup", warmup, 0), ("batch_size", batch_size, 1), ("compute_repeats", compute_repeats, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ConfigError(f"{name}: expected an int >= {lo}, got {v!r}")
    if not world_sizes or any(isinstance(w, bool) or not isinstance(w, int) or not 2 <= w <= 16 for w in world_sizes):
        raise ConfigError(f"world_sizes: expected ints in [2, 16], got {world_sizes!r}")
    cfg = {"steps": steps, "warmup": warmup, "widths": tuple(widths), "batch_size": batch_size, "lr": float(lr),
           "chunk_size": int(chunk_size), "backend": backend, "compute_repeats": compute_repeats, "seed": int(seed)}
    params = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
    measured: dict = {}
    local: dict = {}
    for w in world_sizes:
        per_rank = run_local_processes(_worker, w, (cfg,), timeout=timeout)
        local[w] = per_rank[0]["local_seconds"]
        measured[w] = {}
        for hook in HOOKS:
            r0 = per_rank[0]["hooks"][hook]
            seconds, stages = per_rank[0]["compute"][hook]
            measured[w][hook] = {
                "bytes_per_step": r0["bytes_per_step"],
                "seconds_per_step": max(r["hooks"][hook]["seconds_per_step"] for r in per_rank),
                "accuracy": r0["accuracy"],
                "compute_seconds": seconds,
                "compute_ns_per_parameter": 1e9 * seconds / params,
            }
            if stages is not None:
                measured[w][hook]["compute_stages"] = stages
                measured[w][hook]["run_stage_seconds"] = {
                    k: max(r["hooks"][hook]["stage_seconds"][k] for r in per_rank) for k in STAGES
                }
    formula = {w: modeled_bytes("ternary", w, {}, params, chunk_size) for w in world_sizes}
    w0 = min(world_sizes)
    modeled: dict = {}
    for w in sorted(set(MODEL_WORLDS) | set(world_sizes)):
        modeled[w] = {}
        fp32 = modeled_bytes("fp32", w, {w0: measured[w0]["fp32"]["bytes_per_step"]}, params)
        for hook in HOOKS:
            nbytes = modeled_bytes(hook, w, {w0: measured[w0][hook]["bytes_per_step"]}, params, chunk_size)
            compute = measured[w if w in measured else max(world_sizes)][hook]["compute_seconds"]
            modeled[w][hook] = {
                "bytes": nbytes,
                "ratio": fp32 / nbytes if nbytes else float("inf"),
                "seconds": {g: local[w0] + compute + 8 * nbytes / (g * 1e9) for g in LINK_GBITS},
            }
    return {"parameters": params, "measured": measured, "local_seconds": local, "formula_bytes": formula, "modeled": modeled,
            "steps": steps, "batch_size": batch_size, "widths": list(widths)}
