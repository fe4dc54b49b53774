"""Differential property testing of a port in any language, over a line-based JSON protocol (``spec/conform.md``).

The port runs as a subprocess.  For each op it serves, Hypothesis draws inputs
in the op's vector schema (edge-seeking values and planted boundaries), the
numpy reference answers through the same driver that generates the golden
vectors, and the port answers over stdin/stdout.  A disagreement is shrunk to
a minimal input and returned as a ready-to-add vector case.

Examples
--------
>>> import sys
>>> from pathlib import Path
>>> client = Path(__file__).resolve().parents[2] / "tests" / "ports" / "reference_client.py"
>>> report = conform([sys.executable, str(client)], ops=("pack.pack",), max_examples=5)  # doctest: +SKIP
>>> report.summary()  # doctest: +SKIP
'conform: 1/1 ops agree (5 examples)'
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

from .._arrays import check_int, check_seed
from ..errors import BackendError, ConfigError
from .catalog import op_names, select, strategies
from .port import command_ok
from .results import AGREE, DISAGREE, PORT_FAILURE, ConformReport, Counterexample, OpResult
from .runner import Progress, Session, check_op

__all__ = ["conform", "assert_conforms", "op_names", "ConformReport", "OpResult", "Counterexample", "AGREE", "DISAGREE",
           "PORT_FAILURE", "DEFAULT_MAX_EXAMPLES", "DEFAULT_TIMEOUT"]

#: Examples per op of a default run (the whole run takes about a minute on two cores against the Python reference client).
DEFAULT_MAX_EXAMPLES = 100
#: Seconds a port may take to answer one request.
DEFAULT_TIMEOUT = 30.0


def _check_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise ConfigError(f"timeout: expected seconds as a positive finite number, got {timeout!r}")
    value = float(timeout)
    if not (math.isfinite(value) and 0 < value <= 86400):
        raise ConfigError(f"timeout: expected seconds in (0, 86400], got {timeout!r}")
    return value


def _names(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{what}: expected a sequence of names, got {value!r}")
    return tuple(value)


def conform(command: Sequence[str], *, families: Sequence[str] | None = None, ops: Sequence[str] | None = None,
            max_examples: int = DEFAULT_MAX_EXAMPLES, seed: int = 0, timeout: float = DEFAULT_TIMEOUT,
            progress: Progress | None = None, on_start: Callable[[str], None] | None = None) -> ConformReport:
    """Check a port against the numpy reference on generated inputs, op by op.

    Parameters
    ----------
    command : sequence of str
        The port's program and arguments (it speaks the protocol of ``spec/conform.md``).
    families, ops : sequence of str, optional
        Only the ops of these families, and these ops (``family.op``, or a bare
        op name for that op in every family); default every op.
    max_examples : int
        Examples per op before shrinking, in [1, 10**6].
    seed : int
        Seed of the whole run in [0, 2**64): the same seed, selection and port give the same requests.
    timeout : float
        Seconds the port may take to answer one request.
    progress : callable, optional
        ``progress(op, answered, shrinking)`` after each answer.
    on_start : callable, optional
        ``on_start(op)`` before each op.

    Returns
    -------
    ConformReport
        One :class:`OpResult` per op the port serves among those selected;
        ``exit_status`` 0 (all agree), 1 (a disagreement) or 2 (the port broke the protocol).

    Raises
    ------
    ConfigError, DTypeError
        An argument out of range, an unknown family or op.
    BackendError
        The port cannot be started, does not answer the ``ops`` request, or serves none of the selected ops.
    """
    argv = command_ok(command)
    selected = select(_names(families, "families"), _names(ops, "ops"))
    check_int(max_examples, "max_examples", 1, 10**6)
    check_seed(seed, "seed")
    limit = _check_timeout(timeout)
    session = Session(argv, limit)
    try:
        served = _handshake(session)
        run = [n for n in selected if n in served]
        if not run:
            raise BackendError(f"the port serves none of the selected ops (it lists {sorted(served)[:8]}...)"
                               if served else "the port lists no ops in its answer to {\"id\": 0, \"op\": \"ops\"}")
        table = strategies()
        results = []
        for name in run:
            if on_start is not None:
                on_start(name)
            results.append(check_op(session, name, table[name], max_examples, seed, progress))
    finally:
        session.close()
    known = set(op_names())
    return ConformReport(tuple(argv), seed, max_examples, tuple(results),
                         not_served=tuple(n for n in selected if n not in served),
                         unknown=tuple(sorted(set(served) - known)))


def _handshake(session: Session) -> set[str]:
    from .port import PortFailure

    try:
        return set(session.served())
    except PortFailure as exc:
        raise BackendError(f"the port failed the handshake (request {session.last_request}): {exc}") from None


def assert_conforms(command: Sequence[str], **kwargs: object) -> ConformReport:
    """:func:`conform`, raising ``AssertionError`` with every shrunk counterexample and port failure unless every op agrees.

    Takes the keyword arguments of :func:`conform`; returns its report when every op agrees.

    Raises
    ------
    AssertionError
        Some op disagrees (the message holds each shrunk case as JSON) or the port broke the protocol.
    """
    import json

    report = conform(command, **kwargs)  # type: ignore[arg-type]
    if report.exit_status == 0:
        return report
    lines = [report.summary()]
    for r in report.results:
        if r.counterexample is not None:
            lines.append(f"{r.name}: {'; '.join(r.counterexample.differences)}\n  case: "
                         + json.dumps(r.counterexample.vector_case(report.seed)))
        elif r.failure is not None:
            lines.append(f"{r.name}: port failure: {r.failure}\n  request: {(r.request or '')[:600]}")
    raise AssertionError("\n".join(lines))
