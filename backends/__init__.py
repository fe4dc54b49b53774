"""Kernel implementations, one subpackage per backend (installed as ``vsaopt.backends``).

``numpy`` is the reference, ``numba`` the CPU kernels, ``cupy`` the GPU kernels.
Each subpackage exposes ``make_backend()``; the registry in
:mod:`vsaopt.backend` imports them lazily.
"""
