"""Backend registry, dispatch and the typed error hierarchy."""

import subprocess
import sys

import numpy as np
import pytest

import vsaopt
from vsaopt import backend as registry
from vsaopt import errors, ternary
from vsaopt.errors import BackendError, ConfigError


def test_reference_and_numba_load():
    assert vsaopt.get_backend("numpy").name == "numpy"
    assert "numpy" in vsaopt.available_backends()
    assert vsaopt.get_backend("numba").xp is np


def test_every_backend_has_every_core_kernel(backend):
    from vsaopt.protocol import KERNEL_NAMES

    missing = [k for k in KERNEL_NAMES if k not in backend.kernel_names]
    assert not missing


def test_auto_prefers_numba_without_a_gpu(monkeypatch):
    monkeypatch.delenv(registry.ENV_VAR, raising=False)
    expected = "cupy" if "cupy" in vsaopt.available_backends() else "numba"
    assert vsaopt.get_backend("auto").name == expected
    assert vsaopt.get_backend(None).name == expected


def test_environment_variable_overrides(monkeypatch):
    monkeypatch.setenv(registry.ENV_VAR, "numpy")
    assert vsaopt.get_backend("auto").name == "numpy"
    assert registry.resolve_backend(None, np.zeros(3)).name == "numpy"


def test_unknown_name_is_a_config_error():
    with pytest.raises(ConfigError, match="backend"):
        vsaopt.get_backend("tpu")


def test_unavailable_backend_says_why():
    status = vsaopt.backend_status()
    if status["cupy"] == "available":
        pytest.skip("a GPU is present")
    with pytest.raises(BackendError, match="cupy"):
        vsaopt.get_backend("cupy")


def test_missing_kernel_does_not_fall_back():
    be = registry.Backend("partial", np, {}, array_type=np.ndarray)
    with pytest.raises(BackendError, match="partial.*abs_stats"):
        ternary.quantize_deterministic(np.ones(3, np.float32), backend=be)


def test_gpu_backend_rejects_host_arrays():
    fake_gpu = registry.Backend("fakegpu", np, {}, array_type=type(None), device="gpu")
    with pytest.raises(BackendError, match="fakegpu"):
        ternary.quantize_deterministic(np.ones(3, np.float32), backend=fake_gpu)


def test_bad_backend_argument():
    with pytest.raises(ConfigError, match="backend"):
        ternary.pack(np.zeros(3, np.int8), backend=3.5)


def test_import_does_not_load_numba_or_cupy(tmp_path):
    code = "import sys, vsaopt; print('numba' in sys.modules, 'cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize(
    "cls, base",
    [
        (errors.ConfigError, ValueError),
        (errors.ShapeError, ValueError),
        (errors.DTypeError, TypeError),
        (errors.NonFiniteError, ValueError),
        (errors.EncodingError, ValueError),
        (errors.BackendError, RuntimeError),
        (errors.PhaseError, RuntimeError),
        (errors.CheckpointError, ValueError),
        (errors.SpecError, ValueError),
    ],
)
def test_error_hierarchy(cls, base):
    assert issubclass(cls, errors.OptimError) and issubclass(cls, base)


def test_pyproject_lists_every_package():
    """A package missing from pyproject's list would vanish from `pip install .`."""
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"vsaopt." + ".".join(p.parent.relative_to(root / "vsaopt").parts) if p.parent != root / "vsaopt" else "vsaopt"
             for p in (root / "vsaopt").rglob("__init__.py")}
    found |= {"vsaopt.backends" + "".join("." + part for part in p.parent.relative_to(root / "backends").parts)
              for p in (root / "backends").rglob("__init__.py")}
    found.add("vsaopt.spec")
    assert found == listed, (sorted(found - listed), sorted(listed - found))


def test_missing_kernel_keeps_hasattr_working():
    be = registry.Backend("partial", np, {}, array_type=np.ndarray)
    assert not hasattr(be, "quantize_threshold")
    with pytest.raises(errors.MissingKernelError):
        be.quantize_threshold


def test_backend_lacking_a_protocol_kernel_is_refused_at_load(monkeypatch):
    import types

    full = vsaopt.get_backend("numpy")
    kernels = {k: getattr(full, k) for k in full.kernel_names if k not in ("wls_fit", "fwht")}
    fake = types.ModuleType("fake_partial_backend")
    fake.make_backend = lambda: registry.Backend("partial", np, kernels, array_type=np.ndarray)
    monkeypatch.setitem(sys.modules, "fake_partial_backend", fake)
    monkeypatch.setitem(registry._MODULES, "numba", "fake_partial_backend")
    monkeypatch.setattr(registry, "_loaded", {})
    monkeypatch.setattr(registry, "_failed", {})
    with pytest.raises(BackendError, match="lacks kernels: fwht, wls_fit"):
        vsaopt.get_backend("numba")
    assert "lacks kernels" in registry.backend_status()["numba"]


def test_to_host_returns_a_copy_and_to_device_is_a_no_op_on_the_host():
    be = vsaopt.get_backend("numpy")
    x = np.arange(4, dtype=np.float32)
    for copy in (registry.to_host(x), be.to_host(x)):
        assert copy.tobytes() == x.tobytes() and not np.shares_memory(copy, x)
    assert registry.to_host(x, copy=False) is x
    assert registry.to_host(np.float32(2.5)).shape == ()
    assert be.to_device(x) is x and registry.to_device(be, x) is x
    assert not be.is_gpu and not registry.is_device_array(x)


def test_device_checks_accept_any_backend_object():
    class ThirdParty:
        name, xp = "third", np

    class DeviceArray:
        __module__ = "cupy._core"

        def get(self):
            return np.ones(2)

    assert not registry.is_gpu(ThirdParty())
    assert registry.is_gpu(registry.Backend("g", np, {}, array_type=type(None), device="gpu"))
    assert registry.is_device_array(DeviceArray())
    assert registry.to_host(DeviceArray()).tolist() == [1.0, 1.0]
