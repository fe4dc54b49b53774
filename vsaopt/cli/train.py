"""``vsaopt train``: train an MLP on a bundled data set with and without phase training, and compare costs.

The default run trains one setting (the methods, the baseline and the ``skip``
control) and prints pass units, wall time and the share of backward passes
skipped; ``--suite`` runs the evaluation matrix of :mod:`vsaopt.train.suite`
(tuned baselines, every control, several seeds), reported by
:mod:`vsaopt.cli.suite_report`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import __version__
from ..errors import ConfigError
from ..phase import DeterministicPhaseConfig, PhaseConfig
from .options import (COUNT, POSITIVE, SEED, THREADS, BatchSize, FiniteFloat, HiddenWidths, SafePath, available_memory, output_file,
                      plot_file, wide_console_width, write_atomic, write_outputs)
from .options import refuse_given
from .tables import print_table

console = Console(width=wide_console_width())

_MODES = ("baseline", "phase", "deterministic", "skip", "reuse", "small_batch")  # vsaopt.train.MODES
_QUICK_MODES = ("baseline", "phase", "deterministic", "skip")  # vsaopt.train.QUICK_MODES
_DATASETS = ("digits", "wine", "breast_cancer", "iris", "diabetes")  # vsaopt.train.DATASETS
#: Per data set: (inputs, outputs) of its MLP, to size a model before loading anything.
DATASET_SHAPES: dict[str, tuple[int, int]] = {"digits": (64, 10), "wine": (13, 3), "breast_cancer": (30, 2), "iris": (4, 3),
                                              "diabetes": (10, 1)}
#: Bytes held per model parameter while training every mode (weights, momenta, gradients, predictor
#: histories; about 190 measured with --mode all), rounded up.
BYTES_PER_PARAMETER = 256
#: Bytes per step and sample of the batch schedule (int64 indices), and per step of the recorded curves.
BYTES_PER_BATCH_INDEX = 8
BYTES_PER_STEP = 1024
#: Option of each field of TrainSettings, and of each field of the phase configs, for error messages.
_SETTINGS_OPTIONS = {"steps": "--steps", "batch_size": "--batch-size", "lr": "--lr", "momentum": "--sgd-momentum",
                     "hidden": "--hidden", "loss_every": "--loss-every", "eval_every": "--eval-every",
                     "threads": "--threads", "interleave": "--interleave", "matmul": "--matmul"}
_PHASE_OPTIONS = {"full_steps": "--full-steps", "predict_steps": "--predict-steps", "correct_every": "--correct-every",
                  "adaptive_phases": "--adaptive", "loss_threshold": "--loss-threshold", "momentum": "--momentum-factor",
                  "correction_weight": "--correction-weight", "history_size": "--history-size",
                  "warmup_steps": "--warmup-steps", "history_window": "--history-window",
                  "history_decay": "--history-decay", "residual_threshold": "--residual-threshold"}

#: Per data set: batch size, learning rate and steps of the default run (see docs/training.md).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"batch_size": 256, "lr": 0.02, "steps": 600},
    "breast_cancer": {"batch_size": 128, "lr": 0.005, "steps": 400},
    "wine": {"batch_size": 32, "lr": 0.005, "steps": 400},
    "iris": {"batch_size": 16, "lr": 0.01, "steps": 400},
    "diabetes": {"batch_size": 32, "lr": 0.005, "steps": 400},
}


def _phase_options(f: Any) -> Any:
    """Options for the fields of the two phase configs (unset: the recommended presets' values)."""
    opts = [
        click.option("--preset", type=click.Choice(["recommended", "risky_fixed", "crate"]), default="recommended",
                     show_default=True,
                     help="Start from PhaseConfig/DeterministicPhaseConfig.recommended() (gated by the measured "
                          "predictability), their risky_fixed() (fixed schedules tuned on one setting) or the crate's defaults."),
        click.option("--full-steps", type=COUNT, help="FULL steps per cycle (both trainers)."),
        click.option("--predict-steps", type=COUNT, help="PREDICT steps per cycle (both trainers)."),
        click.option("--correct-every", type=POSITIVE, help="A CORRECT step after this many predicted steps (both trainers)."),
        click.option("--adaptive/--no-adaptive", "adaptive", default=None, help="Adaptive phase lengths (both trainers)."),
        click.option("--loss-threshold", type=FiniteFloat(), help="Loss rise that lengthens FULL (both trainers)."),
        click.option("--momentum-factor", type=FiniteFloat(), help="PhaseTrainer: extrapolation factor of the momentum predictor."),
        click.option("--correction-weight", type=FiniteFloat(), help="PhaseTrainer: weight of accumulated corrections."),
        click.option("--history-size", type=POSITIVE, help="PhaseTrainer: gradients kept by the momentum predictor."),
        click.option("--warmup-steps", type=COUNT, help="DeterministicPhaseTrainer: recorded gradients before predicting."),
        click.option("--history-window", type=COUNT, help="DeterministicPhaseTrainer: least-squares window (+2)."),
        click.option("--history-decay", type=FiniteFloat(), help="DeterministicPhaseTrainer: weight decay per step of age."),
        click.option("--residual-threshold", type=FiniteFloat(), help="DeterministicPhaseTrainer: |residual| that forces a CORRECT step."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def build_configs(preset: str, opts: dict[str, Any]) -> tuple[PhaseConfig, DeterministicPhaseConfig]:
    """The two phase configs from a preset and the command-line overrides (None: keep the preset's value).

    Examples
    --------
    >>> pc, dc = build_configs("crate", {"full_steps": 2})
    >>> pc.full_steps, dc.full_steps, pc.predict_steps == PhaseConfig().predict_steps
    (2, 2, True)
    """
    presets = {"recommended": (PhaseConfig.recommended, DeterministicPhaseConfig.recommended),
               "risky_fixed": (PhaseConfig.risky_fixed, DeterministicPhaseConfig.risky_fixed),
               "crate": (PhaseConfig, DeterministicPhaseConfig)}
    make_pc, make_dc = presets[preset]
    pc, dc = make_pc(), make_dc()
    shared = {"full_steps": "full_steps", "predict_steps": "predict_steps", "correct_every": "correct_every",
              "adaptive": "adaptive_phases", "loss_threshold": "loss_threshold"}
    common = {field: opts[o] for o, field in shared.items() if opts.get(o) is not None}
    pred = {field: opts[o] for o, field in (("momentum_factor", "momentum"), ("correction_weight", "correction_weight"),
                                            ("history_size", "history_size")) if opts.get(o) is not None}
    det = {o: opts[o] for o in ("warmup_steps", "history_window", "history_decay", "residual_threshold")
           if opts.get(o) is not None}
    pc = dataclasses.replace(pc, **common)
    if pred:
        pc = dataclasses.replace(pc, prediction_config=dataclasses.replace(pc.prediction_config, **pred))
    dc = dataclasses.replace(dc, **common, **det)
    return pc, dc


def _fmt_time(t: float | None) -> str:
    return "not reached" if t is None else f"{t:.3f}"


def _fmt_speed(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def fmt_metric(metric: str, value: float) -> str:
    """A test metric for a table: accuracy in percent, MSE as a number."""
    return f"{value * 100:.2f}%" if metric == "accuracy" else f"{value:.4f}"


def target_text(run: Any) -> str:
    """How the run's target is defined, with its value."""
    target = run.target_metric
    if run.metric == "accuracy":
        return f"target = baseline's final test accuracy - 0.5 points = {target * 100:.2f} %"
    return f"target = baseline's final test MSE x 1.05 = {target:.4f} (lower is better)"


def results_table(run: Any) -> Table:
    """The summary table of a :class:`~vsaopt.train.RunResult`."""
    table = Table(title=f"{run.settings['dataset']}, {run.settings['steps']} steps: {target_text(run)}", title_justify="left",
                  caption="bwd / fwd: backward / forward passes run; skip: share of steps without a backward pass; "
                          "units: pass units, forward 1 + backward 2 per mini-batch; wall s: training time (evaluations "
                          "excluded); final: test " + ("accuracy" if run.metric == "accuracy" else "MSE") + "; pass x / "
                          "wall x: speedup, the baseline's cost to target / the mode's, in pass units and in wall time",
                  caption_justify="left")
    for col in ("mode", "bwd", "fwd", "skip", "units", "wall s", "final", "to target s", "pass x", "wall x"):
        table.add_column(col, justify="left" if col == "mode" else "right", no_wrap=col == "mode")
    for mode, r in run.modes.items():
        table.add_row(mode, str(r.backward_passes), str(r.forward_passes), f"{r.backward_skipped_share * 100:.0f}%",
                      f"{r.pass_units:.0f}", f"{r.wall_seconds:.3f}", fmt_metric(r.metric, r.final_metric),
                      _fmt_time(run.time_to_target(mode)), _fmt_speed(run.pass_speedup(mode)), _fmt_speed(run.speedup(mode)))
    return table


def _telemetry_series(r: Any, key: str, xs: list[float]) -> tuple[list[float], list[float]]:
    """Positions (``xs``, one per step) and values of one telemetry field at the steps where it was measured."""
    pts = [(x, rec[key]) for x, rec in zip(xs, r.telemetry) if rec is not None and rec.get(key) is not None]
    return [p[0] for p in pts], [float(p[1]) for p in pts]


def _plot_telemetry(ax: Any, run: Any, colors: dict[str, str], positions: dict[str, list[float]]) -> list[Any]:
    """Prediction cosine and rho of the phase-trained modes; the gate's budget on a second axis.  Returns the legend entries."""
    budget_ax = ax.twinx()
    drawn = False
    top = 1
    for mode, r in run.modes.items():
        if not r.telemetry:
            continue
        c = colors.get(mode)
        # the noisy per-step cosine thin and light, its average (rho) bold
        for key, lw, alpha in (("prediction_cosine", 0.5, 0.35), ("rho", 1.8, 1.0)):
            ts, vs = _telemetry_series(r, key, positions[mode])
            if ts:
                ax.plot(ts, vs, lw=lw, color=c, label=f"{mode} {key.replace('_', ' ')}", alpha=alpha)
                drawn = True
        ts, vs = _telemetry_series(r, "predict_budget", positions[mode])
        if ts:
            budget_ax.step(ts, vs, where="post", lw=1.0, color=c, alpha=0.8, ls="--", label=f"{mode} predict budget")
            top = max(top, int(max(vs)))
    if not drawn:
        ax.text(0.5, 0.5, "no prediction telemetry recorded", ha="center", va="center", transform=ax.transAxes)
    ax.axhline(0.0, color="gray", lw=0.5)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("cosine (real-gradient steps)")
    budget_ax.set_ylabel("PREDICT steps allowed next\n(dashed)")
    budget_ax.set_ylim(-0.05 * top, 1.05 * top)
    budget_ax.yaxis.get_major_locator().set_params(integer=True)
    lines, names = ax.get_legend_handles_labels()
    more, more_names = budget_ax.get_legend_handles_labels()
    return list(zip(lines + more, names + more_names))


def telemetry_lines(run: Any, configs: dict[str, Any]) -> list[str]:
    """Per phase-trained mode: whether its gate is on, and the last prediction telemetry it measured."""
    lines = []
    for mode, r in run.modes.items():
        last = next((t for t in reversed(r.telemetry) if t is not None), None)
        if last is None:
            continue
        gate = "gated" if configs[mode].gate.enabled else "fixed schedule"
        parts = [f"{key.replace('_', ' ')} {last[key]:.3g}" for key in ("prediction_cosine", "rho", "quality")
                 if last.get(key) is not None]
        noise = last.get("noise_scale")
        parts.append("noise scale " + ("-" if noise is None else f"{noise:.3g} samples (batch {run.settings['batch_size']})"))
        parts.append(f"predict budget {last['predict_budget']}")
        lines.append(f"{mode} ({gate}), telemetry at step {last['step']}: " + ", ".join(parts))
    return lines


#: What ``--plot-x`` puts on the x axis: its label.
PLOT_X = {
    "passes": "cost in pass units (forward 1 + backward 2 per full mini-batch)",
    "steps": "training steps",
    "wall": "training wall-clock time (s, evaluations excluded)",
}


def _positions(r: Any, x: str) -> list[float]:
    """Where each step of a mode ends on the x axis: cumulative pass units, the step number, or wall-clock time."""
    if x == "wall":
        return list(r.time)
    if x == "steps":
        return [float(k + 1) for k in range(len(r.phase))]
    units, total = [], 0.0
    for fwd, bwd in zip(r.forward, r.backward):
        total += (int(fwd) + 2 * int(bwd)) * r.batch_fraction
        units.append(total)
    return units


def _at_steps(xs: list[float], steps: list[int]) -> list[float]:
    """Positions after ``steps`` steps (0 steps: the origin)."""
    return [0.0 if k == 0 else xs[min(k, len(xs)) - 1] for k in steps]


def write_plot(run: Any, path: Path, x: str = "passes") -> None:
    """Plot of mini-batch loss, test metric, the steps without a backward pass and the prediction telemetry (format from the suffix).

    Four panels over one x axis (``x``: pass units, steps or wall-clock time,
    :data:`PLOT_X`): the measured mini-batch losses; the test metric with the
    target; one row per phase-trained mode marking its PREDICT and CORRECT
    steps; the telemetry (prediction cosine, rho, the gate's budget).  Legends
    sit beside the panels, outside the data.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise click.UsageError("--plot needs matplotlib: pip install 'vsaopt[plot]'") from exc
    phased = [m for m in run.modes if m in ("phase", "deterministic")]
    fig, (ax_loss, ax_acc, ax_rug, ax_tel) = plt.subplots(
        4, 1, figsize=(12, 11.5), sharex=True,
        gridspec_kw={"height_ratios": [1, 1, 0.12 + 0.1 * max(1, len(phased)), 0.8]})
    colors = {"baseline": "black", "phase": "tab:blue", "deterministic": "tab:green", "skip": "tab:gray",
              "reuse": "tab:orange", "small_batch": "tab:purple"}
    accuracy = run.metric == "accuracy"
    scale = 100.0 if accuracy else 1.0
    positions = {mode: _positions(r, x) for mode, r in run.modes.items()}
    for mode, r in run.modes.items():
        c = colors.get(mode, None)
        pts = [(t, v) for t, v in zip(positions[mode], r.loss) if v is not None]
        if pts:
            ax_loss.plot([p[0] for p in pts], [p[1] for p in pts], lw=0.8, color=c, label=mode, alpha=0.8)
        evals = r.eval_time if x == "wall" else _at_steps(positions[mode], r.eval_step)
        ax_acc.plot(evals, [a * scale for a in r.eval_metric], lw=1.2, color=c, label=mode)
    target = run.target_metric
    if target is not None:
        ax_acc.axhline(target * scale, ls="--", color="red", lw=0.8, label="target")
    if accuracy:
        finals = [r.eval_metric[-1] * scale for r in run.modes.values() if r.eval_metric]
        top = max(finals + ([target * scale] if target is not None else []))
        ax_acc.set_ylim(max(0.0, min(finals) - max(2.0, 1.5 * (100.0 - top))), min(100.5, top + 0.25 * (100.0 - top) + 0.5))
    else:
        ax_acc.set_yscale("log")
        plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")  # 0.6 rather than 6 x 10^-1
        ax_acc.yaxis.set_major_formatter(plain)
        ax_acc.yaxis.set_minor_formatter(plain)
    # one row per phase-trained mode: where it predicted (no backward pass) and where it corrected
    for row, mode in enumerate(phased):
        r = run.modes[mode]
        for label, marker in (("PREDICT", "|"), ("CORRECT", "x")):
            ts = [t for t, p in zip(positions[mode], r.phase) if p == label]
            if ts:
                ax_rug.scatter(ts, [row] * len(ts), marker=marker, s=40, color=colors[mode], linewidths=0.8,
                               label=f"{mode} {label} steps")
    ax_rug.set_yticks(range(len(phased)), phased)
    ax_rug.set_ylim(-0.6, max(1, len(phased)) - 0.4)
    ax_rug.set_ylabel("steps without\nbackward", fontsize=8)
    tel_entries = _plot_telemetry(ax_tel, run, colors, positions)
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("mini-batch loss (measured steps)")
    ax_acc.set_ylabel("test accuracy (%)" if accuracy else "test MSE (lower is better)")
    ax_tel.set_xlabel(PLOT_X[x])
    legend = {"fontsize": 8, "loc": "upper left", "bbox_to_anchor": (1.08, 1.0), "borderaxespad": 0.0, "frameon": False}
    ax_loss.legend(**legend)
    ax_acc.legend(**legend)
    if ax_rug.get_legend_handles_labels()[0]:
        ax_rug.legend(**{**legend, "fontsize": 7})
    if tel_entries:
        ax_tel.legend([h for h, _ in tel_entries], [n for _, n in tel_entries], **{**legend, "fontsize": 7})
    s = run.settings
    fig.suptitle(f"vsaopt train: {s['dataset']}, {s['steps']} steps, batch {s['batch_size']}, lr {s['lr']}, {run.machine}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


@contextlib.contextmanager
def _options_named(options: dict[str, str]) -> Iterator[None]:
    """Turn a ConfigError about a field into click's usage error naming the field's option (exit status 2)."""
    try:
        yield
    except ConfigError as exc:
        field = str(exc).split(":", 1)[0]
        if field not in options:
            raise
        raise click.BadParameter(str(exc).split(":", 1)[1].strip(), param_hint=f"'{options[field]}'") from None


def parameter_count(dataset: str, widths: tuple[int, ...]) -> int:
    """Weights and biases of the MLP trained on ``dataset`` with hidden layers ``widths``.

    Examples
    --------
    >>> parameter_count("iris", (8,))  # 4*8 + 8 + 8*3 + 3
    67
    """
    inputs, outputs = DATASET_SHAPES[dataset]
    sizes = [inputs, *widths, outputs]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def check_model_fits(dataset: str, widths: tuple[int, ...], steps: int, batch_size: int,
                     memory: int | None = None) -> None:
    """Usage error naming --hidden (or --steps) unless a run's estimated memory fits in ``memory`` (default: available now).

    Raises
    ------
    click.BadParameter
        The model's parameters (times :data:`BYTES_PER_PARAMETER`) and the
        recorded steps need more memory than is available.
    """
    memory = available_memory() if memory is None else memory
    if memory is None:
        return
    params = parameter_count(dataset, widths)
    model = params * BYTES_PER_PARAMETER
    schedule = steps * (batch_size * BYTES_PER_BATCH_INDEX + BYTES_PER_STEP)
    if model + schedule <= memory:
        return
    gib = 2**30
    if model >= schedule:
        raise click.BadParameter(
            f"{','.join(map(str, widths))} makes a model of {params:,} parameters on {dataset}; training it needs about "
            f"{(model + schedule) / gib:.1f} GiB, {memory / gib:.1f} GiB of memory are available", param_hint="'--hidden'")
    raise click.BadParameter(
        f"{steps:,} steps of batch {batch_size} need about {(model + schedule) / gib:.1f} GiB, "
        f"{memory / gib:.1f} GiB of memory are available", param_hint="'--steps'")


@click.command()
@click.option("--mode", "modes", multiple=True, type=click.Choice([*_MODES, "all"]), default=_QUICK_MODES, show_default=True,
              help="Modes to run (repeatable; 'all': also the reuse and small_batch controls). baseline always runs: it "
                   "defines the target; phase runs for any control (they copy its realized schedule).")
@click.option("--dataset", type=click.Choice(_DATASETS), default="digits", show_default=True,
              help="scikit-learn bundled data set (no download).")
@click.option("--steps", type=POSITIVE, help="Training steps per mode [default: per data set, see docs/training.md].")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of split, weights, batch order and skip choices.")
@click.option("--backend", type=click.Choice(["auto", "numpy", "numba", "cupy"]), default="auto", show_default=True)
@click.option("--batch-size", type=BatchSize(), help="Mini-batch size, or 'full' for the whole training split [default: per data set].")
@click.option("--lr", type=FiniteFloat(min=0.0, min_open=True), help="SGD learning rate [default: per data set].")
@click.option("--sgd-momentum", type=FiniteFloat(min=0.0, max=1.0, max_open=True), default=0.9, show_default=True,
              help="Momentum of the SGD optimizer, in [0, 1).")
@click.option("--hidden", type=HiddenWidths(), default="256,256", show_default=True,
              help="Hidden layer widths, comma-separated positive integers.")
@click.option("--loss-every", type=COUNT, default=0, show_default=True,
              help="Measure the loss (a forward pass) on every k-th step without a backward pass; 0: never "
                   "(the presets do not use those losses; FULL steps measure theirs anyway).")
@click.option("--eval-every", type=POSITIVE, default=5, show_default=True, help="Steps between (untimed) test evaluations.")
@click.option("--interleave", type=COUNT, default=20, show_default=True,
              help="Modes take turns of this many steps, so machine load hits all alike (0: one after another).")
@click.option("--matmul", type=click.Choice(["ordered", "blas"]), default="ordered", show_default=True,
              help="Matrix products of the MLP: ordered (one summation order: the same bytes on every machine, BLAS "
                   "and backend) or blas (faster on wide layers; the last bits, and so the trajectory, depend on the CPU).")
@click.option("--threads", type=THREADS, default=1, show_default=True,
              help="BLAS threads while training (0: leave as is; at most the CPUs usable here).")
@click.option("--diagnose", is_flag=True, help="Also measure how close predicted gradients are to real ones (untimed).")
@_phase_options
@click.option("--plot", "plot_path", type=SafePath(dir_okay=False, path_type=Path), callback=plot_file,
              help="Write an image (PNG, SVG, PDF, ... by its suffix; needs matplotlib) of the mini-batch loss, the test "
                   "metric, the steps without a backward pass and the prediction telemetry, against --plot-x.")
@click.option("--plot-x", type=click.Choice(list(PLOT_X)), default="passes", show_default=True,
              help="x axis of --plot: cost in pass units, training steps, or wall-clock time.")
@click.option("--json", "json_path", type=SafePath(dir_okay=False, path_type=Path), callback=output_file,
              help="Write every figure as JSON.")
@click.option("--suite", is_flag=True,
              help="Run the evaluation matrix instead (data sets x batch sizes x depths, tuned baseline lr, every mode "
                   "and control, several seeds); --dataset, --steps, --batch-size, --lr, --hidden and --mode do not apply.")
@click.option("--seeds", type=POSITIVE, default=2, show_default=True, help="--suite: seeds per setting (from --seed on).")
@click.option("--suite-steps", type=FiniteFloat(min=0.01, max=100.0), default=1.0, show_default=True,
              help="--suite: scale of every setting's training steps.")
@click.option("--quick", is_flag=True, help="--suite: a tiny smoke matrix (seconds), not an evaluation.")
@click.option("--framework", type=click.Choice(["numpy", "torch"]), default="numpy", show_default=True,
              help="numpy: the framework-free MLP and four modes; torch: a torch MLP on digits, plain torch vs "
                   "PhaseAccelerator (needs the torch extra).")
def train(modes: tuple[str, ...], dataset: str, steps: int | None, seed: int, backend: str, batch_size: int | None,
          lr: float | None, sgd_momentum: float, hidden: tuple[int, ...], loss_every: int, eval_every: int, interleave: int,
          threads: int, matmul: str, diagnose: bool, preset: str, plot_path: Path | None, plot_x: str, json_path: Path | None,
          suite: bool, seeds: int, suite_steps: float, quick: bool, framework: str, **phase_opts: Any) -> None:
    """Train an MLP on a bundled data set: plain backprop vs phase training vs controls.

    Prints, per mode, backward and forward passes, the share of steps without
    a backward pass, the cost in pass units and in wall-clock time, the final
    test metric, and the time to reach the target (the baseline's final test
    accuracy minus 0.5 points, or its final MSE plus 5 %), with the speedups
    over the baseline in pass units and in wall time.  With --suite it runs the
    evaluation matrix instead.
    """
    from ..train import RunResult, TrainSettings, run_training

    widths = hidden
    chosen = list(_MODES) if "all" in modes else [m for m in _MODES if m in modes]
    defaults = DATASET_DEFAULTS[dataset]
    with _options_named(_PHASE_OPTIONS):
        pc, dc = build_configs(preset, phase_opts)
    ctx = click.get_current_context()
    if not suite:
        refuse_given(ctx, _SUITE_ONLY, "applies to --suite only")
    if suite:
        refuse_given(ctx, _SINGLE_RUN_ONLY, "applies to a single run; --suite runs its own matrix of settings")
        from .suite_report import run_suite_command

        run_suite_command(console, seed=seed, seeds=seeds, steps_scale=suite_steps, quick=quick, backend=backend,
                          threads=threads, interleave=interleave, phase_config=pc, deterministic_config=dc,
                          preset=preset, json_path=json_path, plot_path=plot_path, matmul=matmul)
        return
    if framework == "torch":
        refuse_given(ctx, _NUMPY_ONLY, "does not apply to --framework torch (it runs its digits comparison)")
        full = batch_size == "full"
        _train_torch(seed, backend, _training_samples("digits", seed) if full else batch_size, lr, pc, dc, preset, json_path)
        return
    if batch_size == "full":
        batch_size = _training_samples(dataset, seed)
    with _options_named(_SETTINGS_OPTIONS):
        settings = TrainSettings(
            dataset=dataset,
            steps=defaults["steps"] if steps is None else steps,
            seed=seed,
            batch_size=defaults["batch_size"] if batch_size is None else batch_size,
            lr=defaults["lr"] if lr is None else lr,
            momentum=sgd_momentum,
            hidden=widths,
            loss_every=loss_every,
            eval_every=eval_every,
            backend=backend,
            threads=threads,
            interleave=interleave,
            phase_config=pc,
            deterministic_config=dc,
            diagnose=diagnose,
            matmul=matmul,
        )
    check_model_fits(settings.dataset, settings.hidden, settings.steps, settings.batch_size)
    from .suite_report import machine_description

    machine = machine_description()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        tasks: dict[str, Any] = {}

        def advance(mode: str, done: int) -> None:
            if mode not in tasks:  # the modes of the second round (controls) appear when they start
                tasks[mode] = progress.add_task(f"training {mode}", total=settings.steps)
            progress.update(tasks[mode], completed=done)

        with _options_named(_SETTINGS_OPTIONS):  # --batch-size against the data set's size is checked on loading it
            run: RunResult = run_training(settings, chosen, on_step=advance, machine=machine)
    console.print(f"[bold]vsaopt {__version__} train[/] on {machine}; backend {settings.backend}, batch "
                  f"{settings.batch_size}, lr {settings.lr} (not tuned; --suite tunes it), hidden {list(widths)}, "
                  f"matmul {settings.matmul}, preset {preset}")
    print_table(console, results_table(run))
    for line in telemetry_lines(run, {"phase": pc, "deterministic": dc}):
        console.print(line)
    if diagnose:
        for mode, r in run.modes.items():
            if r.pred_cosine:
                cos = r.mean_prediction_cosine("pred_full_cosine")
                ref = r.mean_prediction_cosine("batch_full_cosine")
                pairs = ", ".join(f"{k}: {cos[k]:.2f}/{ref.get(k, float('nan')):.2f}" for k in list(cos)[:8])
                console.print(f"{mode}: cosine with the full-data gradient, used / fresh mini-batch, by step of a predicted run: {pairs}")
    write_outputs(console, json_path, run.to_json, plot_path, lambda path: write_plot(run, path, plot_x))


#: Options of the evaluation matrix only, of a single run only, and of the numpy harness only.
_SUITE_ONLY = ("seeds", "suite_steps", "quick")
_SINGLE_RUN_ONLY = ("modes", "dataset", "steps", "batch_size", "lr", "sgd_momentum", "hidden", "loss_every", "eval_every",
                    "diagnose", "framework", "plot_x")
_NUMPY_ONLY = ("modes", "dataset", "steps", "sgd_momentum", "hidden", "loss_every", "eval_every", "interleave", "diagnose",
               "plot_path", "plot_x", "threads", "matmul")


def _training_samples(dataset: str, seed: int) -> int:
    """Size of the data set's training split (what ``--batch-size full`` means)."""
    from ..train import load_dataset

    return int(load_dataset(dataset, seed=seed, backend="numpy").x_train.shape[0])


def _train_torch(seed: int, backend: str, batch_size: int | None, lr: float | None, pc: Any, dc: Any, preset: str,
                 json_path: Path | None) -> None:
    """Plain torch vs PhaseAccelerator (both trainers) on digits, in the table format of the numpy run."""
    try:
        from ..torch import digits_comparison
    except ImportError as exc:
        raise click.UsageError(f"--framework torch needs torch: pip install 'vsaopt[torch]' ({exc})") from None
    kw: dict[str, Any] = {"seed": seed, "backend": None if backend == "auto" else backend}
    if batch_size is not None:
        kw["batch_size"] = batch_size
    if lr is not None:
        kw["lr"] = lr
    with console.status("training with torch"):
        for trainer, cfg in (("phase", pc), ("deterministic", dc)):  # untimed: load the compiled kernels first
            digits_comparison(epochs=1, trainer=trainer, config=cfg, target_accuracy=None, **kw)
        first = digits_comparison(modes=("torch",), target_accuracy=None, **kw)
        target = first["modes"]["torch"]["test_accuracy"] - 0.005
        runs = {"phase": digits_comparison(trainer="phase", config=pc, target_accuracy=target, **kw),
                "deterministic": digits_comparison(trainer="deterministic", config=dc, target_accuracy=target, **kw)}
    rows = {"torch": runs["deterministic"]["modes"]["torch"], **{f"vsaopt {k}": r["modes"]["vsaopt"] for k, r in runs.items()}}
    info = runs["deterministic"]
    table = Table(title=f"digits with torch ({info['model']}, {info['optimizer']}, lr {info['lr']}, batch {info['batch_size']}, "
                        f"{info['epochs']} epochs): target = plain torch's final test accuracy - 0.5 points = {target * 100:.2f} %",
                  title_justify="left", caption=f"preset {preset}; time to target at epoch granularity; speedup: plain "
                                                "torch's time to target / the mode's", caption_justify="left")
    for col in ("mode", "backward", "steps", "wall s", "final acc", "to target s", "speedup"):
        table.add_column(col, justify="left" if col == "mode" else "right", no_wrap=col == "mode")
    base = (rows["torch"]["to_target"] or {}).get("seconds")
    for mode, r in rows.items():
        hit = (r["to_target"] or {}).get("seconds")
        speed = base / hit if base is not None and hit else None
        table.add_row(mode, str(r["backward_passes"]), str(r["steps"]), f"{r['wall_seconds']:.3f}",
                      f"{r['test_accuracy'] * 100:.2f}%", _fmt_time(hit), "-" if speed is None else f"{speed:.2f}x")
    print_table(console, table)
    if json_path is not None:
        text = json.dumps({"target_accuracy": target, "runs": runs}, indent=1, default=str)
        write_atomic(json_path, lambda p: p.write_text(text, encoding="utf-8"))
        console.print(f"wrote {json_path}")
