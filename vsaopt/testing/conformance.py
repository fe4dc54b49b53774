"""Run vsaopt's cross-backend identity properties and golden vectors against any backend.

Each entry of :data:`PROPERTIES` is ``check(candidate, reference)``: a
Hypothesis test (under the active settings profile) asserting that the public
operation gives byte-identical results on ``candidate`` and on ``reference``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import settings

from ..errors import ConfigError
from . import props_accum, props_core, props_vsa

__all__ = ["PROPERTIES", "ConformanceResult", "check_backend"]

_PROFILE = "vsaopt-conformance"

#: Property name -> ``check(candidate, reference)``.
PROPERTIES: dict[str, Callable[[Any, Any], None]] = {
    **props_core.PROPERTIES,
    **props_vsa.PROPERTIES,
    **props_accum.PROPERTIES,
}


@dataclass(frozen=True)
class ConformanceResult:
    """What :func:`check_backend` checked, when every check passed.

    Attributes
    ----------
    backend, reference : str
        Names of the backend checked and of the one its results equal.
    properties : int
        Identity properties run (each a Hypothesis test).
    max_examples : int
        Hypothesis examples per property, at most (fewer where a property's
        input space is smaller).
    golden_cases : int
        Golden-vector cases reproduced byte for byte (0 with ``vectors=False``).
    """

    backend: str
    reference: str
    properties: int
    max_examples: int
    golden_cases: int


def check_backend(backend: Any, *, reference: Any = "numpy", max_examples: int = 50, vectors: bool = True) -> ConformanceResult:
    """Check ``backend`` against the reference with every property and every golden vector.

    Parameters
    ----------
    backend : a :class:`vsaopt.protocol.KernelBackend` object or a registry name
    reference : backend or name the results must equal byte for byte
    max_examples : Hypothesis examples per property
    vectors : also run the golden vectors of ``spec/``

    Returns
    -------
    ConformanceResult
        How many properties, examples per property and golden cases passed.

    Raises
    ------
    AssertionError
        Naming every property and golden case that failed.
    ConfigError, DTypeError
        ``max_examples`` is not an integer in [1, 10**6], or ``vectors`` not a bool.

    Examples
    --------
    >>> check_backend("numpy", max_examples=2, vectors=False)  # doctest: +ELLIPSIS
    ConformanceResult(backend='numpy', reference='numpy', properties=..., max_examples=2, golden_cases=0)
    """
    from .._arrays import check_int
    from ..backend import get_backend

    check_int(max_examples, "max_examples", 1, 10**6)
    if not isinstance(vectors, bool):
        raise ConfigError(f"vectors: expected a bool, got {vectors!r}")
    cand = get_backend(backend) if isinstance(backend, str) else backend
    ref = get_backend(reference) if isinstance(reference, str) else reference
    failures = _property_failures(cand, ref, max_examples)
    cases = 0
    if vectors:
        golden, cases = _golden_failures(cand)
        failures.extend(golden)
    if failures:
        raise AssertionError(f"backend {cand.name!r} failed {len(failures)} checks:\n" + "\n".join(failures))
    return ConformanceResult(str(cand.name), str(ref.name), len(PROPERTIES), max_examples, cases)


def _property_failures(cand: Any, ref: Any, max_examples: int) -> list[str]:
    """Every property ``cand`` fails against ``ref``, under a profile of ``max_examples`` examples."""
    failures = []
    previous = settings.get_current_profile_name()
    settings.register_profile(_PROFILE, parent=settings.get_profile(previous), max_examples=max_examples,
                              deadline=None, database=None)
    settings.load_profile(_PROFILE)
    try:
        for name, check in PROPERTIES.items():
            try:
                check(cand, ref)
            except AssertionError as exc:
                failures.append(f"property {name}: {exc}")
    finally:
        settings.load_profile(previous)
    return failures


def _golden_failures(cand: Any) -> tuple[list[str], int]:
    """``(failures, cases run)`` of the golden vectors on ``cand``."""
    from ..golden import iter_results

    failures, cases = [], 0
    for _, case, failure in iter_results(cand):
        cases += case is not None
        if failure is not None:
            failures.append(f"golden {failure}")
    return failures, cases
