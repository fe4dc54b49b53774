"""Bytes on the wire and time per step of :func:`~vsaopt.torch.ternary_comm_hook` against DDP's fp32 all-reduce.

:func:`comm_hook_benchmark` starts local processes joined by gloo on
127.0.0.1 (:func:`~vsaopt.torch.launch.run_local_processes`), trains the same
MLP on synthetic data with DistributedDataParallel, once with DDP's own fp32
all-reduce and once with the ternary hook, and returns plain data.  Needs
the ``torch`` extra: importing this module imports torch, so
:mod:`vsaopt.benchmarks` and ``vsaopt bench`` import it only for the comm section.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from ..errors import ConfigError
from ..torch.launch import run_local_processes  # raises TorchUnavailableError (an ImportError) without torch

__all__ = ["comm_hook_benchmark"]


def _model(widths: tuple[int, ...], seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    layers: list[Any] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def _bench_worker(rank: int, world: int, cfg: dict) -> dict:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from ..torch.comm_hook import TernaryCommState, ternary_comm_hook

    widths = tuple(cfg["widths"])
    gen = torch.Generator().manual_seed(cfg["seed"] * 1000 + rank)
    x = torch.randn(cfg["batch_size"], widths[0], generator=gen)
    y = torch.randint(0, widths[-1], (cfg["batch_size"],), generator=gen)
    out: dict = {}
    for mode in ("fp32", "ternary"):
        model = _model(widths, cfg["seed"])
        ddp = DDP(model)
        state = None
        if mode == "ternary":
            state = TernaryCommState(
                seed=cfg["seed"], error_feedback=cfg["error_feedback"], chunk_size=cfg["chunk_size"], backend=cfg["backend"]
            )
            ddp.register_comm_hook(state, ternary_comm_hook)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.01)
        times = []
        loss = None
        for step in range(cfg["warmup"] + cfg["steps"]):
            if step == cfg["warmup"]:
                dist.barrier()
                if state is not None:
                    state.reset_stats()
            t0 = time.perf_counter()
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(ddp(x), y)
            loss.backward()
            opt.step()
            if step >= cfg["warmup"]:
                times.append(time.perf_counter() - t0)
        n = sum(p.numel() for p in model.parameters())
        if state is None:
            nbytes = 2 * (world - 1) * 4 * n / world  # ring all-reduce of every gradient, fp32
        else:
            nbytes = state.stats().bytes_per_step
        out[mode] = {
            "bytes_per_step": float(nbytes),
            "seconds_per_step": statistics.median(times),
            "mean_seconds_per_step": statistics.fmean(times),
            "final_loss": float(loss.item()) if loss is not None else float("nan"),
            "parameters": int(n),
        }
        if state is not None:
            out[mode]["stats"] = state.stats().to_dict()
    return out


def comm_hook_benchmark(
    *,
    steps: int = 30,
    warmup: int = 5,
    widths: tuple[int, ...] = (256, 1024, 1024, 10),
    batch_size: int = 64,
    world_size: int = 2,
    error_feedback: bool = False,
    chunk_size: int = 65536,
    backend: Any = None,
    seed: int = 0,
    timeout: float = 300.0,
) -> dict:
    """Measure the ternary DDP hook against the fp32 all-reduce on ``world_size`` local gloo processes.

    Each process trains an MLP with layer widths ``widths`` on its own
    synthetic batch, ``warmup`` untimed steps then ``steps`` timed ones (forward,
    backward with the exchange, SGD step), first with DDP's built-in fp32
    all-reduce, then with :func:`~vsaopt.torch.ternary_comm_hook`.  Each process
    uses one thread.

    Bytes are those each rank sends per step under ring algorithms (gloo's
    all-gather and all-reduce): ``2 (W-1)/W * 4 P`` for the fp32 all-reduce of
    ``P`` parameters, ``(W-1) * payload`` for the hook (see
    :class:`~vsaopt.torch.comm_hook.CommStats`).

    Returns
    -------
    dict
        ``world_size``, ``parameters``, ``widths``, ``batch_size``, ``steps``;
        ``fp32`` and ``ternary``: ``bytes_per_step``, ``seconds_per_step`` (median over
        the timed steps of the slowest rank), ``mean_seconds_per_step``, ``final_loss``,
        and for ``ternary`` the rank-0 :class:`~vsaopt.torch.comm_hook.CommStats` dict;
        ``bytes_ratio`` (fp32 / ternary) and ``time_ratio`` (ternary / fp32).

    Examples
    --------
    >>> r = comm_hook_benchmark(steps=10, widths=(64, 256, 10))  # doctest: +SKIP
    >>> r["bytes_ratio"] > 10  # doctest: +SKIP
    True
    """
    for name, v, lo in (("steps", steps, 1), ("warmup", warmup, 0), ("batch_size", batch_size, 1), ("world_size", world_size, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ConfigError(f"{name}: expected an int >= {lo}, got {v!r}")
    widths = tuple(widths)
    if len(widths) < 2 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise ConfigError(f"widths: expected at least two positive ints, got {widths!r}")
    cfg = {
        "steps": steps,
        "warmup": warmup,
        "widths": widths,
        "batch_size": batch_size,
        "error_feedback": bool(error_feedback),
        "chunk_size": int(chunk_size),
        "backend": backend,
        "seed": int(seed),
    }
    per_rank = run_local_processes(_bench_worker, world_size, (cfg,), timeout=timeout)
    res: dict = {
        "world_size": world_size,
        "parameters": per_rank[0]["fp32"]["parameters"],
        "widths": list(widths),
        "batch_size": batch_size,
        "steps": steps,
        "error_feedback": bool(error_feedback),
    }
    for mode in ("fp32", "ternary"):
        r0 = dict(per_rank[0][mode])
        r0["seconds_per_step"] = max(r[mode]["seconds_per_step"] for r in per_rank)
        r0["mean_seconds_per_step"] = max(r[mode]["mean_seconds_per_step"] for r in per_rank)
        r0.pop("parameters")
        res[mode] = r0
    t, f = res["ternary"], res["fp32"]
    res["bytes_ratio"] = f["bytes_per_step"] / t["bytes_per_step"] if t["bytes_per_step"] else float("inf")
    res["time_ratio"] = t["seconds_per_step"] / f["seconds_per_step"] if f["seconds_per_step"] else float("nan")
    return res
