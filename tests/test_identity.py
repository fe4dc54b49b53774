"""Every backend returns the reference's bytes for every public operation (the conformance properties)."""

import pytest

from vsaopt.testing.conformance import PROPERTIES

NAMES = sorted(PROPERTIES)


@pytest.mark.parametrize("name", NAMES)
def test_identity(name, fast_backend, reference):
    PROPERTIES[name](fast_backend, reference)


@pytest.mark.parametrize("name", NAMES)
def test_identity_parallel_paths(name, fast_backend, reference, monkeypatch):
    """The numba prange variants (used above PARALLEL_MIN elements) give the same bytes."""
    if fast_backend.name != "numba":
        pytest.skip("parallel threshold is a numba setting")
    from vsaopt.backends.numba import _config

    monkeypatch.setattr(_config, "PARALLEL_MIN", 1)
    PROPERTIES[name](fast_backend, reference)
