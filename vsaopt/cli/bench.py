"""``vsaopt bench``: run the measurements of :mod:`vsaopt.benchmarks` and format them."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from .. import __version__
from ..benchmarks import BenchRow
from ..benchmarks import compression as cb
from ..benchmarks import kernels as kb
from ..benchmarks import prediction as pb
from .options import POSITIVE, output_file

console = Console()


def _comm_rows(quick: bool) -> list[BenchRow]:
    """The DDP ternary comm hook against the fp32 all-reduce on 2 local gloo processes (needs torch)."""
    try:
        from ..benchmarks.torch_comm_hook import comm_hook_benchmark
    except ImportError as exc:
        return [BenchRow("comm", "ternary comm hook", "-", 0, 0.0, note=f"skipped: {exc}")]
    res = comm_hook_benchmark(steps=5 if quick else 30, warmup=2 if quick else 5)
    rows = []
    for mode in ("fp32", "ternary"):
        r = res[mode]
        rows.append(BenchRow("comm", f"{mode} all-reduce: {r['bytes_per_step']:,.0f} B sent per rank per step", "torch gloo x2",
                             res.get("parameters", 0), r["seconds_per_step"],
                             speedup=None if mode == "fp32" else res["fp32"]["seconds_per_step"] / r["seconds_per_step"],
                             note="" if mode == "fp32" else f"{res['bytes_ratio']:.1f}x fewer bytes; speedup = fp32 time / hook time"))
    return rows


def _fidelity(ctx: dict, quick: bool) -> list[BenchRow]:
    """Reconstruction fidelity of the compressor; the rows go to their own table (``ctx["fidelity"]``)."""
    from ..benchmarks.fidelity import fidelity_table

    ctx["fidelity"] = fidelity_table(ratios=(0.1,) if quick else (0.01, 0.03, 0.1, 0.3))
    return []


def _fidelity_table(rows: list) -> Table:
    table = Table(title="fidelity: cosine(g, decompress(compress(g)))", title_justify="left",
                  caption="dense = the crate's dense-projection formula 1/sqrt(1 + n/d) with float32 messages",
                  caption_justify="left")
    for col in ("gradient", "mode", "ratio", "params", "dim", "message B", "cosine", "rel L2", "predicted", "dense"):
        table.add_column(col, justify="left" if col in ("gradient", "mode") else "right")
    for r in rows:
        table.add_row(r.kind, r.mode, f"{r.compression_ratio:g}", f"{r.params:,}", f"{r.compressed_dim:,}",
                      f"{r.message_bytes:,}", f"{r.cosine:.3f}", f"{r.rel_l2:.3f}", f"{r.predicted_cosine:.3f}",
                      f"{r.dense_cosine:.3f}")
    return table


def _torch_tables(ctx: dict, key: str, run: Callable[[], list]) -> list[BenchRow]:
    """Run a torch benchmark whose rows go to their own table (``ctx[key]``); a missing torch/scikit-learn skips it."""
    try:
        ctx[key] = run()
    except ImportError as exc:
        console.print(f"[yellow]{key} skipped: {escape(str(exc))}[/]")
    return []


def _adapter(ctx: dict, quick: bool, backend: str) -> list[BenchRow]:
    """The PyTorch adapter's own cost per phase as a share of a plain torch step (``ctx["adapter"]``)."""
    def run() -> list:
        from ..benchmarks.torch_adapter import adapter_cost

        return adapter_cost(quick=quick, backend=None if backend == "cupy" else backend)

    return _torch_tables(ctx, "adapter", run)


def _adapter_table(rows: list) -> Table:
    table = Table(title="adapter: PhaseAccelerator's own time per phase / one plain torch step (forward + backward + SGD)",
                  title_justify="left", caption="one thread, modes interleaved step by step, medians; fixed presets "
                  "(risky_fixed) so every phase recurs; zero_grad() sets p.grad to None", caption_justify="left")
    for col in ("model", "params", "trainer", "phase", "steps", "plain step", "adapter", "share", "target"):
        table.add_column(col, justify="left" if col in ("model", "trainer", "phase") else "right")
    for r in rows:
        target = "" if r.target is None else f"<= {r.target:.0%}" + (" ok" if r.share <= r.target else " missed")
        table.add_row(r.model, f"{r.parameters:,}", r.trainer, r.phase, str(r.steps), _fmt_seconds(r.plain_seconds),
                      _fmt_seconds(r.adapter_seconds), f"{r.share:.1%}", target)
    return table


def _time_to_accuracy(ctx: dict, quick: bool) -> list[BenchRow]:
    """Time to accuracy with torch on digits (``ctx["torch_time_to_accuracy"]``)."""
    def run() -> list:
        from ..benchmarks.torch_time_to_accuracy import time_to_accuracy

        return time_to_accuracy(quick=quick)

    return _torch_tables(ctx, "torch_time_to_accuracy", run)


def _time_to_accuracy_table(rows: list) -> Table:
    r0 = rows[0]
    table = Table(title="torch_time_to_accuracy: small CNN on digits, time to plain torch's final accuracy - 0.5 points",
                  title_justify="left", caption=f"{r0.seeds} seed(s), medians; SGD momentum 0.9, lr {r0.lr:g} (grid-tuned for "
                  f"plain torch); {r0.steps} steps; one thread; PREDICT steps run no forward pass", caption_justify="left")
    for col in ("mode", "reached", "time to target", "backward to target", "backward passes", "final accuracy", "target"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    for r in rows:
        table.add_row(r.mode, f"{r.reached}/{r.seeds}", "-" if r.seconds_to_target is None else _fmt_seconds(r.seconds_to_target),
                      "-" if r.backward_to_target is None else f"{r.backward_to_target:g}", f"{r.backward_passes:g} / {r.steps}",
                      f"{r.final_accuracy:.3f}", f"{r.target:.3f}")
    return table


#: The torch sections whose rows print as their own table: ctx key -> table builder.
_TORCH_TABLES = {"adapter": _adapter_table, "torch_time_to_accuracy": _time_to_accuracy_table}


def _predictor_memory(ctx: dict, quick: bool, backend: str) -> list[BenchRow]:
    """Predictor state per preset and history compression; the rows go to their own table (``ctx["predictor_memory"]``)."""
    from ..benchmarks.predictor_memory import predictor_memory_rows

    ctx["predictor_memory"] = predictor_memory_rows(steps=40 if quick else 200, backend=backend)
    return []


def _predictor_memory_table(rows: list) -> Table:
    table = Table(title="predictor_memory: predictor state per parameter, and the cosine cost of compressing its history",
                  title_justify="left", caption_justify="left",
                  caption="gradients of an MLP (64-128-10) on digits, plain SGD, batch 1024; steps = steps at which both runs predicted; x fp32 = bytes over 4 bytes per parameter; "
                          "held = most bytes held at once; cos(f32) = with the float32-history prediction; cos(g) = with the real gradient")
    for col in ("preset", "history", "params", "held x fp32", "state_dict x fp32", "steps", "cos(f32)", "cos(g)", "f32 cos(g)"):
        table.add_column(col, justify="left" if col in ("preset", "history") else "right")
    for r in rows:
        table.add_row(r.preset, r.compression, f"{r.params:,}", f"{r.held_x_fp32:.3f}", f"{r.state_dict_x_fp32:.3f}",
                      str(r.compared), f"{r.cosine_vs_float32:.5f}", f"{r.cosine_vs_actual:.3f}", f"{r.float32_cosine_vs_actual:.3f}")
    return table


def _sections(size: int, map_dim: int, map_count: int, latency_elements: int, predict_params: int, quick: bool,
              backend: str) -> dict[str, Callable[[dict], list[BenchRow]]]:
    """Section name -> function of a shared context (the copy bandwidth lives there)."""

    def bandwidth(ctx: dict) -> list[BenchRow]:
        ctx["bandwidth"], rows = kb.copy_bandwidth(size, backend)
        return rows

    # Latency first: it is measured on a quiet process (see README, "Results").
    return {
        "latency": lambda ctx: kb.latency(latency_elements, backend),
        "bandwidth": bandwidth,
        "kernels": lambda ctx: kb.kernel_throughput(size, ctx["bandwidth"], backend),
        "reference": lambda ctx: kb.against_reference(size, backend),
        "map": lambda ctx: kb.map_algebra(map_dim, map_count, backend),
        "predict": lambda ctx: pb.predict_step(predict_params, ctx["bandwidth"], backend),
        "accumulator": lambda ctx: cb.accumulator_rows(size, ctx["bandwidth"], backend),
        "compressor": lambda ctx: cb.compressor_rows(backend),
        "fidelity": lambda ctx: _fidelity(ctx, quick),
        "comm": lambda ctx: _comm_rows(quick),
        "adapter": lambda ctx: _adapter(ctx, quick, backend),
        "torch_time_to_accuracy": lambda ctx: _time_to_accuracy(ctx, quick),
        "predictor_memory": lambda ctx: _predictor_memory(ctx, quick, backend),
    }


def _fmt_seconds(s: float) -> str:
    return f"{s * 1e3:.3f} ms" if s < 1 else f"{s:.3f} s"


def _table(section: str, rows: list[BenchRow]) -> Table:
    notes = {r.note for r in rows}
    shared = notes.pop() if len(notes) == 1 else None  # one note for all rows goes in the caption
    table = Table(title=section, title_justify="left", caption=shared and escape(shared), caption_justify="left")
    columns = ["measure", "backend", "elements", "time/call", "G elem/s"]
    if any(r.fraction_of_bandwidth is not None for r in rows):
        columns.append("of bandwidth")
    if any(r.speedup is not None for r in rows):
        columns.append("speedup")
    if shared is None:
        columns.append("note")
    for col in columns:
        table.add_column(col, justify="left" if col in ("measure", "backend", "note") else "right")
    for r in rows:
        cells = {
            "measure": r.name, "backend": r.backend, "elements": f"{r.elements:,}",
            "time/call": _fmt_seconds(r.seconds), "G elem/s": f"{r.gelem_per_s:.2f}",
            "of bandwidth": "" if r.fraction_of_bandwidth is None else f"{r.fraction_of_bandwidth:.2f}",
            "speedup": "" if r.speedup is None else f"{r.speedup:.1f}x", "note": r.note,
        }
        table.add_row(*(escape(cells[c]) for c in columns))
    return table


@click.command()
@click.option("--size", type=POSITIVE, default=2**26, show_default=True, help="Elements for the throughput figures (64 M: past the L3 cache).")
@click.option("--map-dim", type=POSITIVE, default=10_000, show_default=True, help="Dimension D of the MAP vectors.")
@click.option("--map-count", type=POSITIVE, default=10_000, show_default=True, help="Number N of MAP vectors.")
@click.option("--latency-elements", type=POSITIVE, default=kb.LATENCY_ELEMENTS, show_default=True, help="Tensor size for per-call latency.")
@click.option("--predict-params", type=POSITIVE, default=pb.MODEL_PARAMS, show_default=True, help="Model size for the PREDICT step.")
@click.option("--backend", type=click.Choice(["numba", "numpy", "cupy"]), default="numba", show_default=True,
              help="Backend measured (against the numpy reference and the copy bandwidth of its device).")
@click.option("--section", "only", multiple=True, help="Run only these sections (repeatable).")
@click.option("--quick", is_flag=True, help="Small sizes: a smoke run, not figures to report.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), callback=output_file, help="Also write every figure as JSON.")
def bench(size: int, map_dim: int, map_count: int, latency_elements: int, predict_params: int, backend: str, only: tuple[str, ...], quick: bool,
          json_path: Path | None) -> None:
    """Measure kernels against memory bandwidth, backends against the numpy reference, and latency."""
    if quick:
        size, map_dim, map_count, latency_elements, predict_params = 2**18, 512, 256, 2**16, 2**18
    sections = _sections(size, map_dim, map_count, latency_elements, predict_params, quick, backend)
    unknown = sorted(set(only) - set(sections))
    if unknown:
        raise click.BadParameter(f"unknown sections {unknown}; expected some of {list(sections)}", param_hint="--section")
    needs_bandwidth = {"kernels", "predict", "accumulator"}
    chosen = [s for s in sections if not only or s in only or (s == "bandwidth" and needs_bandwidth & set(only))]
    ctx: dict = {}
    results: dict[str, list[BenchRow]] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("benchmarking", total=len(chosen))
        for name in chosen:
            progress.update(task, description=f"benchmarking {name}")
            results[name] = sections[name](ctx)
            progress.advance(task)
    machine = f"{platform.machine()} {platform.processor() or ''}".strip()
    console.print(f"[bold]vsaopt {__version__} bench[/] of backend {backend} on {machine}, {size:,} elements")
    for name, rows in results.items():
        if rows:
            console.print(_table(name, rows))
    if "fidelity" in ctx:
        console.print(_fidelity_table(ctx["fidelity"]))
    if "predictor_memory" in ctx:
        console.print(_predictor_memory_table(ctx["predictor_memory"]))
    for key, make_table in _TORCH_TABLES.items():
        if ctx.get(key):
            console.print(make_table(ctx[key]))
    if json_path is not None:
        doc: dict = {"vsaopt": __version__, "backend": backend, "machine": machine, "platform": platform.platform(), "size": size,
               "sections": {k: [r.to_dict() for r in v] for k, v in results.items() if v}}
        for name in ("fidelity", "predictor_memory"):
            if name in ctx:
                doc["sections"][name] = [r.to_dict() for r in ctx[name]]
        for key in _TORCH_TABLES:
            if ctx.get(key):
                doc["sections"][key] = [r.to_dict() for r in ctx[key]]
        json_path.write_text(json.dumps(doc, indent=1))
        console.print(f"wrote {json_path}")
