"""Pictures of the ``vsaopt bench`` sections that have one (``--plot``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

__all__ = ["write_accumulator_error_plot"]

#: Where an error is drawn when the mean was exact (a log axis has no 0) and where a run that raised is marked.
_FLOOR, _CEILING = 1e-3, 1e3
_COLORS = {8: "tab:blue", 4: "tab:orange"}


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise click.UsageError("--plot needs matplotlib: pip install 'vsaopt[plot]'") from exc
    return plt


def write_accumulator_error_plot(rows: list, path: Path) -> None:
    """Relative error of the accumulated mean against micro-batches, one panel per gradient kind (log-log).

    Solid: the accumulator's rule; dotted: the rule before spec version 7;
    dashed black: unbounded counts (the error of the stochastic rounding
    alone).  An exact mean is drawn at the bottom edge ("0 (exact)"), a run
    that raised as a triangle at the top edge.
    """
    plt = _pyplot()
    kinds = list(dict.fromkeys(r.gradients for r in rows))
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.2 * len(kinds), 4.6), sharey=True, squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        mine = [r for r in rows if r.gradients == kind]
        for rule, style, marker in (("measured", "-", "o"), ("worst_case", ":", "x"), ("ideal", "--", None)):
            for bits in sorted({r.count_bits for r in mine if r.rule == rule}, key=lambda b: -(b or 0)):
                series = sorted((r for r in mine if r.rule == rule and r.count_bits == bits), key=lambda r: r.micro_batches)
                done = [r for r in series if not r.raised]
                color = "black" if bits is None else _COLORS.get(bits, "tab:gray")
                label = ("unbounded counts" if bits is None else f"{bits}-bit counts") + (", spec 6 rule" if rule == "worst_case" else "")
                ax.plot([r.micro_batches for r in done], [min(max(r.relative_error, _FLOOR), _CEILING) for r in done],
                        style, marker=marker, ms=4, color=color, label=label)
                failed = [r for r in series if r.raised]
                if failed:
                    ax.plot([failed[0].micro_batches], [_CEILING], "v", color=color, ms=8,
                            label=f"{bits}-bit, spec 6: {failed[0].raised} from {failed[0].micro_batches} on")
        ax.axhline(1.0, color="0.6", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_ylim(_FLOOR * 0.7, _CEILING * 1.5)
        ax.set_xlabel("micro-batches accumulated")
        ax.set_title(f"{kind} micro-batch gradients", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel("relative L2 error of the mean")
    axes[0][0].text(1, 1.15, "error 1: the mean collapsed to 0", color="0.4", fontsize=8)
    axes[0][0].set_yticks([1e-3, 1e-2, 1e-1, 1, 10, 100, 1e3], ["0 (exact)", "0.01", "0.1", "1", "10", "100", "1000"])
    handles: dict[str, Any] = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
