"""Run vsaopt's cross-backend identity properties and golden vectors against any backend.

Each entry of :data:`PROPERTIES` is ``check(candidate, reference)``: a
Hypothesis test (under the active settings profile) asserting that the public
operation gives byte-identical results on ``candidate`` and on ``reference``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import settings

from . import props_accum, props_core, props_vsa

__all__ = ["PROPERTIES", "check_backend"]

_PROFILE = "vsaopt-conformance"

#: Property name -> ``check(candidate, reference)``.
PROPERTIES: dict[str, Callable[[Any, Any], None]] = {
    **props_core.PROPERTIES,
    **props_vsa.PROPERTIES,
    **props_accum.PROPERTIES,
}


def check_backend(backend: Any, *, reference: Any = "numpy", max_examples: int = 50, vectors: bool = True) -> None:
    """Check ``backend`` against the reference with every property and every golden vector.

    Parameters
    ----------
    backend : a :class:`vsaopt.protocol.KernelBackend` object or a registry name
    reference : backend or name the results must equal byte for byte
    max_examples : Hypothesis examples per property
    vectors : also run the golden vectors of ``spec/``

    Raises
    ------
    AssertionError
        Naming every property and golden case that failed.
    """
    from ..backend import get_backend
    from ..golden import verify

    cand = get_backend(backend) if isinstance(backend, str) else backend
    ref = get_backend(reference) if isinstance(reference, str) else reference
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
    if vectors:
        failures.extend(f"golden {f}" for f in verify(cand))
    if failures:
        raise AssertionError(f"backend {cand.name!r} failed {len(failures)} checks:\n" + "\n".join(failures))
