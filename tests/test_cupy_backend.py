"""The cupy backend without a GPU: CUDA sources, kernel names, dispatch and skips.

The GPU arithmetic itself is checked by the cross-backend property tests and
``vsaopt spec verify --backend cupy``, which include cupy automatically where
it loads; here nothing runs on a GPU.  Sources are compiled to PTX with nvcc
(the tests skip when nvcc is absent).
"""

from __future__ import annotations

import ast
import ctypes
import ctypes.util
import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vsaopt
from vsaopt.backend import backend_status
from vsaopt.errors import BackendError
from vsaopt.protocol import KERNEL_NAMES

CUPY_PKG = "vsaopt.backends.cupy"
NVCC = shutil.which("nvcc")
NVCC_FLAGS = ("--ptx", "-arch=sm_90", "--fmad=false", "-std=c++17")
#: An `extern "C" __global__` kernel definition in CUDA source.
KERNEL_DEF = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(vsaopt_\w+)\s*\(')
#: A kernel entry point in PTX (unmangled: proof of C linkage).
PTX_ENTRY = re.compile(r"^\.visible \.entry (\w+)\(", re.MULTILINE)
#: A floating-point fused multiply-add in PTX (integer mad.lo is fine).
PTX_FLOAT_FMA = re.compile(r"\b(fma\.rn(\.ftz)?\.f(32|64)|mad(\.rn)?(\.ftz)?\.f(32|64))\b")
GPU_PRESENT = backend_status()["cupy"] == "available"


def _pkg():
    return importlib.import_module(CUPY_PKG)


def _build():
    return importlib.import_module(f"{CUPY_PKG}._build")


def _modules():
    pkg = _pkg()
    return {name: importlib.import_module(f"{CUPY_PKG}.{name}") for name in pkg.KERNEL_MODULES}


@pytest.fixture(scope="module")
def ptx(tmp_path_factory) -> dict[str, str]:
    """PTX of every source as NVRTC receives it (header pasted in), compiled by nvcc."""
    if NVCC is None:
        pytest.skip("nvcc is not on PATH: the CUDA sources cannot be compiled here")
    out_dir = tmp_path_factory.mktemp("ptx")
    result = {}
    for src in _pkg().CUDA_SOURCES:
        cu = out_dir / src
        cu.write_text(_build().source_text(src), encoding="utf-8")
        target = out_dir / (src + ".ptx")
        proc = subprocess.run([NVCC, *NVCC_FLAGS, "-o", str(target), str(cu)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{src} (pasted source) does not compile:\n{proc.stderr}"
        result[src] = target.read_text(encoding="utf-8")
    return result


@pytest.mark.parametrize("src", ["philox.cu", "reduce.cu", "ternary.cu", "pack.cu", "vsa.cu", "accum.cu", "predict.cu"])
def test_source_file_compiles_with_nvcc(src, tmp_path):
    """Each .cu file compiles as it lies on disk (its #include resolved by nvcc)."""
    if NVCC is None:
        pytest.skip("nvcc is not on PATH: the CUDA sources cannot be compiled here")
    path = _build().SOURCE_DIR / src
    proc = subprocess.run([NVCC, *NVCC_FLAGS, "-o", str(tmp_path / "out.ptx"), str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert not re.search(r"\bwarning\b", proc.stderr), proc.stderr


def test_every_source_is_listed():
    on_disk = sorted(p.name for p in _build().SOURCE_DIR.glob("*.cu"))
    assert on_disk == sorted(_pkg().CUDA_SOURCES)
    assert [m.SOURCE for m in _modules().values()] == list(_pkg().CUDA_SOURCES)


def test_pasted_source_has_no_local_include():
    for src in _pkg().CUDA_SOURCES:
        text = _build().source_text(src)
        assert '#include "' not in text, src
        assert "vsaopt_philox_round" in text, src  # the header is in


def test_ptx_has_no_float_fma(ptx):
    """--fmad=false and the rounded intrinsics: no float multiply-add anywhere."""
    for src, text in ptx.items():
        found = PTX_FLOAT_FMA.findall(text)
        assert not found, f"{src}: contracted float operations {found[:3]}"


def test_wrapper_kernels_exist_in_sources(ptx):
    """Each module's CUDA_NAMES are exactly the extern "C" kernels of its source, emitted unmangled."""
    for name, mod in _modules().items():
        text = _build().source_text(mod.SOURCE)
        defined = KERNEL_DEF.findall(text)
        assert len(defined) == len(set(defined)), f"{mod.SOURCE}: duplicate kernel names"
        assert sorted(mod.CUDA_NAMES) == sorted(defined), f"{name}: CUDA_NAMES differ from {mod.SOURCE}"
        assert set(defined) <= set(PTX_ENTRY.findall(ptx[mod.SOURCE])), f"{mod.SOURCE}: missing PTX entries"


def test_wrappers_launch_only_declared_kernels():
    """Every "vsaopt_*" string literal in a wrapper is one of its module's declared kernels."""
    for name, mod in _modules().items():
        tree = ast.parse(Path(mod.__file__).read_text(encoding="utf-8"))
        literals = {
            node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("vsaopt_")
        }
        assert literals <= set(mod.CUDA_NAMES), f"{name}: {sorted(literals - set(mod.CUDA_NAMES))}"
        assert literals == set(mod.CUDA_NAMES), f"{name}: declared but never launched {sorted(set(mod.CUDA_NAMES) - literals)}"


def test_every_protocol_kernel_is_implemented():
    table = _pkg().kernels()
    assert sorted(table) == sorted(KERNEL_NAMES)
    assert all(callable(f) for f in table.values())


def test_modules_mirror_the_reference_layout():
    """Each cupy module provides the kernels of the numpy module of the same name."""
    for name, mod in _modules().items():
        ref = importlib.import_module(f"vsaopt.backends.numpy.{name}")
        assert sorted(mod.KERNELS) == sorted(ref.KERNELS), name


def test_import_does_not_import_cupy():
    code = (
        "import sys, importlib\n"
        f"pkg = importlib.import_module({CUPY_PKG!r})\n"
        "pkg.kernels()\n"
        "print('cupy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.skipif(GPU_PRESENT, reason="a usable GPU is present")
def test_get_backend_names_the_reason():
    reason = _pkg().gpu_reason()
    assert reason
    with pytest.raises(BackendError) as info:
        _pkg().make_backend()
    assert str(info.value) == reason
    with pytest.raises(BackendError, match="cupy") as info:
        vsaopt.get_backend("cupy")
    assert reason in str(info.value)
    assert "cupy" not in vsaopt.available_backends()


@pytest.mark.skipif(GPU_PRESENT, reason="a usable GPU is present")
def test_backend_fixture_collects_and_skips_cupy():
    """The cross-backend tests carry a cupy entry that is skipped, with the reason, here."""
    test = "tests/test_backend.py::test_every_backend_has_every_core_kernel"
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test + "[cupy]"],
        capture_output=True, text=True, cwd=root, env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 skipped" in proc.stdout
    assert "cupy: " in proc.stdout


def test_dlpack_device_detection():
    on_cuda = _build().on_cuda_device

    class FakeCudaTensor:
        def __dlpack_device__(self):
            return (2, 0)  # kDLCUDA, device 0

    assert on_cuda(FakeCudaTensor())
    assert not on_cuda(np.zeros(3, np.float32))  # kDLCPU
    assert not on_cuda([1.0, 2.0])


def test_kernel_scalars_have_c_types():
    bld = _build()
    assert bld.draw_args(2**64 - 1, 1, 2, 3) == (2**32 - 1, 2**32 - 1, 3, 2, 1)
    assert [type(v) for v in bld.draw_args(5, 0, 0, 0)] == [np.uint32] * 5
    assert type(bld.u64(3)) is np.uint64 and type(bld.f32(0.1)) is np.float32 and type(bld.f64(0.1)) is np.float64
    assert bld.OPTIONS == ("--fmad=false", "-std=c++17")


def test_fma_detector_sees_a_contraction(tmp_path):
    """Negative control: without --fmad=false, nvcc contracts x*y + z and the pattern finds it."""
    if NVCC is None:
        pytest.skip("nvcc is not on PATH")
    cu = tmp_path / "contract.cu"
    cu.write_text('extern "C" __global__ void k(float* x, double* y) { x[0] = x[1] * x[2] + x[3]; y[0] = y[1] * y[2] + y[3]; }\n')
    target = tmp_path / "contract.ptx"
    subprocess.run([NVCC, "--ptx", "-arch=sm_90", "-o", str(target), str(cu)], check=True, capture_output=True)
    assert len(PTX_FLOAT_FMA.findall(target.read_text())) == 2


def _nvrtc_library() -> str | None:
    """libnvrtc: ``$VSAOPT_NVRTC_LIBRARY``, the system's, or the one of an ``nvidia-cuda-nvrtc`` wheel."""
    path = os.environ.get("VSAOPT_NVRTC_LIBRARY") or ctypes.util.find_library("nvrtc")
    if path:
        return path
    try:
        import nvidia  # namespace package of the NVIDIA wheels
    except ImportError:
        return None
    for root in getattr(nvidia, "__path__", []):
        for lib in sorted(Path(root).glob("**/libnvrtc.so*")):
            return str(lib)
    return None


def test_sources_compile_with_nvrtc():
    """What cupy.RawModule does, without a GPU: NVRTC on the pasted source with the backend's options."""
    path = _nvrtc_library()
    if path is None:
        pytest.skip("libnvrtc not found (set VSAOPT_NVRTC_LIBRARY or install nvidia-cuda-nvrtc)")
    lib = ctypes.CDLL(path)
    for src in _pkg().CUDA_SOURCES:
        prog = ctypes.c_void_p()
        code = _build().source_text(src).encode()
        assert lib.nvrtcCreateProgram(ctypes.byref(prog), code, src.encode(), 0, None, None) == 0
        opts = [o.encode() for o in (*_build().OPTIONS, "-arch=compute_90")]
        rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
        ptx = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetPTX(prog, ptx)
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
        assert rc == 0, f"{src}: {log.value.decode()}"
        text = ptx.value.decode()
        assert set(KERNEL_DEF.findall(_build().source_text(src))) <= set(PTX_ENTRY.findall(text)), src
        assert not PTX_FLOAT_FMA.findall(text), src
