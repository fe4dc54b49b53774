"""The numpy reference backend: the clearest code, closest to the spec; the oracle of the tests."""

from __future__ import annotations

import importlib

import numpy as np

from vsaopt.backend import Backend

#: Kernel modules of this backend; each defines a ``KERNELS`` name -> function mapping.
KERNEL_MODULES = ("philox", "reduce", "ternary", "pack", "vsa", "accum", "predict", "record", "matmul", "comm")


def kernels() -> dict:
    """Every kernel of the reference backend, by name."""
    table: dict = {}
    for mod in KERNEL_MODULES:
        table.update(importlib.import_module(f"{__name__}.{mod}").KERNELS)
    return table


def make_backend() -> Backend:
    """The numpy reference backend (always available)."""
    return Backend("numpy", np, kernels(), array_type=np.ndarray, device="cpu",
                   details={"numpy": np.__version__})
