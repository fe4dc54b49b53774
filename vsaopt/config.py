"""Immutable, validated configuration dataclasses with JSON round trips (``TernaryConfig`` configures ternary accumulation).

Every config is a frozen dataclass; construction validates every field and
raises :class:`~vsaopt.errors.ConfigError` naming the field and its allowed
range.  ``to_dict`` / ``from_dict`` / ``to_json`` / ``from_json`` round-trip
exactly; nested configs are nested dicts.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, TypeVar

import numpy as np

from ._arrays import check_int, check_real, check_seed
from ._json import parse_json
from .errors import ConfigError, DTypeError

__all__ = ["ConfigBase", "TernaryConfig", "VSAConfig", "check_bool"]

C = TypeVar("C", bound="ConfigBase")


def check_bool(value: Any, name: str) -> bool:
    """A strict bool (``0``/``1`` are not accepted)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name}: expected True or False, got {value!r}")
    return value


class ConfigBase:
    """Mixin for frozen config dataclasses: validation hook and dict/JSON round trip."""

    def __post_init__(self) -> None:
        self._store_plain_scalars()
        try:
            self._validate()
        except DTypeError as exc:  # a wrong type in a config is still a config error
            raise ConfigError(str(exc)) from None

    def _store_plain_scalars(self) -> None:
        """Store numpy integers and floats as Python ``int`` / ``float``, so ``to_json`` works.

        ``numpy.bool_`` is left as it is: it is not an integer here, and bool fields take only ``bool``.
        """
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, np.integer):
                object.__setattr__(self, f.name, int(v))
            elif isinstance(v, np.floating):
                object.__setattr__(self, f.name, float(v))

    def _validate(self) -> None:
        """Check every field; raise ConfigError naming the field."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields; nested configs become nested dicts."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = v.to_dict() if isinstance(v, ConfigBase) else v
        return out

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Build from :meth:`to_dict` output; unknown keys raise ConfigError, missing keys take defaults."""
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected a dict, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(str(k) for k in set(data) - set(fields))
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}; expected {', '.join(fields)}")
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for name, value in data.items():
            hint = hints.get(name)
            if isinstance(hint, type) and issubclass(hint, ConfigBase) and isinstance(value, dict):
                value = hint.from_dict(value)
            kwargs[name] = value
        return cls(**kwargs)

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        """Inverse of :meth:`to_json`; text that is not JSON of a dict of known fields raises ConfigError."""
        return cls.from_dict(parse_json(text, cls.__name__))


@dataclasses.dataclass(frozen=True)
class TernaryConfig(ConfigBase):
    """Ternary gradient accumulation (field names and defaults of vsa-optim-rs 0.1.1).

    Attributes
    ----------
    accumulation_steps : int >= 1
        Micro-batches accumulated before an optimizer update.
    ternary_threshold : float >= 0
        Deterministic mode threshold, relative to mean ``|g|`` (the crate documents
        it so but applies it as an absolute value; vsaopt follows the documentation).
    scale_learning_rate : float in [0, 1]
        Kept for compatibility; the crate never uses it.
    use_stochastic_rounding : bool
        Unbiased TernGrad rounding (True) or the biased threshold rule (False).
    seed : int in [0, 2**64)
        Philox key of every stochastic draw.
    """

    accumulation_steps: int = 8
    ternary_threshold: float = 0.5
    scale_learning_rate: float = 0.01
    use_stochastic_rounding: bool = True
    seed: int = 0

    def _validate(self) -> None:
        check_int(self.accumulation_steps, "accumulation_steps", 1, 2**31 - 1)
        check_real(self.ternary_threshold, "ternary_threshold", 0.0, 1e30)
        check_real(self.scale_learning_rate, "scale_learning_rate", 0.0, 1.0)
        check_bool(self.use_stochastic_rounding, "use_stochastic_rounding")
        check_seed(self.seed)


@dataclasses.dataclass(frozen=True)
class VSAConfig(ConfigBase):
    """VSA gradient compression (field names and defaults of vsa-optim-rs 0.1.1).

    Attributes
    ----------
    dimension : int >= 1
        Hypervector dimension.
    compression_ratio : float in (0, 1]
        Target ratio of compressed to original size.
    use_ternary : bool
        Quantize hypervectors to trits.
    seed : int in [0, 2**64)
        Seed of the projections and binding keys.
    """

    dimension: int = 8192
    compression_ratio: float = 0.1
    use_ternary: bool = True
    seed: int = 42

    def _validate(self) -> None:
        check_int(self.dimension, "dimension", 1, 2**31 - 1)
        check_real(self.compression_ratio, "compression_ratio", 0.0, 1.0, lo_open=True)
        check_bool(self.use_ternary, "use_ternary")
        check_seed(self.seed)
