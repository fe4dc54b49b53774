"""Run a function on several local processes joined in a gloo process group, with a hard time limit."""

from __future__ import annotations

import datetime
import os
import queue as queue_mod
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import BackendError, ConfigError

__all__ = ["run_local_processes", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago (bound to port 0, then released).

    Examples
    --------
    >>> 0 < free_port() < 65536
    True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _entry(fn: Callable[..., Any], rank: int, world: int, port: int, args: Sequence[Any], timeout: float, threads: int, results: Any) -> None:
    import torch
    import torch.distributed as dist

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(threads)
    try:
        dist.init_process_group(
            "gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=max(1.0, timeout))
        )
        try:
            out = fn(rank, world, *args)
        finally:
            if dist.is_initialized():  # fn may have destroyed the group itself
                dist.destroy_process_group()
        results.put((rank, True, out))
    except BaseException:  # reported to the parent, which raises
        results.put((rank, False, traceback.format_exc()))


def run_local_processes(
    fn: Callable[..., Any],
    world_size: int = 2,
    args: Sequence[Any] = (),
    *,
    timeout: float = 120.0,
    threads_per_process: int = 1,
) -> list[Any]:
    """Call ``fn(rank, world_size, *args)`` on ``world_size`` new processes joined by gloo on 127.0.0.1.

    The processes are started with the ``spawn`` method, meet through a free
    TCP port, and each one's return value (it must pickle) is collected.  All
    processes are ended (terminated, then killed) before this returns or
    raises, whatever happens.

    Parameters
    ----------
    fn : callable
        A module-level function (``spawn`` pickles it by reference).
    world_size : int >= 1
    args : sequence
        Extra arguments (picklable).
    timeout : float
        Seconds for the whole run, process start-up included.
    threads_per_process : int
        ``torch.set_num_threads`` in each process.

    Returns
    -------
    list
        ``fn``'s return values in rank order.

    Raises
    ------
    BackendError
        A process raised (its traceback is in the message), died, or the run
        exceeded ``timeout``.

    Examples
    --------
    >>> run_local_processes(my_function, 2, timeout=60)  # doctest: +SKIP
    """
    import torch.multiprocessing as mp

    if isinstance(world_size, bool) or not isinstance(world_size, int) or not 1 <= world_size <= 64:
        raise ConfigError(f"world_size: expected an int in [1, 64], got {world_size!r}")
    if not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigError(f"timeout: expected a positive number of seconds, got {timeout!r}")
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = free_port()
    deadline = time.monotonic() + float(timeout)
    procs = [
        ctx.Process(target=_entry, args=(fn, r, world_size, port, tuple(args), float(timeout), threads_per_process, results), daemon=True)
        for r in range(world_size)
    ]
    out: dict[int, Any] = {}
    try:
        for p in procs:
            p.start()
        while len(out) < world_size:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BackendError(f"run_local_processes: no result from ranks {sorted(set(range(world_size)) - set(out))} within {timeout} s")
            try:
                rank, ok, value = results.get(timeout=min(left, 1.0))
            except queue_mod.Empty:
                dead = [r for r, p in enumerate(procs) if r not in out and p.exitcode is not None]
                if dead:
                    # a result may still be in flight; give it a moment, then give up
                    try:
                        rank, ok, value = results.get(timeout=2.0)
                    except queue_mod.Empty:
                        codes = {r: procs[r].exitcode for r in dead}
                        raise BackendError(f"run_local_processes: ranks exited without a result (exit codes {codes})") from None
                else:
                    continue
            if not ok:
                errors = {rank: value}
                # the other ranks usually fail in turn (a peer left); report every traceback
                grace = time.monotonic() + 3.0
                while len(errors) + len(out) < world_size and time.monotonic() < grace:
                    try:
                        r2, ok2, v2 = results.get(timeout=max(0.05, grace - time.monotonic()))
                    except queue_mod.Empty:
                        break
                    if not ok2:
                        errors[r2] = v2
                text = "\n".join(f"rank {r} raised:\n{tb}" for r, tb in sorted(errors.items()))
                raise BackendError(f"run_local_processes: {len(errors)} rank(s) failed\n{text}")
            out[rank] = value
        for p in procs:
            p.join(timeout=max(0.1, min(10.0, deadline - time.monotonic())))
        return [out[r] for r in range(world_size)]
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            if p.pid is not None:
                p.join(timeout=5.0)
            if p.is_alive():
                p.kill()
                p.join(timeout=5.0)
        results.close()
        results.join_thread()
