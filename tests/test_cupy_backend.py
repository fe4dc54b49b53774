"""The cupy backend without a GPU: CUDA sources, kernel names, dispatch and skips.

The GPU arithmetic itself is checked by the cross-backend property tests and
``vsaopt spec verify --backend cupy``, which include cupy automatically where
it loads; here nothing runs on a GPU.  Sources are compiled to PTX with nvcc
(the tests skip when nvcc is absent), optionally with NVRTC, and executed on
the host under an emulation of the CUDA execution model (g++; see the section
"the kernels executed on the host"), compared byte for byte with the numpy
reference.
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
from typing import Any

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


def _cuda_modules():
    """The kernel modules with a CUDA source of their own."""
    return {name: mod for name, mod in _modules().items() if name not in _pkg().COMPOSED_MODULES}


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


@pytest.mark.parametrize("src", ["philox.cu", "reduce.cu", "ternary.cu", "pack.cu", "vsa.cu", "accum.cu", "predict.cu",
                                 "matmul.cu", "comm.cu"])
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
    assert [m.SOURCE for m in _cuda_modules().values()] == list(_pkg().CUDA_SOURCES)
    assert not any(hasattr(_modules()[name], "SOURCE") for name in _pkg().COMPOSED_MODULES)


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
    for name, mod in _cuda_modules().items():
        text = _build().source_text(mod.SOURCE)
        defined = KERNEL_DEF.findall(text)
        assert len(defined) == len(set(defined)), f"{mod.SOURCE}: duplicate kernel names"
        assert sorted(mod.CUDA_NAMES) == sorted(defined), f"{name}: CUDA_NAMES differ from {mod.SOURCE}"
        assert set(defined) <= set(PTX_ENTRY.findall(ptx[mod.SOURCE])), f"{mod.SOURCE}: missing PTX entries"


def test_wrappers_launch_only_declared_kernels():
    """Every "vsaopt_*" string literal in a wrapper is one of its module's declared kernels."""
    for name, mod in _cuda_modules().items():
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


def test_import_does_not_import_cupy(tmp_path):
    code = (
        "import sys, importlib\n"
        f"pkg = importlib.import_module({CUPY_PKG!r})\n"
        "pkg.kernels()\n"
        "print('cupy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
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
    # PYTHONSAFEPATH: import the installed package, not the source folder the run starts in
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONSAFEPATH="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test + "[cupy]"],
        capture_output=True, text=True, cwd=root, env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 skipped" in proc.stdout
    assert "cupy: " in proc.stdout and "vsaopt.backends" not in proc.stdout


def test_dlpack_device_detection():
    on_cuda = _build().on_cuda_device

    class FakeCudaTensor:
        def __dlpack_device__(self):
            return (2, 0)  # kDLCUDA, device 0

    assert on_cuda(FakeCudaTensor())
    assert not on_cuda(np.zeros(3, np.float32))  # kDLCPU
    assert not on_cuda([1.0, 2.0])


def test_compiled_modules_are_memoized_per_device(monkeypatch):
    import types

    bld = _build()
    state = {"device": 0}
    built = []

    class FakeModule:
        def __init__(self, code, options):
            self.device = state["device"]
            built.append(self.device)

        def get_function(self, name):
            return (name, self.device)

    class FakeDevice:
        def __init__(self, device):
            self.id, self.attributes = device, {"MultiProcessorCount": 100 + device}

        def __enter__(self):
            self.saved, state["device"] = state["device"], self.id

        def __exit__(self, *exc):
            state["device"] = self.saved

    cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDevice=lambda: state["device"]), Device=FakeDevice)
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(RawModule=FakeModule, cuda=cuda))
    for cached in (bld._module, bld._function, bld._multiprocessors):
        cached.cache_clear()
    try:
        got = []
        for device in (0, 1, 0, 1):
            state["device"] = device
            got.append((bld.function("pack.cu", "vsaopt_pack_2bit"), bld.multiprocessors()))
        assert got == [(("vsaopt_pack_2bit", 0), 100), (("vsaopt_pack_2bit", 1), 101)] * 2
        assert built == [0, 1]  # one build a device, reused afterwards
    finally:
        for cached in (bld._module, bld._function, bld._multiprocessors):
            cached.cache_clear()


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


# --- the kernels executed on the host ------------------------------------------------------------
# Not a GPU run: the CUDA sources are compiled as host C++ against a small emulation of the CUDA
# execution model (one fiber per CUDA thread, warp shuffles and __syncthreads as barriers,
# IEEE float intrinsics without contraction), and the Python wrappers run against a numpy
# stand-in for cupy.  This checks the wrappers' launch arguments (each scalar's C type, each
# array's dtype) and the kernels' index arithmetic, tails, warp folds and block folds against
# the numpy reference, byte for byte.

GXX = shutil.which("g++")
EMU_SHIM = r"""
// Host emulation of the CUDA execution model used by the vsaopt kernels (tests only).
// Each CUDA thread is a fiber (ucontext) on the calling OS thread; blocks run one after
// another; a block's fibers are scheduled round-robin and switch only at warp shuffles and
// __syncthreads, which are barriers.  Float intrinsics are plain IEEE operations (compiled
// with -ffp-contract=off: SSE arithmetic, no contraction, no flush-to-zero).
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

struct dim3 { unsigned x = 1, y = 1, z = 1; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(4) char4 { signed char x, y, z, w; };

struct EmuBarrier {
    int count = 0, arrived = 0;
    unsigned gen = 0;
};

struct EmuFiber {
    ucontext_t ctx;
    std::vector<char> stack;
    dim3 tid;
    int lane = 0;
    bool done = false;
    const unsigned* wait_gen = nullptr;
    unsigned wait_val = 0;
};

struct EmuWarp {
    EmuBarrier bar;
    uint64_t slot[32];
};

static ucontext_t emu_sched;
static EmuFiber* volatile emu_cur;  // switched by the scheduler: always reloaded
static std::vector<EmuFiber> emu_fibers;
static std::vector<EmuWarp> emu_warps;
static EmuBarrier emu_block_bar;
static dim3 emu_block_idx, blockDim, gridDim;
static const std::function<void()>* emu_body;
static float s[65536];  // dynamic shared memory: blocks run one at a time

// threadIdx / blockIdx read through a call the optimizer cannot see through (fibers switch under it).
__attribute__((noinline)) const dim3& emu_thread_idx() { return emu_cur->tid; }
__attribute__((noinline)) const dim3& emu_block_idx_ref() { return emu_block_idx; }
#define threadIdx (emu_thread_idx())
#define blockIdx (emu_block_idx_ref())

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__

__attribute__((noinline)) static void emu_wait(EmuBarrier& b) {
    const unsigned g = b.gen;
    if (++b.arrived == b.count) {
        b.arrived = 0;
        ++b.gen;
        return;
    }
    emu_cur->wait_gen = &b.gen;
    emu_cur->wait_val = g;
    swapcontext(&emu_cur->ctx, &emu_sched);
}

inline void __syncthreads() { emu_wait(emu_block_bar); }

template <typename T>
T emu_shfl(T v, int src) {
    EmuWarp& w = emu_warps[emu_cur->tid.x / 32];
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    w.slot[emu_cur->lane] = bits;
    emu_wait(w.bar);
    const uint64_t r = w.slot[src];
    emu_wait(w.bar);
    T out;
    std::memcpy(&out, &r, sizeof(T));
    return out;
}
template <typename T> T __shfl_down_sync(unsigned, T v, int h) {
    const int lane = emu_cur->lane;
    return emu_shfl(v, lane + h < 32 ? lane + h : lane);
}
template <typename T> T __shfl_sync(unsigned, T v, int src) { return emu_shfl(v, src & 31); }

inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline float __double2float_rn(double d) { return (float)d; }
inline float __uint2float_rn(unsigned u) { return (float)u; }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((uint64_t)a * b) >> 32); }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
using std::max;
using std::min;

// One fiber runs at a time, so plain read-modify-write is atomic here.
inline unsigned long long atomicMax(unsigned long long* p, unsigned long long v) {
    const unsigned long long old = *p;
    if (v > old) *p = v;
    return old;
}
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    const unsigned long long old = *p;
    *p = old + v;
    return old;
}

static void emu_entry() {
    (*emu_body)();
    emu_cur->done = true;
    swapcontext(&emu_cur->ctx, &emu_sched);
}

static void emu_launch(unsigned grid, unsigned block, const std::function<void()>& body) {
    gridDim.x = grid;
    blockDim.x = block;
    emu_body = &body;
    emu_fibers.assign(block, EmuFiber());
    emu_warps.assign(block / 32, EmuWarp());
    for (auto& w : emu_warps) w.bar.count = 32;
    emu_block_bar.count = (int)block;
    for (unsigned b = 0; b < grid; ++b) {
        emu_block_idx.x = b;
        emu_block_bar.arrived = 0;
        for (unsigned t = 0; t < block; ++t) {
            EmuFiber& f = emu_fibers[t];
            f.tid.x = t;
            f.lane = (int)(t % 32);
            f.done = false;
            f.wait_gen = nullptr;
            f.stack.resize(1 << 16);
            getcontext(&f.ctx);
            f.ctx.uc_stack.ss_sp = f.stack.data();
            f.ctx.uc_stack.ss_size = f.stack.size();
            f.ctx.uc_link = nullptr;
            makecontext(&f.ctx, emu_entry, 0);
        }
        for (unsigned left = block; left;) {
            bool progress = false;
            for (auto& f : emu_fibers) {
                if (f.done || (f.wait_gen && *f.wait_gen == f.wait_val)) continue;
                f.wait_gen = nullptr;
                emu_cur = &f;
                swapcontext(&emu_sched, &f.ctx);
                progress = true;
                if (f.done) --left;
            }
            if (!progress) {
                std::fprintf(stderr, "emulation: deadlock (a barrier some threads never reach)\n");
                std::abort();
            }
        }
    }
}
"""
#: C type of a kernel scalar parameter -> the numpy scalar type the wrapper must pass.
EMU_SCALARS = {"u64": np.uint64, "u32": np.uint32, "int": np.int32, "float": np.float32, "double": np.float64}
#: Element type of a kernel pointer parameter -> the array dtype the wrapper must pass.
EMU_POINTEES = {"float": np.float32, "double": np.float64, "signed char": np.int8, "u8": np.uint8, "u32": np.uint32,
                "int": np.int32, "i64": np.int64, "u64": np.uint64}
EMU_CTYPES = {np.uint64: ctypes.c_uint64, np.uint32: ctypes.c_uint32, np.int32: ctypes.c_int32,
              np.float32: ctypes.c_float, np.float64: ctypes.c_double}
KERNEL_SIG = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(vsaopt_\w+)\s*\(([^)]*)\)')


def _param_types(params: str) -> list[str]:
    types = []
    for p in params.split(","):
        words = p.replace("__restrict__", " ").replace("*", " * ").split()
        types.append(" ".join(words[:-1]).replace(" *", "*"))
    return types


class _FakeDeviceArray(np.ndarray):
    """A host array standing in for a cupy array (``.get()`` copies it out)."""

    def get(self):
        return np.array(self)


def _fake_cupy():
    import types

    mod = types.ModuleType("cupy")
    mod.ndarray = _FakeDeviceArray
    for name in ("float32", "float64", "int8", "int32", "int64", "uint8", "uint32", "uint64"):
        setattr(mod, name, getattr(np, name))
    mod.empty = lambda shape, dtype=np.float64: np.empty(shape, dtype).view(_FakeDeviceArray)
    mod.zeros = lambda shape, dtype=np.float64: np.zeros(shape, dtype).view(_FakeDeviceArray)
    mod.empty_like = lambda a: np.empty_like(a).view(_FakeDeviceArray)
    mod.asarray = lambda a, dtype=None: np.array(a, dtype=dtype).view(_FakeDeviceArray)
    mod.ascontiguousarray = lambda a: np.ascontiguousarray(a).view(_FakeDeviceArray)

    def from_dlpack(a):
        raise AssertionError("no DLPack producer in these tests")

    mod.from_dlpack = from_dlpack
    return mod


class _EmuKernel:
    """A kernel of a host-compiled source, called like a ``cupy.RawKernel``; checks every argument's type."""

    def __init__(self, lib, name: str, types: list[str]):
        self.fn = getattr(lib, "emu_" + name)
        self.fn.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)]
        self.name, self.types = name, types

    def __call__(self, grid, block, args, shared_mem=0):
        assert len(args) == len(self.types), f"{self.name}: {len(args)} arguments for {len(self.types)} parameters"
        assert shared_mem <= 4 * 65536 and block[0] % 32 == 0
        keep = []
        for i, (arg, ctype) in enumerate(zip(args, self.types)):
            if ctype.endswith("*"):
                base = ctype[:-1].replace("const ", "").strip()
                assert isinstance(arg, _FakeDeviceArray), f"{self.name} argument {i}: {type(arg).__name__}, not a device array"
                assert arg.dtype == EMU_POINTEES[base], f"{self.name} argument {i}: dtype {arg.dtype} for {ctype}"
                assert arg.flags.c_contiguous, f"{self.name} argument {i}: not contiguous"
                keep.append(ctypes.c_void_p(arg.ctypes.data))
            else:
                want = EMU_SCALARS[ctype]
                assert type(arg) is want, f"{self.name} argument {i}: {type(arg).__name__} for {ctype}"
                keep.append(EMU_CTYPES[want](arg))
        argv = (ctypes.c_void_p * max(1, len(keep)))(*[ctypes.cast(ctypes.pointer(k), ctypes.c_void_p) for k in keep])
        self.fn(grid[0], block[0], argv)


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    """{source: (library, {kernel: parameter types})} of every source compiled for the host."""
    if GXX is None:
        pytest.skip("g++ is not on PATH: the host emulation cannot be built")
    out = tmp_path_factory.mktemp("emu")
    libs = {}
    for src in _pkg().CUDA_SOURCES:
        text = _build().source_text(src)
        sigs = {name: _param_types(params) for name, params in KERNEL_SIG.findall(text)}
        thunks = []
        for name, types in sigs.items():
            call = ", ".join(f"*({t}*)a[{i}]" for i, t in enumerate(types))
            thunks.append(f'extern "C" void emu_{name}(unsigned g, unsigned b, void** a) '
                          f"{{ emu_launch(g, b, [&] {{ {name}({call}); }}); }}")
        cpp = out / (src + ".cpp")
        cpp.write_text(EMU_SHIM + "\n" + text + "\n" + "\n".join(thunks) + "\n", encoding="utf-8")
        so = out / (src + ".so")
        proc = subprocess.run([GXX, "-std=c++17", "-O1", "-ffp-contract=off", "-fno-fast-math", "-fno-strict-aliasing", "-fPIC", "-shared",
                               "-w", "-o", str(so), str(cpp)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{src}: {proc.stderr[:3000]}"
        libs[src] = (ctypes.CDLL(str(so)), sigs)
    return libs


def _fake_cupy_namespace():
    """:func:`_fake_cupy` grown into an array namespace for the core's glue: numpy, returning stand-ins."""
    mod = _fake_cupy()

    def device(fn):
        def call(*args, **kwargs):
            out = fn(*args, **kwargs)
            return out.view(_FakeDeviceArray) if isinstance(out, np.ndarray) else out

        return call

    for name in ("zeros", "empty", "ones", "full", "arange", "zeros_like", "empty_like", "ones_like", "full_like",
                 "stack", "concatenate", "broadcast_to", "ascontiguousarray", "frombuffer", "where", "roll", "array"):
        setattr(mod, name, device(getattr(np, name)))

    def asarray(a, dtype=None, order=None):
        if isinstance(a, _FakeDeviceArray):  # no copy, like cupy.asarray of a cupy array
            return np.asarray(a, dtype=dtype, order=order).view(_FakeDeviceArray)
        return np.array(a, dtype=dtype, order=order or "K").view(_FakeDeviceArray)  # "host to device": a copy

    mod.asarray = asarray
    mod.__getattr__ = lambda name: getattr(np, name)  # everything else: numpy's (ufuncs keep the subclass)
    return mod


@pytest.fixture
def emu_backend(emulated, monkeypatch, request):
    """The cupy wrappers running the host-compiled kernels on numpy stand-ins for cupy arrays.

    Blocks have 64 threads unless the test asks for another count (``indirect`` parametrization).
    """
    threads = getattr(request, "param", 64)
    bld = _build()
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy_namespace())
    monkeypatch.setattr(bld, "function", lambda src, name: _EmuKernel(emulated[src][0], name, emulated[src][1][name]))
    monkeypatch.setattr(bld, "multiprocessors", lambda: 1)
    monkeypatch.setattr(bld, "BLOCKS_PER_SM", 2)  # at most two blocks: every grid-stride loop wraps
    for mod, attr in ((bld, "THREADS"), (_modules()["reduce"], "FOLD_THREADS"), (_modules()["accum"], "FWHT_THREADS")):
        monkeypatch.setattr(mod, attr, threads)  # 64: two warps a block, fewer fibers to switch
    return _pkg().kernels()


def _ref():
    return importlib.import_module("vsaopt.backends.numpy").kernels()


def _same(got, want, what: str) -> None:
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), what
        for i, (g, w) in enumerate(zip(got, want)):
            _same(g, w, f"{what}[{i}]")
        return
    if isinstance(want, np.ndarray):
        g = np.asarray(got)
        assert (g.dtype, g.shape) == (want.dtype, want.shape), f"{what}: {g.dtype}{g.shape} vs {want.dtype}{want.shape}"
        assert g.tobytes() == want.tobytes(), f"{what}: bytes differ at {np.flatnonzero(g.view(np.uint8) != want.view(np.uint8))[:8]}"
        return
    assert type(got) is type(want) and np.asarray(got).tobytes() == np.asarray(want).tobytes(), f"{what}: {got!r} vs {want!r}"


def _dev(a):
    return np.array(a).view(_FakeDeviceArray)


def _floats(rng, n: int) -> np.ndarray:
    """Mixed magnitudes: normals, tiny and huge values, subnormals, signed zeros."""
    x = rng.standard_normal(n).astype(np.float32) * np.float32(2.0) ** rng.integers(-30, 30, n).astype(np.float32)
    pick = rng.integers(0, 10, n)
    x[pick == 0] = 0.0
    x[pick == 1] = -0.0
    x[pick == 2] = np.float32(1e-42) * rng.integers(-5, 5, int((pick == 2).sum()))
    return x


SIZES = (1, 3, 129, 8192, 8193, 2 * 8192 + 4097)


@pytest.mark.parametrize("emu_backend", [64, 256], indirect=True, ids=["64 threads", "256 threads"])
def test_emulated_philox_and_draws(emu_backend):
    ref, rng = _ref(), np.random.default_rng(1)
    counter = rng.integers(0, 2**32, (37, 4), dtype=np.uint32)
    key = rng.integers(0, 2**32, (37, 2), dtype=np.uint32)
    for rounds in (1, 7, 10):
        _same(emu_backend["philox4x32"](_dev(counter), _dev(key), rounds), ref["philox4x32"](counter, key, rounds), "philox4x32")
    for n in (0, 1, 5, 1027):
        for seed in (0, 2**64 - 1, 0x0123456789ABCDEF):
            args = (n, seed, 0x41435155, 77, 3)
            for name in ("philox_bits", "uniform_f32"):
                _same(emu_backend[name](*args), ref[name](*args), name)


@pytest.mark.parametrize("emu_backend", [64, 256], indirect=True, ids=["64 threads", "256 threads"])
def test_emulated_reductions(emu_backend):
    ref, rng = _ref(), np.random.default_rng(2)
    for n in (0,) + SIZES + (40 * 8192 + 5,):  # 41 block sums: the thread-block fold
        x = _floats(rng, n)
        _same(emu_backend["abs_stats"](_dev(x)), ref["abs_stats"](x), f"abs_stats n={n}")
        t = float(np.float32(np.median(np.abs(x))) if n else 0.0)
        _same(emu_backend["abs_sum_above"](_dev(x), t), ref["abs_sum_above"](x, t), f"abs_sum_above n={n}")


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the reference's |x| / 1e-40
@pytest.mark.parametrize("emu_backend", [64, 256], indirect=True, ids=["64 threads", "256 threads"])
def test_emulated_quantizers(emu_backend):
    ref, rng = _ref(), np.random.default_rng(3)
    for n in SIZES:
        base = _dev(_floats(rng, n + 1))
        for x in (base[:n], base[1:]):  # 16-byte aligned (vector path) and misaligned (scalar path)
            host = np.array(x)
            _same(emu_backend["quantize_threshold"](x, 0.25), ref["quantize_threshold"](host, 0.25), "quantize_threshold")
            scale = float(np.abs(host).max())
            for s in (scale, 0.0, 1e-40):
                args = (s, 2**63 + 5, 0, 9, 2)
                _same(emu_backend["quantize_stochastic"](x, *args), ref["quantize_stochastic"](host, *args), "quantize_stochastic")


@pytest.mark.parametrize("emu_backend", [64, 256], indirect=True, ids=["64 threads", "256 threads"])
def test_emulated_packing(emu_backend):
    ref, rng = _ref(), np.random.default_rng(4)
    for n in (0, 1, 4, 5, 7, 1001):
        t = rng.integers(-1, 2, n).astype(np.int8)
        for enc, per in (("2bit", 4), ("base3", 5)):
            packed = ref[f"pack_{enc}"](t)
            _same(emu_backend[f"pack_{enc}"](_dev(t)), packed, f"pack_{enc}")
            _same(emu_backend[f"pack_{enc}"](_dev(np.concatenate([[0], t]).astype(np.int8))[1:]), packed, f"pack_{enc} offset")
            _same(emu_backend[f"unpack_{enc}"](_dev(packed[0]), n), ref[f"unpack_{enc}"](packed[0], n), f"unpack_{enc}")
            if n:
                bad = t.copy()
                bad[rng.integers(0, n)] = 2
                assert emu_backend[f"pack_{enc}"](_dev(bad))[1] is False
            junk = rng.integers(0, 256, 50, dtype=np.uint8)
            for m in (50 * per, 50 * per - 1):  # every byte read; a pad position that must be code 0
                _same(emu_backend[f"unpack_{enc}"](_dev(junk), m), ref[f"unpack_{enc}"](junk, m), f"unpack_{enc} of junk")


@pytest.mark.parametrize("emu_backend", [64, 256], indirect=True, ids=["64 threads", "256 threads"])
def test_emulated_vsa(emu_backend):
    ref, rng = _ref(), np.random.default_rng(5)
    a, c = (_dev(rng.integers(-1, 2, 3002).astype(np.int8)) for _ in range(2))
    for name in ("trit_bind", "trit_unbind"):
        for x, y in ((a[:3001], c[:3001]), (a[1:], c[:3001]), (a[1:], c[1:])):  # aligned and offset views
            _same(emu_backend[name](x, y), ref[name](np.array(x), np.array(y)), name)
    v = np.stack([_floats(rng, 300) for _ in range(5)])
    v[1, :3] = [1e38, -np.inf, np.inf]
    v[2, :3] = [1e38, 1.0, -np.inf]
    for k in (0, 1, 5):
        _same(emu_backend["bundle_sum"](_dev(v[:k])), ref["bundle_sum"](v[:k]), f"bundle_sum f32 k={k}")
        t = rng.integers(-1, 2, (k, 300)).astype(np.int8)
        _same(emu_backend["bundle_sum"](_dev(t)), ref["bundle_sum"](t), f"bundle_sum int8 k={k}")
    for d in (0, 100, 3 * 8192 + 11, 40 * 8192 + 3):
        n, m = (3, 2) if d < 40 * 8192 else (1, 1)
        x, y = _floats(rng, n * d).reshape(n, d), _floats(rng, m * d).reshape(m, d)
        y[:, ::7] = x[0, ::7] if n else 0  # some equal positions
        _same(emu_backend["dot"](_dev(x), _dev(y)), ref["dot"](x, y), f"dot f32 d={d}")
        _same(emu_backend["row_sumsq"](_dev(x)), ref["row_sumsq"](x), f"row_sumsq f32 d={d}")
        _same(emu_backend["equal_count"](_dev(x), _dev(y)), ref["equal_count"](x, y), f"equal_count f32 d={d}")
        ti, tj = rng.integers(-1, 2, (n, d)).astype(np.int8), rng.integers(-1, 2, (m, d)).astype(np.int8)
        _same(emu_backend["dot"](_dev(ti), _dev(tj)), ref["dot"](ti, tj), f"dot int8 d={d}")
        _same(emu_backend["row_sumsq"](_dev(ti)), ref["row_sumsq"](ti), f"row_sumsq int8 d={d}")
        _same(emu_backend["equal_count"](_dev(ti), _dev(tj)), ref["equal_count"](ti, tj), f"equal_count int8 d={d}")


@pytest.mark.parametrize("emu_backend", [64, 256], indirect=True, ids=["64 threads", "256 threads"])
def test_emulated_projection(emu_backend):
    ref, rng = _ref(), np.random.default_rng(6)
    for n in (1, 31, 4096, 4097, 10000):
        x = _floats(rng, n)
        t = rng.integers(-1, 2, n).astype(np.int8)
        args = (2**40 + 3, 0x50524A53, 5, 1)
        _same(emu_backend["random_signs"](_dev(x), *args), ref["random_signs"](x, *args), f"random_signs f32 n={n}")
        _same(emu_backend["random_signs"](_dev(t), *args), ref["random_signs"](t, *args), f"random_signs int8 n={n}")
    for block, count in ((1, 3), (2, 5), (64, 3), (4096, 1), (16384, 2), (65536, 1)):
        x = rng.standard_normal(block * count).astype(np.float32)
        scale = float(np.float32(1 / np.sqrt(block)))
        _same(emu_backend["fwht"](_dev(x), block, scale), ref["fwht"](x, block, scale), f"fwht block={block}")
    for nprime, m, d in ((1000, 300, 400), (64, 64, 64), (4160, 7, 9), (5, 0, 3)):
        z = _floats(rng, nprime)
        a_lo, a_hi = float(np.float32(np.sqrt(nprime // max(m, 1)))), float(np.float32(np.sqrt(nprime // max(m, 1) + 1)))
        args = (a_lo, a_hi, 99, 0x50524A50, 4, 2)
        y = ref["srht_gather"](z, d, m, *args)
        _same(emu_backend["srht_gather"](_dev(z), d, m, *args), y, f"srht_gather N={nprime} m={m}")
        _same(emu_backend["srht_scatter"](_dev(y), nprime, m, *args), ref["srht_scatter"](y, nprime, m, *args), "srht_scatter")


@pytest.mark.parametrize("emu_backend", [64, 256], indirect=True, ids=["64 threads", "256 threads"])
def test_emulated_accumulation(emu_backend):
    ref, rng = _ref(), np.random.default_rng(7)
    for n in (1, 6, 1001):
        g = _floats(rng, n)
        counts = rng.integers(-60, 61, n).astype(np.int8)
        draw = (12345, 0x41435155, 8, 0)
        inv = float(np.float32(2.0) ** -int(np.ceil(np.log2(np.abs(g).max() or 1.0))))
        want = ref["accum_add_stochastic"](counts.copy(), g, inv, *draw)
        dev = _dev(counts)
        got = emu_backend["accum_add_stochastic"](dev, _dev(g), inv, *draw)
        assert got is dev
        _same(got, want, "accum_add_stochastic")
        offset = _dev(np.concatenate([[0], counts]).astype(np.int8))[1:]  # counts and g both off their alignment
        g_offset = _dev(np.concatenate([[0], g]).astype(np.float32))[1:]
        _same(emu_backend["accum_add_stochastic"](offset, g_offset, inv, *draw), want, "accum_add_stochastic offset")
        want = ref["accum_add_threshold"](counts.copy(), g, 0.5)
        _same(emu_backend["accum_add_threshold"](_dev(counts), _dev(g), 0.5), want, "accum_add_threshold")
        offset = _dev(np.concatenate([[0], counts]).astype(np.int8))[1:]
        _same(emu_backend["accum_add_threshold"](offset, g_offset, 0.5), want, "accum_add_threshold offset")
        for shift in (1, 5, 31, 32):
            _same(emu_backend["accum_rescale"](_dev(counts), shift, *draw), ref["accum_rescale"](counts.copy(), shift, *draw),
                  f"accum_rescale s={shift}")
        _same(emu_backend["accum_mean"](_dev(counts), 2.0**-20, 3.0), ref["accum_mean"](counts, 2.0**-20, 3.0), "accum_mean")
        edge = counts.copy()
        edge[rng.integers(0, n)] = -128  # |-128| = 128: widened before the absolute value
        for c in (counts, edge, counts[:0]):
            _same(emu_backend["count_abs_max"](_dev(c)), ref["count_abs_max"](c), f"count_abs_max n={c.size}")
        small = rng.integers(-8, 8, n).astype(np.int8)
        packed = ref["nibble_pack"](small)
        _same(emu_backend["nibble_pack"](_dev(small)), packed, "nibble_pack")
        _same(emu_backend["nibble_unpack"](_dev(packed), n), ref["nibble_unpack"](packed, n), "nibble_unpack")


@pytest.mark.parametrize("emu_backend", [64, 256], indirect=True, ids=["64 threads", "256 threads"])
def test_emulated_prediction(emu_backend):
    ref, rng = _ref(), np.random.default_rng(8)
    n = 2049
    b, v, r, g, prev = (_floats(rng, n) for _ in range(5))
    _same(emu_backend["predict_linear"](_dev(b), _dev(v), _dev(r), 3.0, 0.7), ref["predict_linear"](b, v, r, 3.0, 0.7), "predict_linear")
    _same(emu_backend["momentum_extrapolate"](_dev(prev), _dev(g), 0.9), ref["momentum_extrapolate"](prev, g, 0.9), "momentum")
    _same(emu_backend["axpy"](_dev(g), -1.0, _dev(b)), ref["axpy"](g, -1.0, b), "axpy")
    args = (2.0, 0.95, float(np.float32(1 - np.float32(0.95))))
    _same(emu_backend["residual_update"](_dev(r), _dev(g), _dev(b), _dev(v), *args),
          ref["residual_update"](r, g, b, v, *args), "residual_update")
    bounds = np.array([0, 7, 7, 1500, n], dtype=np.int64)
    res, want_res = _dev(r), r.copy()
    got = emu_backend["residual_stats"](res, _dev(g), _dev(b), _dev(v), 2.0, 0.7, *args[1:], bounds)
    _same(got, ref["residual_stats"](want_res, g, b, v, 2.0, 0.7, *args[1:], bounds), "residual_stats")
    _same(np.asarray(res), want_res, "residual_stats residual")
    hist = np.stack([_floats(rng, n) for _ in range(6)])
    rows = np.array([3, 4, 5, 0, 1], dtype=np.int64)
    w = 0.9 ** np.arange(4, -1, -1, dtype=np.float64)
    t = np.arange(-4, 1, dtype=np.float64)
    wt = w * t
    sw, swt, swt2 = float(w.sum()), float(wt.sum()), float((wt * t).sum())
    inv = 1.0 / (sw * swt2 - swt * swt)
    _same(emu_backend["wls_fit"](_dev(hist), _dev(rows), _dev(w), _dev(wt), sw, swt, swt2, inv),
          ref["wls_fit"](hist, rows, w, wt, sw, swt, swt2, inv), "wls_fit")


@pytest.mark.parametrize("emu_backend", [64, 256], indirect=True, ids=["64 threads", "256 threads"])
def test_emulated_matmul(emu_backend):
    ref, rng = _ref(), np.random.default_rng(9)
    for n, k, m in ((0, 3, 2), (3, 0, 2), (2, 5, 0), (1, 1, 1), (7, 13, 5), (33, 9, 70), (130, 64, 10)):
        a, b = _floats(rng, n * k).reshape(n, k), _floats(rng, k * m).reshape(k, m)
        if k >= 2:
            b[1] = -b[0]  # cancels the first product where a's first two columns agree
            a[::2, 1] = a[::2, 0]
        _same(emu_backend["matmul_ordered"](_dev(a), _dev(b)), ref["matmul_ordered"](a, b), f"matmul_ordered {n}x{k}x{m}")
    x = np.float32(1 + 2.0**-12)  # x*x - (1 + 2**-11): 0 rounded, 2**-24 fused
    a, b = np.array([[1.0, x]], np.float32), np.array([[-(1 + 2.0**-11)], [x]], np.float32)
    _same(emu_backend["matmul_ordered"](_dev(a), _dev(b)), np.zeros((1, 1), np.float32), "matmul_ordered unfused")


def test_emulated_backend_passes_the_conformance_suite(emu_backend, monkeypatch):
    """The public operations, the cross-backend properties and the golden vectors, on the emulated kernels."""
    from vsaopt.backend import Backend
    from vsaopt.testing import check_backend

    monkeypatch.setattr(_FakeDeviceArray, "__module__", "cupy")  # what vsaopt checks to tell device arrays
    be = Backend("cupy", sys.modules["cupy"], emu_backend, array_type=_FakeDeviceArray, device="gpu")
    check_backend(be, max_examples=20)


def _trajectory(be, steps: int) -> list[bytes]:
    """Every byte a seeded training run produces: predictions, accumulated means, compressed messages."""
    from vsaopt import (DeterministicPhaseTrainer, PhaseTrainer, TernaryConfig, TernaryGradientAccumulator,
                        VSAConfig, VSAGradientCompressor)
    from vsaopt.testing import to_host

    shapes = [("w", (3, 5)), ("b", (7,))]
    rng = np.random.default_rng(11)
    xp = be.xp
    out: list[bytes] = []
    trainers: list[Any] = [PhaseTrainer(shapes, backend=be), DeterministicPhaseTrainer(shapes, backend=be)]
    accs = [TernaryGradientAccumulator(shapes, backend=be), TernaryGradientAccumulator(shapes, backend=be, count_bits=4),
            TernaryGradientAccumulator(shapes, TernaryConfig(use_stochastic_rounding=False), backend=be, count_bits=4)]
    comps = [VSAGradientCompressor(shapes, backend=be), VSAGradientCompressor(shapes, VSAConfig(use_ternary=False), backend=be),
             VSAGradientCompressor(shapes, backend=be, mode="per_tensor", error_feedback=True)]
    for step in range(steps):
        host = {name: (rng.standard_normal(shape) * (1 + step % 7)).astype(np.float32) for name, shape in shapes}
        grads = {name: xp.asarray(g) for name, g in host.items()}
        for tr in trainers:
            info = tr.begin_step()
            if info.needs_backward:
                tr.record_full_gradients(grads)
            else:
                out.extend(to_host(a).tobytes() for a in tr.get_predicted_gradients().values())
            tr.end_step(float(1.0 / (1 + step)))
        for acc in accs:
            acc.accumulate(grads)
            if step % 5 == 4:
                out.extend(to_host(a).tobytes() for a in acc.get_accumulated().values())
                acc.reset()
        for comp in comps:
            msg = comp.compress(grads)
            out.append(msg.to_json().encode())
            out.extend(to_host(a).tobytes() for a in comp.decompress(msg).values())
    return out


#: Steps of the emulated trajectory (a GPU run would use 1,000; the host emulation is slow).
STEPS = 100


def test_emulated_trajectory_matches_numba(emu_backend, monkeypatch):
    """The same seeded run (trainers, accumulators, compressors) on numba and on the emulated kernels, step by step."""
    from vsaopt.backend import Backend, get_backend

    monkeypatch.setattr(_FakeDeviceArray, "__module__", "cupy")
    be = Backend("cupy", sys.modules["cupy"], emu_backend, array_type=_FakeDeviceArray, device="gpu")
    try:
        cpu = get_backend("numba")
    except BackendError:
        cpu = get_backend("numpy")
    want = _trajectory(cpu, STEPS)
    got = _trajectory(be, STEPS)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"record {i} differs"
