"""The conform protocol's wire codec: request lines, answer parsing, and the comparison of outputs.

One JSON object per line, UTF-8 (``spec/conform.md``).  Requests carry a
vector case's ``inputs``; an answer carries ``outputs`` encoded as a case's
``expected``, or ``error`` (a class name).  Outputs are compared as the vector
runner compares them, strictly: an array by dtype, shape and hex of its
little-endian bytes, any other value by JSON type and value (``true`` is not
``1``).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ..arraycodec import decode

__all__ = ["PROTOCOL_ERROR", "MAX_LINE_BYTES", "AnswerError", "ops_request", "op_request", "parse_answer", "differences",
           "describe_difference"]

#: The error name a port answers for an op it does not know or a line it cannot parse.
PROTOCOL_ERROR = "ProtocolError"
#: Longest answer line read from a port (a longer one is a protocol failure, not a memory exhaustion).
MAX_LINE_BYTES = 256 * 2**20


class AnswerError(Exception):
    """An answer line that breaks the protocol (the message says how); internal to the runner."""


def ops_request() -> str:
    """The first request of a session: ``{"id": 0, "op": "ops"}``."""
    return json.dumps({"id": 0, "op": "ops"})


def op_request(request_id: int, family: str, op: str, inputs: dict) -> str:
    """One request line (no newline): ``{"id", "family", "op", "inputs"}`` with encoded ``inputs``."""
    return json.dumps({"id": request_id, "family": family, "op": op, "inputs": inputs}, separators=(",", ":"))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_answer(line: bytes, request_id: int) -> dict:
    """The JSON object of one answer line, checked against the protocol.

    Parameters
    ----------
    line : bytes
        The line the port wrote, without its newline.
    request_id : int
        The id of the request it answers.

    Returns
    -------
    dict
        The answer: for id 0 it has ``ops`` (a list of strings), otherwise exactly
        one of ``outputs`` (an object) and ``error`` (a string).

    Raises
    ------
    AnswerError
        Not UTF-8, not a JSON object, another id, or not one of the answer forms.
    """
    try:
        answer = json.loads(line.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise AnswerError(f"the answer is not UTF-8 (byte {exc.start})") from None
    except (ValueError, RecursionError) as exc:
        raise AnswerError(f"the answer is not JSON ({exc}): {_excerpt(line)}") from None
    if not isinstance(answer, dict):
        raise AnswerError(f"the answer is not a JSON object: {_excerpt(line)}")
    got = answer.get("id")
    if type(got) is not int or got != request_id:
        raise AnswerError(f"the answer has id {json.dumps(got)}, expected {request_id}: {_excerpt(line)}")
    if request_id == 0:
        ops = answer.get("ops")
        if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
            raise AnswerError(f"the answer to 'ops' needs a list of strings under \"ops\": {_excerpt(line)}")
        return answer
    has_out, has_err = "outputs" in answer, "error" in answer
    if has_out == has_err:
        raise AnswerError(f"the answer needs exactly one of \"outputs\" and \"error\": {_excerpt(line)}")
    if has_out and not isinstance(answer["outputs"], dict):
        raise AnswerError(f"\"outputs\" must be an object: {_excerpt(line)}")
    if has_err and not isinstance(answer["error"], str):
        raise AnswerError(f"\"error\" must be a string (a class name): {_excerpt(line)}")
    return answer


def _excerpt(line: bytes, limit: int = 200) -> str:
    text = line[:limit].decode("utf-8", errors="replace")
    return repr(text + (" ..." if len(line) > limit else ""))


def _same(got: Any, want: Any) -> bool:
    """Strict JSON equality: the same types (an integer is not a flag, nor a float) and the same values."""
    if type(got) is not type(want):
        return False
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(_same(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want))
    if isinstance(want, float):
        return got == want or (math.isnan(got) and math.isnan(want))
    return bool(got == want)


def differences(answer: dict, expected: dict) -> list[str]:
    """What differs between a port's answer and the reference's expected outputs (empty: they agree).

    ``expected`` is ``{"error": name}`` or the encoded outputs; ``answer`` is the
    parsed answer (``outputs`` or ``error``).
    """
    if "error" in expected or "error" in answer:
        want = expected.get("error")
        got = answer.get("error")
        if want == got:
            return []
        what_want = f"error {want}" if want else "outputs"
        what_got = f"error {got}" if got else "outputs"
        return [f"expected {what_want}, got {what_got}"]
    got = answer["outputs"]
    out = [f"{k}: missing" for k in expected if k not in got]
    out += [f"{k}: not an output of the op" for k in got if k not in expected]
    out += [f"{k}: {describe_difference(got[k], expected[k])}" for k in expected if k in got and not _same(got[k], expected[k])]
    return out


def describe_difference(got: Any, want: Any) -> str:
    """One line saying how an output value differs from its expectation."""
    if _is_array(want):
        if not _is_array(got):
            return f"expected an array, got {_short(got)}"
        return _array_difference(got, want)
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return f"a list of {len(got)} items, expected {len(want)}"
        i = next(i for i, (g, w) in enumerate(zip(got, want)) if not _same(g, w))
        return f"item {i}: {describe_difference(got[i], want[i])}"
    return f"got {_short(got)}, expected {_short(want)}"


def _is_array(value: Any) -> bool:
    return isinstance(value, dict) and "hex" in value


def _array_difference(got: dict, want: dict) -> str:
    if set(got) != {"dtype", "shape", "hex"}:
        return f"an array needs exactly the keys dtype, shape, hex; got {sorted(got)}"
    if got["dtype"] != want["dtype"]:
        return f"dtype {got['dtype']!r}, expected {want['dtype']!r}"
    if got["shape"] != want["shape"]:
        return f"shape {got['shape']!r}, expected {want['shape']!r}"
    try:
        a, e = np.atleast_1d(decode(got)).reshape(-1), np.atleast_1d(decode(want)).reshape(-1)
    except (ValueError, TypeError):
        return "the hex is not the array's little-endian bytes (lowercase, two digits a byte)"
    if a.tobytes() == e.tobytes():
        return "the same bytes, written in another form (the hex must be lowercase)"
    width = e.dtype.itemsize
    differ = np.flatnonzero((a.view(np.uint8).reshape(-1, width) != e.view(np.uint8).reshape(-1, width)).any(axis=1))
    i = int(differ[0])
    return (f"bytes differ at {differ.size} of {e.size} elements "
            f"(first at flat index {i}: got {a[i].item()!r}, expected {e[i].item()!r})")


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + " ..."
