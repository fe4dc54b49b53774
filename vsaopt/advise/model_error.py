"""How far the rows the noise-and-drift model advises on may be off: its error where it could be checked.

Only the batch the measurement trained at is measured (:mod:`vsaopt.advise.extrapolate`);
the other rows are the model's (:mod:`vsaopt.advise.gate_model`).  Its band
there covers only the uncertainty of its inputs, not the model's own error:
real gradients fluctuate more than a steady drift plus isotropic noise, and
the least-squares preset can shut for good, which the model never does.  So
each model row's band is widened on both sides by the model's error at the
measured batch (its estimate against the measured one), at least
:data:`MODEL_MARGIN`; the least-squares preset's band starts at 0.
"""

from __future__ import annotations

from .result import BatchAdvice, ShareBand

__all__ = ["MODEL_MARGIN", "widened_row", "LEAST_SQUARES_PRESET"]

#: Smallest widening of a model row's band: the 80 % quantile (4.3 points) of the model's error against the
#: realized share over the 44 runs (22 development settings, 2 seeds) it was checked on, rounded up.
MODEL_MARGIN = 0.05
#: The preset whose predictor can shut for good (its residual goes stale).
LEAST_SQUARES_PRESET = "deterministic"


def widened_row(row: BatchAdvice, errors: dict[str, float] | None, cap: float = 0.8) -> BatchAdvice:
    """``row`` (a model row) with each preset's band widened by ``max(|error|, MODEL_MARGIN)``, within ``[0, cap]``.

    Parameters
    ----------
    row : BatchAdvice
    errors : dict of str to float, or None
        Per preset, the measured share minus the model's at the measured
        batch (None: nothing was measured).
    cap : float
        The most a preset can skip (its longest PREDICT run over one more step).

    Examples
    --------
    >>> row = BatchAdvice(512, 0.5, 0.6, {"phase": ShareBand(0.3, 0.25, 0.35), "deterministic": ShareBand(0.3, 0.25, 0.35)})
    >>> w = widened_row(row, {"phase": -0.1, "deterministic": 0.0})
    >>> str(w.skip["phase"]), str(w.skip["deterministic"])
    ('30 % (15-45)', '30 % (0-40)')
    """
    skip = {}
    for preset, band in row.skip.items():
        margin = max(abs((errors or {}).get(preset, 0.0)), MODEL_MARGIN)
        low = 0.0 if preset == LEAST_SQUARES_PRESET else max(0.0, band.low - margin)
        high = min(max(cap, band.high), band.high + margin)
        skip[preset] = ShareBand(band.value, min(low, band.value), max(high, band.value))
    return BatchAdvice(row.batch_size, row.noise_ratio, row.cosine, skip, row.measured, row.model_skip)
