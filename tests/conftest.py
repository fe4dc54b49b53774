"""Shared fixtures: a ``backend`` fixture over every registered backend, Hypothesis profiles."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from vsaopt.backend import BACKEND_NAMES, backend_status, get_backend

settings.register_profile(
    "ci", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile("dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_STATUS = backend_status()


def _param(name: str):
    reason = _STATUS[name]
    marks = [pytest.mark.skipif(reason != "available", reason=f"{name}: {reason}")]
    if name == "cupy":
        marks.append(pytest.mark.cupy)
    return pytest.param(name, id=name, marks=marks)


@pytest.fixture(params=[_param(n) for n in BACKEND_NAMES])
def backend(request):
    """Every backend, the numpy reference included; absent ones are skipped."""
    return get_backend(request.param)


@pytest.fixture(params=[_param(n) for n in BACKEND_NAMES if n != "numpy"])
def fast_backend(request):
    """Every backend other than the reference, compared against it."""
    return get_backend(request.param)


@pytest.fixture
def reference():
    """The numpy reference backend."""
    return get_backend("numpy")
