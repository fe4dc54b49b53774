"""Every backend returns the reference's bytes for the foundation's operations."""

import pytest

from vsaopt.testing import props_core


@pytest.mark.parametrize("name", sorted(props_core.PROPERTIES))
def test_identity(name, fast_backend, reference):
    props_core.PROPERTIES[name](fast_backend, reference)


@pytest.mark.parametrize("name", sorted(props_core.PROPERTIES))
def test_identity_parallel_paths(name, fast_backend, reference, monkeypatch):
    """The numba prange variants (used above PARALLEL_MIN elements) give the same bytes."""
    if fast_backend.name != "numba":
        pytest.skip("parallel threshold is a numba setting")
    from vsaopt.backends.numba import _config

    monkeypatch.setattr(_config, "PARALLEL_MIN", 1)
    props_core.PROPERTIES[name](fast_backend, reference)
