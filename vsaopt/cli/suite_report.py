"""``vsaopt train --suite``: the progress bar, the tables and the plot of a :class:`~vsaopt.train.suite_results.SuiteResult`."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import __version__
from .options import write_outputs
from .tables import print_table

__all__ = ["DIVERGED_MARK", "MODE_COLORS", "machine_description", "settings_table", "summary_table", "write_suite_plot", "run_suite_command"]

#: Height (in tolerances) of the marker of a diverged run in the plot's drop panel.
DIVERGED_MARK = 50.0
#: Plot colour of every mode.
MODE_COLORS: dict[str, str] = {"baseline": "black", "phase": "tab:blue", "deterministic": "tab:green",
                               "skip": "tab:gray", "reuse": "tab:orange", "small_batch": "tab:purple"}


def machine_description() -> str:
    """Processor and Python version of this machine, for the results."""
    return f"{platform.machine()} {platform.processor() or ''}".strip() + f", Python {platform.python_version()}"


def _speed(x: float | None) -> str:
    return "not reached" if x is None else f"{x:.2f}x"


def _drop(x: float | None, metric: str) -> str:
    if x is None:
        return "diverged"
    return f"{x:+.2f} pt" if metric == "accuracy" else f"{x:+.1f} %"


def _share(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


def settings_table(suite: Any) -> Table:
    """One row per setting and mode: tuned lr, final metric, drop, skipped share, speedups, within tolerance (medians over seeds)."""
    seeds = suite.config.get("seeds", [])
    table = Table(title=f"Per setting (median over {len(seeds)} seeds): baseline lr tuned on a validation split of the "
                        "training data; drop = accuracy points / % of MSE worse than the baseline",
                  title_justify="left",
                  caption="pass x / wall x: speedup, baseline's cost to target / the mode's (target: baseline's final accuracy - 0.5 "
                          "points, or final MSE x 1.05), in pass units (forward 1, backward 2) and in wall time; "
                          "ok: drop within 1 point / 5 % of MSE", caption_justify="left")
    for col in ("setting", "lr", "mode", "final", "drop", "skipped", "pass x", "wall x", "ok"):
        table.add_column(col, justify="left" if col in ("setting", "mode") else "right", no_wrap=col in ("setting", "mode"))
    for s in suite.settings:
        for i, mode in enumerate(s.outcomes):
            final = s.median(mode, "final_metric")
            text = "diverged" if final is None else (f"{final * 100:.2f}%" if s.metric == "accuracy" else f"{final:.4f}")
            table.add_row(s.setting.label if i == 0 else "", f"{s.lr:g}" if i == 0 else "", mode, text,
                          _drop(s.median(mode, "metric_drop"), s.metric), _share(s.median(mode, "skipped_share")),
                          _speed(s.median(mode, "pass_speedup")), _speed(s.median(mode, "wall_speedup")),
                          "yes" if s.within_tolerance(mode) else "[red]no[/]", end_section=i == len(s.outcomes) - 1)
    return table


def summary_table(suite: Any) -> Table:
    """One row per mode over the matrix: median and worst speedups, worst drops, skipped share, settings within tolerance."""
    table = Table(title=f"Summary over {len(suite.settings)} settings (of the per-setting medians); "
                        "x: speedup to target; 'not reached' counts as the worst", title_justify="left")
    for col in ("mode", "pass x median", "pass x worst", "wall x median", "wall x worst",
                "worst acc drop", "worst MSE drop", "diverged", "skipped median", "within tol."):
        table.add_column(col, justify="left" if col == "mode" else "right", no_wrap=col == "mode")
    for mode, row in suite.summary().items():
        table.add_row(mode, _speed(row["pass_speedup_median"]), _speed(row["pass_speedup_worst"]),
                      _speed(row["wall_speedup_median"]), _speed(row["wall_speedup_worst"]),
                      _drop(row["accuracy_drop_worst"], "accuracy"), _drop(row["mse_drop_worst"], "mse"), row["diverged"],
                      _share(row["skipped_share_median"]), row["within_tolerance"])
    return table


def write_suite_plot(suite: Any, path: Path) -> None:
    """Per setting and mode: the metric drop (in tolerances), the share of backward passes skipped and the pass-unit speedup.

    The format follows the suffix of ``path``.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise click.UsageError("--plot needs matplotlib: pip install 'vsaopt[plot]'") from exc
    modes = [m for m in suite.modes if m != "baseline"]
    labels = [s.setting.label for s in suite.settings]
    n = len(labels)
    width = 0.8 / max(1, len(modes))
    fig, (ax_drop, ax_skip, ax_speed) = plt.subplots(3, 1, figsize=(max(10, 0.9 * n + 3), 11), sharex=True)
    for j, mode in enumerate(modes):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(n)]
        c = MODE_COLORS.get(mode)
        drops = [s.median(mode, "metric_drop") for s in suite.settings]
        ax_drop.bar(xs, [0.0 if d is None else d / s.tolerance for d, s in zip(drops, suite.settings)], width, color=c,
                    label=mode)
        gone = [x for x, d in zip(xs, drops) if d is None]
        if gone:  # diverged: a marker at the top
            ax_drop.scatter(gone, [DIVERGED_MARK] * len(gone), marker="v", color=c, s=60, zorder=3, edgecolors="black")
        ax_skip.bar(xs, [(s.median(mode, "skipped_share") or 0.0) * 100 for s in suite.settings], width, color=c, label=mode)
        speeds = [s.median(mode, "pass_speedup") for s in suite.settings]
        ax_speed.bar([x for x, v in zip(xs, speeds) if v is not None], [v for v in speeds if v is not None], width,
                     color=c, label=mode)
        missed = [x for x, v in zip(xs, speeds) if v is None]
        if missed:
            ax_speed.scatter(missed, [0.12] * len(missed), marker="x", color=c, s=30, zorder=3)
    ax_drop.axhline(1.0, color="red", ls="--", lw=1.0, label="tolerance (1 point / 5 % MSE)")
    ax_drop.axhline(0.0, color="black", lw=0.5)
    ax_drop.set_yscale("symlog", linthresh=1.0)
    ax_drop.set_ylim(top=max(ax_drop.get_ylim()[1], 2 * DIVERGED_MARK))
    ax_drop.set_ylabel("drop vs tuned baseline\n(in tolerances; above the red line: worse;\nv at the top: diverged)")
    ax_skip.set_ylabel("backward passes skipped (%)")
    ax_skip.set_ylim(0, 100)
    ax_speed.axhline(1.0, color="black", lw=0.8, ls="--")
    ax_speed.set_yscale("log")
    ax_speed.set_ylim(0.1, None)
    ax_speed.set_ylabel("pass-unit speedup to target\n(x at the bottom: not reached)")
    ax_speed.set_xticks(range(n))
    ax_speed.set_xticklabels(labels, rotation=35, ha="right", fontsize=8)
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    ax_speed.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # 0.1 0.2 0.5 1 2 5
    for ax in (ax_drop, ax_speed):
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    handles, names = ax_drop.get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=len(names), fontsize=8, bbox_to_anchor=(0.5, 0.965), frameon=False)
    for i in range(1, n):
        for ax in (ax_drop, ax_skip, ax_speed):
            ax.axvline(i - 0.5, color="gray", lw=0.3)
    seeds = suite.config.get("seeds", [])
    fig.suptitle(f"vsaopt train --suite: {n} settings, median over {len(seeds)} seeds, tuned baseline lr; {suite.machine}",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_suite_command(console: Console, *, seed: int, seeds: int, steps_scale: float, quick: bool, backend: str,
                      threads: int, interleave: int, phase_config: Any, deterministic_config: Any, preset: str,
                      json_path: Path | None, plot_path: Path | None, matmul: str = "ordered") -> None:
    """Run the suite (``quick``: the smoke matrix) with a progress bar, print its tables and write its JSON and plot."""
    from ..train.suite import run_suite
    from ..train.suite_matrix import LR_GRID, QUICK_LR_GRID, QUICK_MATRIX, SUITE_MATRIX

    machine = machine_description()
    matrix = QUICK_MATRIX if quick else SUITE_MATRIX
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("suite", total=len(matrix) * (1 + seeds))

        def report(done: int, total: int, text: str) -> None:
            progress.update(task, completed=done, total=total, description=text)

        suite = run_suite(matrix, [seed + i for i in range(seeds)], steps_scale=steps_scale,
                          lr_grid=QUICK_LR_GRID if quick else LR_GRID, backend=backend, threads=threads,
                          interleave=interleave, phase_config=phase_config, deterministic_config=deterministic_config,
                          matmul=matmul, on_progress=report, machine=machine)
    console.print(f"[bold]vsaopt {__version__} train --suite[/]{' --quick (smoke matrix, not an evaluation)' if quick else ''} "
                  f"on {machine}; backend {backend}, matmul {matmul}, preset {preset}, seeds {suite.config['seeds']}, "
                  f"lr grid {suite.config['lr_grid']}, step scale {steps_scale:g}")
    print_table(console, settings_table(suite), keys=3)
    print_table(console, summary_table(suite))
    write_outputs(console, json_path, suite.to_json, plot_path, lambda path: write_suite_plot(suite, path))
