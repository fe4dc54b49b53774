"""The doctested examples of the phase-training modules."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "vsaopt.phase.configs",
    "vsaopt.phase.types",
    "vsaopt.phase.loss_history",
    "vsaopt.phase.momentum_predictor",
    "vsaopt.phase.deterministic_predictor",
    "vsaopt.phase.phase_trainer",
    "vsaopt.phase.deterministic_trainer",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
