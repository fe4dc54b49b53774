"""What :func:`vsaopt.advise` returns: the estimates, one row per batch size, the verdict; a table, JSON and plot data."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from .._json import parse_json
from ..errors import ConfigError
from .noise import NoiseScale

__all__ = ["ShareBand", "BatchAdvice", "Advice", "PAYS_SHARE", "SHARE_TOLERANCE", "format_samples"]

#: Skipping "pays" when the recommended PhaseTrainer is advised to skip at least this share of the backward passes.
PAYS_SHARE = 0.10
#: Shares closer than this are equal (``1 - 270 / 300`` is ``0.1`` less one rounding).
SHARE_TOLERANCE = 1e-9


def format_samples(x: float) -> str:
    """A sample count to two significant digits (``7,800``, ``16 k``, ``1.2 M``); ``inf`` as ``unresolved``.

    Examples
    --------
    >>> [format_samples(v) for v in (3.14159, 7812.0, 16384.0, 1.23e6, math.inf)]
    ['3.1', '7,800', '16 k', '1.2 M', 'unresolved']
    """
    if math.isinf(x):
        return "unresolved"
    if x <= 0:
        return "0"
    rounded = float(f"{x:.2g}")
    if rounded >= 1e6:
        return f"{rounded / 1e6:g} M"
    if rounded >= 1e4:
        return f"{rounded / 1e3:g} k"
    return f"{rounded:,.0f}" if rounded >= 10 else f"{rounded:g}"


def _finite_or_none(x: float) -> float | None:
    return None if math.isinf(x) else x


def _inf_if_none(x: Any) -> float:
    return math.inf if x is None else float(x)


def _bands(d: dict) -> dict[str, ShareBand]:
    return {k: ShareBand(float(v["value"]), float(v["low"]), float(v["high"])) for k, v in d.items()}


@dataclasses.dataclass(frozen=True)
class ShareBand:
    """An advised share of skipped backward passes: the estimate and the band of the estimates' uncertainty.

    Examples
    --------
    >>> str(ShareBand(0.5, 0.25, 0.75))
    '50 % (25-75)'
    """

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{100 * self.value:.0f} % ({100 * self.low:.0f}-{100 * self.high:.0f})"

    def contains(self, share: float) -> bool:
        """Whether ``share`` lies in ``[low, high]`` (to within float rounding, :data:`SHARE_TOLERANCE`)."""
        return self.low - SHARE_TOLERANCE <= share <= self.high + SHARE_TOLERANCE


@dataclasses.dataclass(frozen=True)
class BatchAdvice:
    """The advice at one batch size.

    Attributes
    ----------
    batch_size : int
    noise_ratio : float
        Expected noise energy over signal energy of one gradient at this batch
        (sampled without replacement; 0 at full batch; ``math.inf``: unresolved).
    cosine : float
        Expected cosine of consecutive real gradients, drift included.
    skip : dict of str to ShareBand
        Per gated preset (``"phase"``, ``"deterministic"``), the advised share
        of backward passes skipped over the run.
    measured : bool
        Whether ``skip`` counts what the presets' own trainers skipped on the
        measurement's steps (the batch the measurement trained at), the rest
        of the run extrapolated; else it is the noise-and-drift model's.
    model_skip : dict of str to ShareBand, optional
        On a measured row, the model's share there (a check of the model
        that the other rows come from).
    """

    batch_size: int
    noise_ratio: float
    cosine: float
    skip: dict[str, ShareBand]
    measured: bool = False
    model_skip: dict[str, ShareBand] | None = None

    @property
    def pays(self) -> bool:
        """Whether the recommended PhaseTrainer is advised to skip at least :data:`PAYS_SHARE`."""
        return self.skip["phase"].value >= PAYS_SHARE - SHARE_TOLERANCE

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        model = None if self.model_skip is None else {k: dataclasses.asdict(v) for k, v in self.model_skip.items()}
        return {"batch_size": self.batch_size, "noise_ratio": _finite_or_none(self.noise_ratio), "cosine": self.cosine,
                "skip": {k: dataclasses.asdict(v) for k, v in self.skip.items()}, "measured": self.measured,
                "model_skip": model}

    @classmethod
    def from_dict(cls, d: dict) -> BatchAdvice:
        """Inverse of :meth:`to_dict`."""
        skip = _bands(d["skip"])
        model = d.get("model_skip")
        return cls(int(d["batch_size"]), _inf_if_none(d["noise_ratio"]), float(d["cosine"]), skip,
                   bool(d.get("measured", False)), None if model is None else _bands(model))


@dataclasses.dataclass(frozen=True)
class Advice:
    """Whether skipping backward passes pays on a model, and at what batch size (:func:`vsaopt.advise`).

    Attributes
    ----------
    batch_size : int
        The batch size asked about.
    n_samples : int
        Training samples.
    run_steps : int
        Length of the training run the shares are for.
    seed : int
    noise_scale : NoiseScale
        ``B_simple`` (McCandlish et al. 2018) with its bootstrap interval; also
        the critical batch size.
    rho : float or None
        Mean cosine of consecutive real gradients at ``batch_size`` during the
        measurement: what the gate's telemetry reads (drift included).
    noise_scale_rho : float
        The telemetry's estimate ``B (1 - rho) / rho`` (``math.inf`` for
        ``rho <= 0``); it counts drift as noise, so it exceeds ``B_simple``
        where the gradient turns between steps.
    drift_cosines : list of float
        Cosine of the gradient on one fixed batch before and ``1, 2, ...``
        training steps later (empty when no ``update`` trained the model).
    drift_angle : tuple of float
        ``phi`` (radians per step) fitted to them, and its interval.
    rows : list of BatchAdvice
        The batch size (measured, when the measurement trained), 2x, 4x, 8x,
        16x it (below the data size) and full batch (the model's).
    measurement : dict
        How it was measured: batch sizes of the estimator, rounds and the steps
        they started at, training steps, gradient evaluations and samples, the
        per-round noise scale and drift angle, and under ``"measured_batch"``
        per preset how the measured row was formed (skips counted, their
        interval, persistence, the tail's interval, prediction cosine).
    """

    batch_size: int
    n_samples: int
    run_steps: int
    seed: int
    noise_scale: NoiseScale
    rho: float | None
    noise_scale_rho: float
    drift_cosines: list[float]
    drift_angle: tuple[float, float, float]
    rows: list[BatchAdvice]
    measurement: dict

    # --- reading it -----------------------------------------------------------------------

    @property
    def critical_batch(self) -> tuple[float, float, float]:
        """The critical batch size ``B_crit ~ B_simple`` (samples) and its interval."""
        ns = self.noise_scale
        return ns.value, ns.low, ns.high

    @property
    def here(self) -> BatchAdvice:
        """The row of the batch size asked about."""
        return self.rows[0]

    @property
    def pays(self) -> bool:
        """Whether skipping pays at the batch size asked about (:attr:`BatchAdvice.pays`)."""
        return self.here.pays

    def _reason(self) -> str:
        """Why gradients are unpredictable at the batch asked about: noise or drift."""
        noise = f"noise scale ≈ {format_samples(self.noise_scale.value)} samples"
        noise_cos = 0.0 if math.isinf(self.here.noise_ratio) else 1.0 / (1.0 + self.here.noise_ratio)
        drift_cos = math.cos(self.drift_angle[0])
        if drift_cos < noise_cos:
            return f"the gradient turns between steps (drift {math.degrees(self.drift_angle[0]):.1f}° per step; {noise})"
        return f"gradients are unpredictable ({noise})"

    @property
    def verdict(self) -> str:
        """One line: does skipping pay at this batch, from which batch it would, and at what share."""
        b, here = self.batch_size, self.here
        if here.pays:
            share = here.skip["phase"]
            return (f"at batch {b:,}, yes: about {100 * share.value:.0f} % of backward passes could be skipped "
                    f"(band {100 * share.low:.0f}-{100 * share.high:.0f} %; noise scale ≈ "
                    f"{format_samples(self.noise_scale.value)} samples) — plain backprop at a smaller batch may do as well")
        later = next((r for r in self.rows[1:] if r.pays), None)
        start = f"at batch {b:,}, no: {self._reason()}"
        if later is None:
            top = self.rows[-1].batch_size
            return f"{start}; not at any batch up to {top:,} either"
        full = " (full batch)" if later.batch_size == self.n_samples else ""
        return (f"{start}; from batch ≈ {format_samples(later.batch_size)}{full}, about "
                f"{100 * later.skip['phase'].value:.0f} % of backward passes could be skipped — "
                "and a smaller batch would do as well")

    def plot_data(self) -> dict:
        """The figures of the plot: per batch size the advised shares and bands, the expected cosine, and the noise scale."""
        data: dict[str, Any] = {"batch_size": [r.batch_size for r in self.rows], "cosine": [r.cosine for r in self.rows],
                                "noise_scale": list(self.critical_batch), "n_samples": self.n_samples}
        for preset in self.rows[0].skip:
            for part in ("value", "low", "high"):
                data[f"{preset}_{part}"] = [getattr(r.skip[preset], part) for r in self.rows]
        return data

    def table_rows(self) -> list[list[str]]:
        """The table's cells: batch, noise/signal, expected cosine, each preset's advised share, pays."""
        out = []
        for r in self.rows:
            label = f"{r.batch_size:,}" + (" (full)" if r.batch_size == self.n_samples else "")
            ratio = "-" if math.isinf(r.noise_ratio) else f"{r.noise_ratio:.3g}"
            out.append([label, ratio, f"{r.cosine:.3f}", *(str(r.skip[p]) for p in r.skip), "yes" if r.pays else "no",
                        "measured" if r.measured else "model"])
        return out

    def table_header(self) -> list[str]:
        """Column names of :meth:`table_rows`."""
        return ["batch", "noise/signal", "cosine", *(f"{p} skipped" for p in self.rows[0].skip), "pays", "basis"]

    def summary_lines(self) -> list[str]:
        """The estimates in words (what the table does not show)."""
        ns = self.noise_scale
        rho = "-" if self.rho is None else f"{self.rho:.3f}"
        lines = [
            f"noise scale B_simple ≈ {format_samples(ns.value)} samples ({100 * ns.level:.0f} % interval "
            f"{format_samples(ns.low)}-{format_samples(ns.high)}; McCandlish et al. 2018, batches {ns.small_batch} and "
            f"{ns.big_batch}, {ns.groups} groups) = critical batch size",
            f"consecutive-gradient cosine at batch {self.batch_size:,}: rho = {rho} (the gate's estimate "
            f"B (1 - rho) / rho ≈ {format_samples(self.noise_scale_rho)} samples)",
        ]
        if self.drift_cosines:
            lines.append(f"drift: {math.degrees(self.drift_angle[0]):.2f}° per step (interval "
                         f"{math.degrees(self.drift_angle[1]):.2f}-{math.degrees(self.drift_angle[2]):.2f}°)")
        else:
            lines.append("drift: not measured (no update step); every row is the model's")
        lines.extend(self._measured_lines())
        lines.append(self.verdict)
        return lines

    def _measured_lines(self) -> list[str]:
        """What the presets' own trainers did on the measured steps (none without them)."""
        measured = self.measurement.get("measured_batch") or {}
        out = []
        for preset, how in measured.items():
            cos = how.get("prediction_cosine")
            cos_text = "-" if cos is None else f"{cos:.3f}"
            trapped = "; shut for good (stale residual)" if how.get("trapped") else ""
            out.append(f"{preset} preset on the measured run: skipped {how['measured_skipped']} of "
                       f"{how['measured_steps']} steps, {100 * how['persistence']:.0f} % of the last third; "
                       f"prediction cosine {cos_text} (last third){trapped}")
        return out

    def __str__(self) -> str:
        header, rows = self.table_header(), self.table_rows()
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        fmt = "  ".join(f"{{:>{w}}}" for w in widths)
        table = [fmt.format(*header), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in rows)]
        return "\n".join([*table, *self.summary_lines()])

    # --- JSON -------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """JSON-ready dict (infinite values as ``None``)."""
        return {"batch_size": self.batch_size, "n_samples": self.n_samples, "run_steps": self.run_steps, "seed": self.seed,
                "noise_scale": self.noise_scale.to_dict(), "rho": self.rho,
                "noise_scale_rho": _finite_or_none(self.noise_scale_rho), "drift_cosines": list(self.drift_cosines),
                "drift_angle": list(self.drift_angle), "rows": [r.to_dict() for r in self.rows],
                "measurement": dict(self.measurement), "verdict": self.verdict}

    @classmethod
    def from_dict(cls, data: Any) -> Advice:
        """Inverse of :meth:`to_dict`; :class:`~vsaopt.errors.ConfigError` naming what is missing or malformed."""
        if not isinstance(data, dict):
            raise ConfigError(f"Advice: expected a JSON object, got {type(data).__name__}")
        try:
            angle = tuple(float(a) for a in data["drift_angle"])
            if len(angle) != 3:
                raise ValueError("drift_angle needs 3 numbers")
            rows = [BatchAdvice.from_dict(r) for r in data["rows"]]
            if not rows:
                raise ValueError("rows is empty")
            return cls(int(data["batch_size"]), int(data["n_samples"]), int(data["run_steps"]), int(data["seed"]),
                       NoiseScale.from_dict(data["noise_scale"]), None if data["rho"] is None else float(data["rho"]),
                       _inf_if_none(data["noise_scale_rho"]), [float(c) for c in data["drift_cosines"]],
                       (angle[0], angle[1], angle[2]), rows, dict(data["measurement"]))
        except KeyError as exc:
            raise ConfigError(f"Advice: missing field {exc}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"Advice: malformed field ({exc})") from None

    def to_json(self) -> str:
        """The advice as JSON text."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    @classmethod
    def from_json(cls, text: Any) -> Advice:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(parse_json(text, "Advice"))
