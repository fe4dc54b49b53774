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
from .bench_tables import OWN_TABLES, fmt_seconds
from .bench_plots import write_accumulator_error_plot
from .options import POSITIVE, SafePath, check_memory, output_file, plot_file, wide_console_width, write_outputs
from .tables import print_table

console = Console(width=wide_console_width())

#: Bytes held per element of ``--size`` (inputs, outputs, uniforms, the reference's copies), per MAP vector
#: element and per parameter of the PREDICT step (its history window), rounded up.
BYTES_PER_ELEMENT = 32
BYTES_PER_MAP_ELEMENT = 16
BYTES_PER_PREDICT_PARAMETER = 64


def check_sizes(size: int, map_dim: int, map_count: int, predict_params: int) -> None:
    """Usage error naming the option whose measurement would not fit in the available memory."""
    check_memory(size * BYTES_PER_ELEMENT, "--size", f"{size:,} elements")
    check_memory(map_dim * map_count * BYTES_PER_MAP_ELEMENT, "--map-dim", f"{map_count:,} MAP vectors of dimension {map_dim:,}")
    check_memory(predict_params * BYTES_PER_PREDICT_PARAMETER, "--predict-params", f"a model of {predict_params:,} parameters")


def _comm_rows(ctx: dict, quick: bool) -> list[BenchRow]:
    """DDP hooks (fp32, fp16, PowerSGD rank 1 and 4, ternary) on 2 and 4 local gloo processes; rows go to their own tables (``ctx["comm"]``)."""
    try:
        from ..benchmarks.torch_comm_compare import comm_compare_benchmark
    except ImportError as exc:
        return [BenchRow("comm", "DDP comm hooks", "-", 0, 0.0, note=f"skipped: {exc}")]
    ctx["comm"] = comm_compare_benchmark(steps=5 if quick else 100, compute_repeats=3 if quick else 10)
    return []


def _fidelity(ctx: dict, quick: bool) -> list[BenchRow]:
    """Reconstruction fidelity of the compressor; the rows go to their own table (``ctx["fidelity"]``)."""
    from ..benchmarks.fidelity import fidelity_table

    ctx["fidelity"] = fidelity_table(ratios=(0.1,) if quick else (0.01, 0.03, 0.1, 0.3))
    return []


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


def _adapter_closed(ctx: dict, quick: bool, backend: str) -> list[BenchRow]:
    """The adapter's own cost with the gate closed, as a share of a plain torch step (``ctx["adapter_closed"]``)."""
    def run() -> list:
        from ..benchmarks.torch_gate_closed import gate_closed_cost

        return gate_closed_cost(quick=quick, backend=None if backend == "cupy" else backend)

    return _torch_tables(ctx, "adapter_closed", run)


def _time_to_accuracy(ctx: dict, quick: bool) -> list[BenchRow]:
    """Time to accuracy with torch on digits (``ctx["torch_time_to_accuracy"]``)."""
    def run() -> list:
        from ..benchmarks.torch_time_to_accuracy import time_to_accuracy

        return time_to_accuracy(quick=quick)

    return _torch_tables(ctx, "torch_time_to_accuracy", run)


def _predictor_memory(ctx: dict, quick: bool, backend: str) -> list[BenchRow]:
    """Predictor state per preset and history compression; the rows go to their own table (``ctx["predictor_memory"]``)."""
    from ..benchmarks.predictor_memory import predictor_memory_rows

    ctx["predictor_memory"] = predictor_memory_rows(steps=40 if quick else 200, backend=backend)
    return []


def _accumulator_error(ctx: dict, quick: bool, backend: str) -> list[BenchRow]:
    from ..benchmarks.accumulator_error import DEFAULT_MICRO_BATCHES, RULES, accumulator_error

    ctx["accumulator_error"] = accumulator_error((1, 8, 64, 512) if quick else DEFAULT_MICRO_BATCHES, rules=RULES, backend=backend)
    return []


#: The sections of ``vsaopt bench``, in the order they run (latency first: it is measured on a quiet process).
SECTIONS = ("latency", "bandwidth", "kernels", "reference", "map", "predict", "accumulator", "accumulator_error",
            "compressor", "fidelity", "comm", "adapter", "adapter_closed", "torch_time_to_accuracy", "predictor_memory")
#: Sections that draw a picture with ``--plot``.
PLOTTED = ("accumulator_error",)


def _sections(size: int, map_dim: int, map_count: int, latency_elements: int, predict_params: int, quick: bool,
              backend: str) -> dict[str, Callable[[dict], list[BenchRow]]]:
    """Section name -> function of a shared context (the copy bandwidth lives there)."""

    def bandwidth(ctx: dict) -> list[BenchRow]:
        ctx["bandwidth"], rows = kb.copy_bandwidth(size, backend)
        return rows

    table = {
        "latency": lambda ctx: kb.latency(latency_elements, backend),
        "bandwidth": bandwidth,
        "kernels": lambda ctx: kb.kernel_throughput(size, ctx["bandwidth"], backend),
        "reference": lambda ctx: kb.against_reference(size, backend),
        "map": lambda ctx: kb.map_algebra(map_dim, map_count, backend),
        "predict": lambda ctx: pb.predict_step(predict_params, ctx["bandwidth"], backend),
        "accumulator": lambda ctx: cb.accumulator_rows(size, ctx["bandwidth"], backend),
        "compressor": lambda ctx: cb.compressor_rows(backend),
        "fidelity": lambda ctx: _fidelity(ctx, quick),
        "comm": lambda ctx: _comm_rows(ctx, quick),
        "adapter": lambda ctx: _adapter(ctx, quick, backend),
        "adapter_closed": lambda ctx: _adapter_closed(ctx, quick, backend),
        "torch_time_to_accuracy": lambda ctx: _time_to_accuracy(ctx, quick),
        "predictor_memory": lambda ctx: _predictor_memory(ctx, quick, backend),
        "accumulator_error": lambda ctx: _accumulator_error(ctx, quick, backend),
    }
    return {name: table[name] for name in SECTIONS}


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
            "time/call": fmt_seconds(r.seconds), "G elem/s": f"{r.gelem_per_s:.2f}",
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
@click.option("--section", "only", multiple=True, type=click.Choice(SECTIONS),
              help="Run only these sections (repeatable; default: all).")
@click.option("--quick", is_flag=True, help="Small sizes: a smoke run, not figures to report.")
@click.option("--json", "json_path", type=SafePath(dir_okay=False, path_type=Path), callback=output_file, help="Also write every figure as JSON.")
@click.option("--plot", "plot_path", type=SafePath(dir_okay=False, path_type=Path), callback=plot_file,
              help=f"Also draw the picture of the sections that have one ({', '.join(PLOTTED)}) into this PNG.")
def bench(size: int, map_dim: int, map_count: int, latency_elements: int, predict_params: int, backend: str, only: tuple[str, ...], quick: bool,
          json_path: Path | None, plot_path: Path | None) -> None:
    """Measure kernels against memory bandwidth, backends against the numpy reference, and latency."""
    if quick:
        size, map_dim, map_count, latency_elements, predict_params = 2**18, 512, 256, 2**16, 2**18
    sections = _sections(size, map_dim, map_count, latency_elements, predict_params, quick, backend)
    if plot_path is not None and only and not set(only) & set(PLOTTED):
        raise click.BadParameter(f"no chosen section draws a picture (those that do: {', '.join(PLOTTED)})", param_hint="'--plot'")
    check_sizes(size, map_dim, map_count, predict_params)
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
            print_table(console, _table(name, rows))
    for key, (tables, _) in OWN_TABLES.items():
        for table in tables(ctx[key]) if ctx.get(key) else []:
            print_table(console, table)
    def json_text() -> str:
        doc: dict = {"vsaopt": __version__, "backend": backend, "machine": machine, "platform": platform.platform(), "size": size,
                     "sections": {k: [r.to_dict() for r in v] for k, v in results.items() if v}}
        doc["sections"].update({key: to_json(ctx[key]) for key, (_, to_json) in OWN_TABLES.items() if ctx.get(key)})
        return json.dumps(doc, indent=1)

    drawn = plot_path if ctx.get("accumulator_error") else None
    write_outputs(console, json_path, json_text, drawn, lambda p: write_accumulator_error_plot(ctx["accumulator_error"], p))
