"""Tables of the ``vsaopt bench`` sections that print their own (not the common kernel table)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.table import Table

__all__ = ["fmt_seconds", "OWN_TABLES"]


def fmt_seconds(s: float) -> str:
    """Seconds as ms below one second."""
    return f"{s * 1e3:.3f} ms" if s < 1 else f"{s:.3f} s"


_HOOK_NAMES = {"fp32": "fp32 all-reduce", "fp16": "fp16_compress_hook", "powersgd1": "powerSGD_hook rank 1",
               "powersgd4": "powerSGD_hook rank 4", "ternary": "vsaopt ternary + error feedback"}


def comm_tables(res: dict) -> list[Table]:
    """The measured table (per world size) and the modeled one (bytes ratio and step time on 1/10/100 Gbit/s links)."""
    measured = Table(title=f"comm: DDP hooks on local gloo processes, MLP {res['parameters']:,} parameters on digits, {res['steps']} steps",
                     title_justify="left", caption="bytes: sent per rank per step (ring algorithms); compute: the hook on a one-rank group; "
                     "time: step time / fp32 step time (loaded machine: ratios are noisy)", caption_justify="left")
    for col in ("hook", "W", "bytes", "fewer than fp32", "compute", "step", "step vs fp32", "accuracy"):
        measured.add_column(col, justify="left" if col == "hook" else "right")
    for w, hooks in res["measured"].items():
        f = hooks["fp32"]
        for h, r in hooks.items():
            measured.add_row(_HOOK_NAMES[h], str(w), f"{r['bytes_per_step']:,.0f}", f"{f['bytes_per_step'] / r['bytes_per_step']:.1f}x",
                             fmt_seconds(r["compute_seconds"]), fmt_seconds(r["seconds_per_step"]),
                             f"{r['seconds_per_step'] / f['seconds_per_step']:.2f}", f"{100 * r['accuracy']:.1f}")
    modeled = Table(title="comm, modeled: local step + hook compute + bytes / link (bandwidth only, no latency)", title_justify="left")
    for col in ("W", "hook", "fewer bytes than fp32", "1 Gbit/s", "10 Gbit/s", "100 Gbit/s"):
        modeled.add_column(col, justify="left" if col == "hook" else "right")
    for w, hooks in res["modeled"].items():
        for h, r in hooks.items():
            modeled.add_row(str(w), _HOOK_NAMES[h], f"{r['ratio']:.1f}x", *(fmt_seconds(r["seconds"][g]) for g in sorted(r["seconds"])))
    return [measured, modeled]


def fidelity_table(rows: list) -> Table:
    """Reconstruction fidelity of the compressor."""
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


def adapter_table(rows: list) -> Table:
    """The adapter's own cost per phase."""
    table = Table(title="adapter: PhaseAccelerator's own time per phase / one plain torch step (forward + backward + SGD)",
                  title_justify="left", caption="one thread, modes interleaved step by step, medians; fixed presets "
                  "(risky_fixed) so every phase recurs; zero_grad() sets p.grad to None", caption_justify="left")
    for col in ("model", "params", "trainer", "phase", "steps", "plain step", "adapter", "share", "target"):
        table.add_column(col, justify="left" if col in ("model", "trainer", "phase") else "right")
    for r in rows:
        target = "" if r.target is None else f"<= {r.target:.0%}" + (" ok" if r.share <= r.target else " missed")
        table.add_row(r.model, f"{r.parameters:,}", r.trainer, r.phase, str(r.steps), fmt_seconds(r.plain_seconds),
                      fmt_seconds(r.adapter_seconds), f"{r.share:.1%}", target)
    return table


def gate_closed_table(rows: list) -> Table:
    """The adapter's own cost over a run with the gate closed."""
    table = Table(title="adapter_closed: PhaseAccelerator.step's own time with the gate closed / one plain torch step",
                  title_justify="left", caption="one thread, modes interleaved step by step; recommended() presets, a new "
                  "random-label batch every step; means over the whole run (its fully measured first steps included); "
                  "dormant: median own time of a step that recorded nothing", caption_justify="left")
    for col in ("model", "params", "trainer", "steps", "recorded", "plain step", "adapter", "share", "dormant", "target"):
        table.add_column(col, justify="left" if col in ("model", "trainer") else "right")
    for r in rows:
        table.add_row(r.model, f"{r.parameters:,}", r.trainer, str(r.steps), str(r.recorded), fmt_seconds(r.plain_seconds),
                      fmt_seconds(r.adapter_seconds), f"{r.share:.1%}", fmt_seconds(r.dormant_seconds),
                      f"<= {r.target:.0%}" + (" ok" if r.share <= r.target else " missed"))
    return table


def time_to_accuracy_table(rows: list) -> Table:
    """Time to accuracy with torch."""
    r0 = rows[0]
    table = Table(title="torch_time_to_accuracy: small CNN on digits, time to plain torch's final accuracy - 0.5 points",
                  title_justify="left", caption=f"{r0.seeds} seed(s), medians; SGD momentum 0.9, lr {r0.lr:g} (grid-tuned for "
                  f"plain torch); {r0.steps} steps; one thread; PREDICT steps run no forward pass; kernels loaded by an untimed epoch first", caption_justify="left")
    for col in ("mode", "reached", "time to target", "backward to target", "backward passes", "final accuracy", "target"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    for r in rows:
        table.add_row(r.mode, f"{r.reached}/{r.seeds}", "-" if r.seconds_to_target is None else fmt_seconds(r.seconds_to_target),
                      "-" if r.backward_to_target is None else f"{r.backward_to_target:g}", f"{r.backward_passes:g} / {r.steps}",
                      f"{r.final_accuracy:.3f}", f"{r.target:.3f}")
    return table


def predictor_memory_table(rows: list) -> Table:
    """Predictor state per preset and history compression."""
    table = Table(title="predictor_memory: predictor state per parameter, and the cosine cost of compressing its history",
                  title_justify="left", caption_justify="left",
                  caption="gradients of an MLP (64-128-10) on digits, plain SGD, batch 1024; steps = steps at which both runs predicted; x fp32 = bytes over 4 bytes per parameter; "
                          "held = most bytes held at once; cos(f32) = with the float32-history prediction; cos(g) = with the real gradient")
    for col in ("preset", "history", "params", "held x fp32", "state_dict x fp32", "steps", "cos(f32)", "cos(g)", "f32 cos(g)"):
        table.add_column(col, justify="left" if col in ("preset", "history") else "right")
    for r in rows:
        table.add_row(r.preset, r.compression, f"{r.params:,}", f"{r.held_x_fp32:.3f}", f"{r.state_dict_x_fp32:.3f}",
                      str(r.compared), _cosine(r.cosine_vs_float32, 5), _cosine(r.cosine_vs_actual, 3),
                      _cosine(r.float32_cosine_vs_actual, 3))
    return table


def _cosine(x: float, digits: int) -> str:
    """A cosine, or "-" where it was never measured (no step predicted)."""
    return "-" if x != x else f"{x:.{digits}f}"


_SERIES = (("measured", 8, "8-bit"), ("measured", 4, "4-bit"), ("worst_case", 8, "8-bit, spec 6"),
           ("worst_case", 4, "4-bit, spec 6"), ("ideal", None, "unbounded counts"))


def accumulator_error_tables(rows: list) -> list[Table]:
    """Per gradient kind: relative error of the accumulated mean (and the scale exponent) by micro-batches and count width."""
    tables = []
    for kind in dict.fromkeys(r.gradients for r in rows):
        mine = [r for r in rows if r.gradients == kind]
        series = [s for s in _SERIES if any(r.rule == s[0] and r.count_bits == s[1] for r in mine)]
        table = Table(title=f"accumulator_error: relative L2 error of the accumulated mean, {kind} micro-batch gradients",
                      title_justify="left", caption_justify="left",
                      caption="(E): the scale exponent 2**E of the counts; spec 6: the rule before version 7 (a worst-case "
                              "bound halved the counts); unbounded counts: the same stochastic rounding with no count limit")
        table.add_column("micro-batches", justify="right")
        for _, _, label in series:
            table.add_column(label, justify="right")
        for k in sorted({r.micro_batches for r in mine}):
            cells = []
            for rule, bits, _ in series:
                r = next((r for r in mine if r.rule == rule and r.count_bits == bits and r.micro_batches == k), None)
                cells.append("" if r is None else _error_cell(r))
            table.add_row(str(k), *cells)
        tables.append(table)
    return tables


def _error_cell(r: Any) -> str:
    if r.raised:
        return r.raised
    return f"{r.relative_error:.3g}" + ("" if r.exponent is None else f" ({r.exponent})")


def _rows_json(rows: list) -> list:
    return [r.to_dict() for r in rows]


def _one(make: Callable[[Any], Table]) -> Callable[[Any], list[Table]]:
    return lambda value: [make(value)]


#: Section whose results go to ``ctx[section]`` -> (its tables, its JSON).
OWN_TABLES: dict[str, tuple[Callable[[Any], list[Table]], Callable[[Any], Any]]] = {
    "fidelity": (_one(fidelity_table), _rows_json),
    "predictor_memory": (_one(predictor_memory_table), _rows_json),
    "accumulator_error": (accumulator_error_tables, _rows_json),
    "comm": (comm_tables, lambda res: res),
    "adapter": (_one(adapter_table), _rows_json),
    "adapter_closed": (_one(gate_closed_table), _rows_json),
    "torch_time_to_accuracy": (_one(time_to_accuracy_table), _rows_json),
}
