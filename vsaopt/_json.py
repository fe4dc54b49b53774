"""Parsing of JSON text handed to a public ``from_json``: every failure becomes one typed error."""

from __future__ import annotations

import json
from typing import Any

from ._arrays import describe
from .errors import ConfigError, OptimError

__all__ = ["parse_json"]


class _DuplicateKey(Exception):
    """A JSON object names ``key`` twice."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The object of ``pairs``; :class:`_DuplicateKey` when a key comes twice (``json`` would keep the last)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def parse_json(text: Any, what: str, error: type[OptimError] = ConfigError) -> Any:
    """Decode JSON ``text``, raising ``error`` with a message that starts with ``what``.

    Parameters
    ----------
    text : str, bytes or bytearray
        The JSON document (bytes are decoded as UTF-8, UTF-16 or UTF-32, as :func:`json.loads` does).
    what : str
        Name of the thing being parsed, the start of every error message (a class name, ``"compressed"``).
    error : subclass of OptimError
        Raised for every failure: another type, invalid JSON, an object with a key given twice
        (its meaning would depend on the reader), an integer with more digits than Python
        converts (4300 by default), nesting deeper than the recursion limit.

    Returns
    -------
    object
        The decoded value (dict, list, str, int, float, bool or None).

    Examples
    --------
    >>> parse_json('{"a": [1, 2]}', "Example")
    {'a': [1, 2]}
    >>> parse_json(None, "Example")
    Traceback (most recent call last):
    ...
    vsaopt.errors.ConfigError: Example: expected JSON text (str or bytes), got NoneType
    >>> parse_json('{"seed": 1, "seed": 2}', "Example")
    Traceback (most recent call last):
    ...
    vsaopt.errors.ConfigError: Example: invalid JSON (key 'seed' given twice in one object)
    """
    if not isinstance(text, (str, bytes, bytearray)):
        raise error(f"{what}: expected JSON text (str or bytes), got {type(text).__name__}")

    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise error(f"{what}: invalid JSON (key {describe(exc.key)} given twice in one object)") from None
    except json.JSONDecodeError as exc:
        raise error(f"{what}: invalid JSON ({exc})") from None
    except RecursionError:
        raise error(f"{what}: invalid JSON (nested too deeply)") from None
    except ValueError as exc:  # an integer too long to convert, bytes that are not UTF-8/16/32
        raise error(f"{what}: invalid JSON ({exc})") from None
