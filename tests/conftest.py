"""Shared fixtures: a ``backend`` fixture over every registered backend, Hypothesis profiles."""

from __future__ import annotations

import os

import numpy as np
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


def _central_differences(net, x, y, eps=1e-6):
    """Central finite differences of ``net.loss(x, y)`` in every parameter element (float64 parameters)."""
    out = {}
    for k, p in net.params.items():
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            lp = net.loss(x, y)
            p[i] = old - eps
            lm = net.loss(x, y)
            p[i] = old
            g[i] = (lp - lm) / (2 * eps)
        out[k] = g
    return out


@pytest.fixture
def numeric_gradient():
    """``f(net, x, y)``: the central finite-difference gradient of ``net.loss`` (the training MLPs' gradient checks)."""
    return _central_differences
