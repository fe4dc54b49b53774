"""The training harness gives the same bytes on every machine: the ordered matmul kernel and whole runs.

``matmul_ordered`` sums each output element over ``k`` from +0.0, every
product and addition rounded to float32 (never fused).  Every backend is
compared with the numpy reference byte for byte, the reference with an
explicit scalar loop, and a short training run with ``matmul="ordered"`` is
repeated in subprocesses under another OpenBLAS CPU kernel and another BLAS
thread count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import given

from vsaopt.errors import ConfigError
from vsaopt.testing import assert_bit_equal
from vsaopt.testing.strategies import matmul_operands
from vsaopt.train import MLP, TrainSettings
from vsaopt.train.model import exp_f32, log_f32

#: Sides of the generated matrices: empty, one, odd, around the numba kernel's unroll (8) and narrow-output (16) sizes.
def _sequential(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The documented order, one float32 scalar at a time: ``c = +0.0``, then ``c = f32(c + f32(a[i, q] * b[q, j]))``."""
    c = np.zeros((a.shape[0], b.shape[1]), np.float32)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for i in range(a.shape[0]):
            for j in range(b.shape[1]):
                s = np.float32(0.0)
                for q in range(a.shape[1]):
                    s = np.float32(s + np.float32(a[i, q] * b[q, j]))
                c[i, j] = s
    return c


def _check_against_reference(be, reference) -> None:
    @given(matmul_operands())
    def check(ab):
        a, b = ab
        got = be.to_host(be.matmul_ordered(be.to_device(a), be.to_device(b)))
        assert_bit_equal(got, reference.matmul_ordered(a, b), "matmul_ordered")

    check()


def test_matmul_ordered_matches_the_reference(fast_backend, reference):
    _check_against_reference(fast_backend, reference)


def test_matmul_ordered_parallel_path_matches(fast_backend, reference):
    """The numba ``prange`` twin (rows in chunks) gives the serial kernel's bytes."""
    if fast_backend.name != "numba":
        pytest.skip("the parallel threshold is a numba setting")
    from vsaopt.backends.numba import parallel_threshold

    with parallel_threshold(1):
        _check_against_reference(fast_backend, reference)


def test_reference_is_the_sequential_sum(reference):
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((5, 9)) * 2.0 ** rng.integers(-20, 20, (5, 9))).astype(np.float32)
    b = (rng.standard_normal((9, 4)) * 2.0 ** rng.integers(-20, 20, (9, 4))).astype(np.float32)
    b[1] = -b[0]  # cancellation against the first product
    assert_bit_equal(reference.matmul_ordered(a, b), _sequential(a, b), "reference vs scalar loop")


def test_no_fused_multiply_add(backend):
    """``x*x - (1 + 2**-11)`` with ``x = 1 + 2**-12``: rounded product then sum gives 0, an FMA gives 2**-24."""
    x = np.float32(1 + 2.0**-12)
    c = np.float32(-(1 + 2.0**-11))
    a, b = np.array([[1.0, x]], np.float32), np.array([[c], [x]], np.float32)
    fused = float(np.float64(x) * np.float64(x) + np.float64(c))  # exact in float64
    assert fused == 2.0**-24
    got = backend.to_host(backend.matmul_ordered(backend.to_device(a), backend.to_device(b)))
    assert got.tobytes() == np.zeros((1, 1), np.float32).tobytes()
    assert_bit_equal(got, _sequential(a, b), "unfused order")


@pytest.mark.parametrize("m", [3, 20], ids=["narrow", "wide"])
def test_no_fused_multiply_add_on_every_path(backend, m):
    """Pairs ``c + x*x`` over 10 terms, 5 rows: the unrolled, two-row, tail and transposed paths; 0 unless fused."""
    x = np.float32(1 + 2.0**-12)
    c = np.float32(-(1 + 2.0**-11))
    a = np.tile(np.array([1.0, x], np.float32), (5, 5))
    b = np.tile(np.array([[c], [x]], np.float32), (5, m))
    want = _sequential(a, b)
    fused = np.zeros_like(want)
    for q in range(10):  # the exact product added, one rounding per step: what an FMA computes
        fused = (fused.astype(np.float64) + np.float64(a[0, q]) * np.float64(b[q, 0])).astype(np.float32)
    assert want.tobytes() != fused.tobytes()
    got = backend.to_host(backend.matmul_ordered(backend.to_device(a), backend.to_device(b)))
    assert_bit_equal(got, want, f"unfused order, m={m}")


def test_sum_starts_from_positive_zero(backend):
    """Products that are all -0.0 sum to +0.0; an empty inner dimension gives +0.0."""
    a = np.array([[-0.0, 1.0]], np.float32)
    b = np.array([[1.0], [-0.0]], np.float32)
    got = backend.to_host(backend.matmul_ordered(backend.to_device(a), backend.to_device(b)))
    assert got.tobytes() == np.zeros((1, 1), np.float32).tobytes()
    empty = backend.to_host(backend.matmul_ordered(backend.to_device(np.zeros((3, 0), np.float32)),
                                                   backend.to_device(np.zeros((0, 2), np.float32))))
    assert empty.tobytes() == np.zeros((3, 2), np.float32).tobytes()


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return np.abs(got.view(np.int32).astype(np.int64) - want.view(np.int32))


def test_exp_and_log_from_basic_operations_are_correctly_rounded_here():
    """The softmax's exp and log: within half an ulp of the float64 result on the ranges the head uses, specials exact."""
    rng = np.random.default_rng(4)
    z = np.concatenate([-rng.exponential(4.0, 100_000), rng.uniform(-104.0, 0.0, 50_000)]).astype(np.float32)
    assert _ulps(exp_f32(np, z), np.exp(z.astype(np.float64)).astype(np.float32)).max() == 0
    s = np.concatenate([rng.uniform(1.0, 12.0, 100_000), 2.0 ** rng.uniform(-149, 127, 50_000)]).astype(np.float32)
    assert _ulps(log_f32(np, s), np.log(s.astype(np.float64)).astype(np.float32)).max() == 0
    specials = np.array([0.0, -0.0, -np.inf, np.inf, np.nan, -200.5, 89.0], np.float32)
    with np.errstate(over="ignore"):
        want = np.exp(specials.astype(np.float64)).astype(np.float32)
    assert exp_f32(np, specials).tobytes() == want.tobytes()
    with np.errstate(divide="ignore", invalid="ignore"):
        assert log_f32(np, specials).tobytes() == np.log(specials).tobytes()


def test_ordered_mlp_gradients_are_close_to_blas(backend):
    """The ordered product changes the last bits only: the same model, loss and gradients within float32 rounding."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((37, 11)).astype(np.float32)
    y = rng.integers(0, 4, 37)
    ordered = MLP([11, 19, 17, 4], seed=2, backend=backend)
    blas = MLP([11, 19, 17, 4], seed=2, backend=backend, matmul="blas")
    xd, yd = backend.to_device(x), backend.to_device(y)
    lo, go = ordered.loss_and_gradients(xd, yd)
    lb, gb = blas.loss_and_gradients(xd, yd)
    assert lo == pytest.approx(lb, rel=1e-5)
    for k in gb:
        np.testing.assert_allclose(backend.to_host(go[k]), backend.to_host(gb[k]), rtol=1e-4, atol=1e-6, err_msg=k)


def test_settings_matmul_option():
    assert TrainSettings().matmul == "ordered"
    with pytest.raises(ConfigError, match="matmul"):
        TrainSettings(matmul="fast")
    old = TrainSettings(steps=5).to_dict()
    del old["matmul"]  # a result written before the option: those runs used BLAS
    assert TrainSettings.from_dict(old).matmul == "blas"
    with pytest.raises(ConfigError, match="matmul"):
        MLP([3, 2], matmul="BLAS")


# --- whole runs in other processes -------------------------------------------------------------------

#: Fields of a run's JSON that hold clock readings (and figures computed from them).
CLOCK_FIELDS = frozenset({"time", "eval_time", "baseline_eval_time", "wall_seconds", "time_to_target", "speedup",
                          "wall_speedup"})

RUN = """
import hashlib, json, sys
import numpy as np
from vsaopt.train import MODES, TrainSettings, run_training
s = TrainSettings(dataset="digits", steps=40, batch_size=128, hidden=(24, 16), lr=0.1, eval_every=10,
                  timing_warmup_steps=0, threads=int(sys.argv[1]), matmul=sys.argv[2], backend=sys.argv[3])
rng = np.random.default_rng(0)
a, b = rng.standard_normal((300, 300)).astype(np.float32), rng.standard_normal((300, 300)).astype(np.float32)
digest = {"blas": np.matmul(a, b), "exp": np.exp(-10 * np.abs(a)), "log": np.log(1 + np.abs(a))}
print(json.dumps({"run": run_training(s, MODES).to_dict(),
                  **{k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in digest.items()}}))
"""


def _numpy_simd_targets() -> str:
    """numpy's CPU-dispatched SIMD targets of this build (``NPY_DISABLE_CPU_FEATURES`` turns them off)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_dispatch__
    return " ".join(__cpu_dispatch__)


def _strip_clock(value):
    if isinstance(value, dict):
        return {k: _strip_clock(v) for k, v in value.items() if k not in CLOCK_FIELDS}
    if isinstance(value, list):
        return [_strip_clock(v) for v in value]
    return value


def _run(threads: int, coretype: str | None, matmul: str = "ordered", backend: str = "auto") -> dict:
    """A short run in a fresh process; with ``coretype``, as on an older CPU: that OpenBLAS kernel, no numpy SIMD."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES")}
    if coretype is not None:
        env["OPENBLAS_CORETYPE"] = coretype
        env["NPY_DISABLE_CPU_FEATURES"] = _numpy_simd_targets()
    proc = subprocess.run([sys.executable, "-c", RUN, str(threads), matmul, backend], capture_output=True, text=True,
                          env=env, timeout=300, cwd=tempfile.gettempdir())  # outside the source tree: the installed package
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    return {**out, "run": _strip_clock(out["run"])}


@pytest.fixture(scope="module")
def here_and_elsewhere() -> tuple[dict, dict]:
    """The same run here (1 BLAS thread) and as on another CPU (Haswell sgemm kernel, numpy's baseline code, 2 BLAS threads)."""
    return _run(1, None), _run(2, "Haswell")


def _same_run(here: dict, there: dict, *differing_settings: str) -> None:
    """Byte-identical JSON (clock readings left out) but for the named settings."""
    here, there = json.loads(json.dumps(here)), json.loads(json.dumps(there))  # the fixture's runs stay as they are
    for run in (here, there):
        for name in differing_settings:
            del run["settings"][name]
    assert here["modes"].keys() == there["modes"].keys()
    for mode in here["modes"]:
        assert here["modes"][mode] == there["modes"][mode], mode
    assert json.dumps(here, sort_keys=True) == json.dumps(there, sort_keys=True)


def test_ordered_run_is_identical_under_another_blas_kernel_and_thread_count(here_and_elsewhere):
    here, elsewhere = here_and_elsewhere
    _same_run(here["run"], elsewhere["run"], "threads")


def test_ordered_run_is_identical_on_the_reference_backend(here_and_elsewhere):
    """numba's kernels (``auto`` here) and the numpy reference's give the same run."""
    reference = _run(1, None, backend="numpy")
    _same_run(here_and_elsewhere[0]["run"], reference["run"], "backend", "threads")


@pytest.mark.parametrize("operation", ["blas", "exp", "log"])
def test_the_other_cpu_really_differs(here_and_elsewhere, operation):
    """The premise of the test above: the emulated CPU's sgemm (float32 exp, log) bits differ from this one's."""
    here, elsewhere = here_and_elsewhere
    if here[operation] == elsewhere[operation]:
        pytest.skip(f"{operation}: this CPU's default code path gives the same bits as the emulated one")
    assert here[operation] != elsewhere[operation]
