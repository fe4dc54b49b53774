"""Config construction and JSON parsing: numpy scalars are stored as Python numbers, bad JSON is a ConfigError."""

import dataclasses
import json

import numpy as np
import pytest

from vsaopt.config import TernaryConfig, VSAConfig
from vsaopt.errors import ConfigError
from vsaopt.phase import (
    DeterministicPhaseConfig,
    DeterministicPredictionConfig,
    LossHistoryConfig,
    PhaseConfig,
    PredictionConfig,
)

CONFIGS = [TernaryConfig, VSAConfig, PredictionConfig, PhaseConfig, DeterministicPredictionConfig, LossHistoryConfig,
           DeterministicPhaseConfig]


def _numpy_kwargs(cls):
    """Every int and float field of ``cls``'s defaults as a numpy scalar of another width."""
    out = {}
    for f in dataclasses.fields(cls):
        v = getattr(cls(), f.name)
        if isinstance(v, bool):
            continue
        if isinstance(v, int):
            out[f.name] = np.int64(v) if v > 2**31 - 1 else np.int32(v)
        elif isinstance(v, float):
            out[f.name] = np.float64(v)
    return out


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_numpy_scalars_are_stored_as_python_numbers(cls):
    kwargs = _numpy_kwargs(cls)
    assert kwargs
    cfg = cls(**kwargs)
    for name in kwargs:
        assert type(getattr(cfg, name)) in (int, float), name
    assert cls.from_json(cfg.to_json()) == cfg == cls()
    json.dumps(cfg.to_dict())


def test_phase_config_with_numpy_int_saves():
    cfg = PhaseConfig(full_steps=np.int64(3), loss_threshold=np.float32(0.25))
    assert type(cfg.full_steps) is int and type(cfg.loss_threshold) is float
    assert json.loads(cfg.to_json())["full_steps"] == 3
    assert dataclasses.replace(cfg, predict_steps=np.uint8(7)).predict_steps == 7


@pytest.mark.parametrize("value", [np.bool_(True), np.float64(3.0)], ids=["numpy-bool", "numpy-float"])
def test_numpy_bools_and_floats_are_not_integers(value):
    with pytest.raises(ConfigError, match="full_steps"):
        PhaseConfig(full_steps=value)


def test_numpy_bool_is_not_a_bool_field():
    with pytest.raises(ConfigError, match="adaptive_phases"):
        PhaseConfig(adaptive_phases=np.bool_(True))


@pytest.mark.parametrize("value", [10**5000, -(10**5000)], ids=["huge", "huge-negative"])
@pytest.mark.parametrize("field", ["full_steps", "loss_threshold"])
def test_huge_integers_are_config_errors_with_short_messages(field, value):
    with pytest.raises(ConfigError, match=field) as info:
        PhaseConfig(**{field: value})
    assert len(str(info.value)) < 200


BAD_TEXT = [
    (None, "expected JSON text"),
    (42, "expected JSON text"),
    ("", "invalid JSON"),
    ("{", "invalid JSON"),
    ("1" * 5000, "invalid JSON"),
    ('{"seed": ' + "9" * 5000 + "}", "invalid JSON"),
    ("[" * 100000, "nested too deeply"),
    ('{"a": ' * 100000, "nested too deeply"),
    (b"\xff\xfe\xfa", "invalid JSON"),
    ("[]", "expected a dict"),
    ('{"nope": 1}', "unknown field"),
]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("text, message", BAD_TEXT, ids=[f"text{i}" for i in range(len(BAD_TEXT))])
def test_bad_json_is_a_config_error(cls, text, message):
    with pytest.raises(ConfigError, match=f"^{cls.__name__}: .*{message}"):
        cls.from_json(text)


@pytest.mark.parametrize("text, message", [
    ('{"full_steps": 1e999}', "full_steps"),
    ('{"full_steps": NaN}', "full_steps"),
    ('{"full_steps": "3"}', "full_steps"),
    ('{"prediction_config": [1]}', "prediction_config"),
    ('{"prediction_config": {"nope": 1}}', "PredictionConfig: unknown field.*nope"),
], ids=["inf", "nan", "string", "nested-list", "nested-unknown"])
def test_bad_fields_in_json_name_the_field(text, message):
    with pytest.raises(ConfigError, match=message):
        PhaseConfig.from_json(text)


def test_from_dict_names_unknown_keys_of_any_type():
    with pytest.raises(ConfigError, match="unknown field.*1, a"):
        PhaseConfig.from_dict({1: 2, "a": 3})
