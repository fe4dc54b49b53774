"""The examples in the public docstrings run and print what they claim."""

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import vsaopt

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(vsaopt.__path__, "vsaopt.")
    if not m.name.startswith(("vsaopt.cli", "vsaopt.backends"))
    and not (m.name.startswith(("vsaopt.torch", "vsaopt.benchmarks.torch_")) and importlib.util.find_spec("torch") is None)
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
