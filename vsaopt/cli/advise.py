"""``vsaopt advise``: will skipping backward passes pay on a bundled data set's MLP, and at what batch size?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .options import (SEED, BatchSize, FiniteFloat, HiddenWidths, SafePath, output_file, plot_file, wide_console_width,
                      write_outputs)
from .tables import print_table

console = Console(width=wide_console_width())

_DATASETS = ("digits", "wine", "breast_cancer", "iris", "diabetes")  # vsaopt.train.DATASETS
#: Per data set: the batch size and learning rate of ``vsaopt train``'s default run.
_DEFAULTS = {"digits": (256, 0.02), "breast_cancer": (128, 0.005), "wine": (32, 0.005), "iris": (16, 0.01),
             "diabetes": (32, 0.005)}


def advice_table(advice: Any) -> Table:
    """The advice per batch size as a rich table."""
    table = Table(*advice.table_header(), title=f"advised share of backward passes skipped over {advice.run_steps} steps "
                                                "(estimate, band)")
    for row in advice.table_rows():
        table.add_row(*row)
    return table


def write_advice_plot(advice: Any, path: Path) -> None:
    """Skip share (with bands) and the expected consecutive cosine against batch size, the noise scale marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise click.UsageError("--plot needs matplotlib: pip install 'vsaopt[plot]'") from exc
    d = advice.plot_data()
    fig, (ax_skip, ax_cos) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for preset, color in (("phase", "tab:blue"), ("deterministic", "tab:green")):
        ax_skip.fill_between(d["batch_size"], d[f"{preset}_low"], d[f"{preset}_high"], color=color, alpha=0.2)
        ax_skip.plot(d["batch_size"], d[f"{preset}_value"], "o-", color=color, label=f"{preset} (recommended)")
    ax_skip.set_ylabel("share of backward passes skipped")
    ax_skip.set_ylim(0, 1)
    ax_skip.legend(loc="upper left")
    ax_cos.plot(d["batch_size"], d["cosine"], "o-", color="black", label="expected consecutive cosine")
    ax_cos.set_ylabel("cosine")
    ax_cos.set_ylim(0, 1)
    value, low, high = d["noise_scale"]
    for ax in (ax_skip, ax_cos):
        ax.set_xscale("log")
        if value != float("inf"):
            ax.axvline(value, color="tab:red", linestyle="--")
            ax.axvspan(max(low, 1e-9), high if high != float("inf") else max(d["batch_size"]) * 10, color="tab:red",
                       alpha=0.08)
    ax_cos.plot([], [], "--", color="tab:red", label="noise scale B_simple (interval shaded)")
    ax_cos.legend(loc="lower right")
    ax_cos.set_xlabel("batch size (samples)")
    fig.suptitle(f"vsaopt advise: batch {advice.batch_size}, {advice.n_samples} samples")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _torch_advice(dataset: str, batch_size: int | None, hidden: tuple[int, ...], lr: float, momentum: float, seed: int,
                  on_progress: Any, options: dict) -> Any:
    """The advice for the same MLP in PyTorch (``nn.Linear`` + ReLU, torch's default initialisation seeded)."""
    try:
        import torch

        from ..torch import advise
    except ImportError as exc:
        raise click.UsageError(f"--framework torch needs torch: pip install 'vsaopt[torch]' ({exc})") from None
    from ..train import load_dataset

    data = load_dataset(dataset, seed=seed, backend="numpy")
    x = torch.as_tensor(data.x_train)
    y = torch.as_tensor(data.y_train)
    sizes = [data.n_features, *hidden, data.n_outputs]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed % 2**63)
        layers: list[Any] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
        model = torch.nn.Sequential(*layers[:-1])
    def loss_fn(out: Any, target: Any) -> Any:
        if data.is_regression:
            return torch.nn.functional.mse_loss(out.squeeze(1), target)
        return torch.nn.functional.cross_entropy(out, target)
    batch = int(x.shape[0]) if batch_size is None else batch_size
    return advise(model, loss_fn, (x, y), batch, lr=lr, momentum=momentum, seed=seed, on_progress=on_progress,
                  **options)


@click.command()
@click.option("--dataset", type=click.Choice(_DATASETS), default="digits", show_default=True,
              help="A data set bundled with scikit-learn.")
@click.option("--batch-size", type=BatchSize(), help="The batch size asked about, or 'full' [default: per data set, "
                                                     "as vsaopt train].")
@click.option("--hidden", type=HiddenWidths(max_width=65536), default="256,256", show_default=True,
              help="Hidden layer widths of the MLP.")
@click.option("--lr", type=FiniteFloat(min=0.0, min_open=True), help="SGD learning rate of the run advised on "
                                                                      "[default: per data set, as vsaopt train].")
@click.option("--sgd-momentum", type=FiniteFloat(min=0.0, max=1.0, max_open=True), default=0.9, show_default=True,
              help="SGD momentum of the run advised on.")
@click.option("--steps", type=click.IntRange(1, 10**7), default=300, show_default=True,
              help="Length of the run advised on (the shares are over it).")
@click.option("--measure-steps", type=click.IntRange(10, 400), default=100, show_default=True,
              help="Training steps of the measurement, the first steps of the run (its rounds are spread "
                   "over them).")
@click.option("--rounds", type=click.IntRange(2, 80), default=8, show_default=True, help="Measurement rounds.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of split, weights and every draw.")
@click.option("--framework", type=click.Choice(["numpy", "torch"]), default="numpy", show_default=True,
              help="Measure the numpy MLP of vsaopt train, or the same MLP in PyTorch.")
@click.option("--json", "json_path", type=SafePath(dir_okay=False, path_type=Path), callback=output_file,
              help="Write the advice as JSON.")
@click.option("--plot", "plot_path", type=SafePath(dir_okay=False, path_type=Path), callback=plot_file,
              help="Plot the skip share and the expected cosine against batch size, the noise scale marked.")
def advise(dataset: str, batch_size: int | str | None, hidden: tuple[int, ...], lr: float | None, sgd_momentum: float,
           steps: int, measure_steps: int, rounds: int, seed: int, framework: str, json_path: Path | None,
           plot_path: Path | None) -> None:
    """Would phase training skip backward passes on this model, at this batch size or a larger one?

    Runs the gated recommended presets' own trainers on a short training run
    at the batch size (the first steps of the run advised on) and measures
    the gradient noise scale (McCandlish et al. 2018), the drift of the
    gradient between steps and the consecutive-gradient cosine; advises, for
    the batch size (measured) and 2x to 16x it and full batch (the
    noise-and-drift model), the share of backward passes the presets would
    skip, with a band, and the critical batch size.
    """
    from ..advise.bundled import advise_bundled

    default_batch, default_lr = _DEFAULTS[dataset]
    full = batch_size == "full"
    batch = None if full else (default_batch if batch_size is None else int(batch_size))
    rate = default_lr if lr is None else lr
    if measure_steps < 5 * rounds:
        raise click.BadParameter(f"needs at least 5 steps per round ({5 * rounds} for --rounds {rounds}), "
                                 f"got {measure_steps}", param_hint="'--measure-steps'")
    if batch is not None:
        from ..train import load_dataset

        n = int(load_dataset(dataset, seed=seed, backend="numpy").x_train.shape[0])
        if batch > n:
            raise click.BadParameter(f"at most the {n} training samples of {dataset} (or 'full'), got {batch}",
                                     param_hint="'--batch-size'")
    options = {"run_steps": steps, "measure_steps": measure_steps, "rounds": rounds}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("measuring", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        if framework == "torch":
            advice = _torch_advice(dataset, batch, hidden, rate, sgd_momentum, seed, on_progress, options)
        else:
            advice = advise_bundled(dataset, batch, hidden, lr=rate, momentum=sgd_momentum, seed=seed,
                                    matmul="blas", on_progress=on_progress, **options)
    m = advice.measurement
    console.print(f"[bold]vsaopt advise[/] {dataset}, hidden {list(hidden)}, lr {rate}, momentum {sgd_momentum}, "
                  f"{framework}: {m['training_steps']} training steps, {m['gradient_evaluations']} gradients "
                  f"({m['samples_evaluated']:,} samples)")
    print_table(console, advice_table(advice))
    for line in advice.summary_lines():
        console.print(line, soft_wrap=True, markup=False)
    write_outputs(console, json_path, advice.to_json, plot_path, lambda path: write_advice_plot(advice, path))
