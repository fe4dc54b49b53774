"""Test support for vsaopt and for ports and third-party backends (needs the ``test`` extra).

- :func:`assert_bit_equal`: same array kind, dtype, shape and bytes.
- :mod:`vsaopt.testing.strategies`: the Hypothesis strategies of vsaopt's own suite.
- :data:`PROPERTIES` and :func:`check_backend`: the cross-backend identity
  properties and the golden vectors, runnable against any object that
  implements :class:`vsaopt.protocol.KernelBackend`.
- :func:`conform` and :func:`assert_conforms`: the same properties against a
  port in any language, run as a subprocess (``spec/conform.md``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import is_device_array, to_host

__all__ = ["assert_bit_equal", "PROPERTIES", "check_backend", "ConformanceResult", "conform", "assert_conforms", "ConformReport",
           "to_host"]


def assert_bit_equal(actual: Any, expected: Any, what: str = "result") -> None:
    """Assert that two results are the same kind, dtype, shape and bytes.

    Tuples and lists are compared element by element; Python scalars by type and value.

    Examples
    --------
    >>> import numpy as np
    >>> assert_bit_equal(np.float32(-0.0), np.float32(0.0))
    Traceback (most recent call last):
    ...
    AssertionError: result: bytes differ at 1 of 1 elements (first at index 0: -0.0 vs 0.0)
    """
    if isinstance(expected, (tuple, list)):
        assert isinstance(actual, (tuple, list)) and len(actual) == len(expected), f"{what}: {actual!r} vs {expected!r}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_bit_equal(a, e, f"{what}[{i}]")
        return
    if isinstance(expected, (bool, int, float, str)) and not isinstance(expected, np.generic):
        assert type(actual) is type(expected) and actual == expected, f"{what}: {actual!r} vs {expected!r}"
        return
    kind_a, kind_e = type(actual).__module__.split(".")[0], type(expected).__module__.split(".")[0]
    assert is_device_array(actual) == is_device_array(expected), f"{what}: array kinds differ ({kind_a} vs {kind_e})"
    a, e = to_host(actual, copy=False), to_host(expected, copy=False)
    assert a.dtype == e.dtype, f"{what}: dtype {a.dtype} vs {e.dtype}"
    assert a.shape == e.shape, f"{what}: shape {a.shape} vs {e.shape}"
    if a.tobytes() != e.tobytes():
        av, ev = np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(e).reshape(-1)
        width = a.dtype.itemsize
        differ = np.flatnonzero((av.view(np.uint8).reshape(-1, width) != ev.view(np.uint8).reshape(-1, width)).any(axis=1))
        i = int(differ[0])
        raise AssertionError(
            f"{what}: bytes differ at {differ.size} of {av.size} elements (first at index {i}: {av[i].item()!r} vs {ev[i].item()!r})"
        )


def __getattr__(name: str) -> Any:
    # The property registry imports hypothesis; load it only when asked for.
    if name in ("PROPERTIES", "check_backend", "ConformanceResult"):
        from . import conformance

        return getattr(conformance, name)
    if name in ("conform", "assert_conforms", "ConformReport"):  # a port in another language, over spec/conform.md
        from .. import conform

        return getattr(conform, name)
    raise AttributeError(name)
