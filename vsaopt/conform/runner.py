"""The differential runner: Hypothesis draws an op's inputs, the reference and the port answer, a disagreement is shrunk."""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky, Unsatisfiable

from ..arraycodec import encode
from ..backend import get_backend
from ..errors import OptimError
from ..golden import _family, run_case
from .codec import differences, op_request, ops_request
from .port import Port, PortFailure
from .results import AGREE, DISAGREE, PORT_FAILURE, Counterexample, OpResult

__all__ = ["Session", "check_op", "op_seed"]

#: Called after each answered request: ``progress(op name, requests so far, shrinking)``.
Progress = Callable[[str, int, bool], None]
#: Longest request text kept in a failure report (the whole line goes to ``--report``).
REQUEST_EXCERPT = 600


class Session:
    """The port process of a run, started on first use and started anew after it fails.

    Parameters
    ----------
    command : sequence of str
        The port's command line.
    timeout : float
        Seconds allowed for each answer.
    """

    def __init__(self, command: Sequence[str], timeout: float) -> None:
        self.command = list(command)
        self.timeout = timeout
        self._port: Port | None = None
        self._next_id = 1
        self.last_request = ""

    def served(self) -> list[str]:
        """The ops the port lists in its answer to ``{"id": 0, "op": "ops"}``.

        Raises
        ------
        PortFailure
            The port does not answer the handshake.
        """
        self.close()
        self._port = Port(self.command, self.timeout)
        self._next_id = 1
        self.last_request = ops_request()
        return list(self._port.ask(self.last_request, 0)["ops"])

    def ask(self, family: str, op: str, inputs: dict) -> dict:
        """The port's answer to one request (starting the port first if needed)."""
        if self._port is None:
            self.served()
        assert self._port is not None
        request_id = self._next_id
        self._next_id += 1
        self.last_request = op_request(request_id, family, op, inputs)
        return self._port.ask(self.last_request, request_id)

    def close(self) -> None:
        """Stop the port (a later request starts it again)."""
        if self._port is not None:
            self._port.close()
            self._port = None


class _PortBroke(BaseException):
    """Ends a Hypothesis run at once (no shrinking): the port broke the protocol."""

    def __init__(self, message: str, request: str) -> None:
        super().__init__(message)
        self.message, self.request = message, request


class _Disagreement(Exception):
    """Raised in the property so that Hypothesis shrinks the example; carries the counterexample."""

    def __init__(self, counterexample: Counterexample) -> None:
        super().__init__("; ".join(counterexample.differences))
        self.counterexample = counterexample


def op_seed(seed: int, name: str) -> int:
    """The Hypothesis seed of op ``name`` in a run of ``seed``: selecting other ops does not change its examples."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little")


def _settings(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=None, database=None, derandomize=False,
                    suppress_health_check=list(HealthCheck), report_multiple_bugs=False, verbosity=Verbosity.quiet,
                    phases=(Phase.explicit, Phase.generate, Phase.target, Phase.shrink), print_blob=False)


def _expected(module: Any, op: str, inputs: dict) -> dict | None:
    """The reference's encoded answer through the vector driver; None when the reference cannot run these inputs."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return run_case(module, get_backend("numpy"), {"op": op, "inputs": inputs})
        except OptimError:  # a SpecError: the inputs do not fit the op's driver
            return None
        except (ValueError, TypeError, IndexError, OverflowError, MemoryError):
            return None


def check_op(session: Session, name: str, strategy: Any, max_examples: int, seed: int,
             progress: Progress | None = None) -> OpResult:
    """Run one op's property against the port.

    Parameters
    ----------
    session : Session
        The port.
    name : str
        ``family.op``.
    strategy : hypothesis strategy
        Draws the op's inputs (a dict, before encoding).
    max_examples : int
        Examples to try before shrinking.
    seed : int
        The run's seed (the op's own seed is :func:`op_seed`).
    progress : callable, optional
        Told about every answered request.

    Returns
    -------
    OpResult
        Agreement, the shrunk counterexample, or how the port failed.
    """
    family, op = name.split(".", 1)
    module = _family(family)
    tally = {"sent": 0, "skipped": 0, "shrinking": False}
    start = time.perf_counter()

    def prop(inputs: dict) -> None:
        encoded = encode(inputs)
        expected = _expected(module, op, encoded)
        if expected is None:
            tally["skipped"] += 1
            reject()
        try:
            answer = session.ask(family, op, encoded)
        except PortFailure as exc:
            request = session.last_request
            session.close()
            raise _PortBroke(str(exc), request) from None
        tally["sent"] += 1
        if progress is not None:
            progress(name, tally["sent"], bool(tally["shrinking"]))
        found = differences(answer, expected)
        if found:
            tally["shrinking"] = True
            got = {k: v for k, v in answer.items() if k != "id"}
            raise _Disagreement(Counterexample(family, op, encoded, expected, got, tuple(found)))

    test = _settings(max_examples)(hypothesis_seed(op_seed(seed, name))(given(strategy)(prop)))

    def result(status: str, **kw: Any) -> OpResult:
        return OpResult(name, status, int(tally["sent"]), time.perf_counter() - start, skipped=int(tally["skipped"]), **kw)

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # drawing edge values overflows casts on purpose
            warnings.simplefilter("ignore")
            test()
    except _PortBroke as exc:
        return result(PORT_FAILURE, failure=exc.message, request=exc.request)
    except _Disagreement as exc:
        return result(DISAGREE, counterexample=exc.counterexample)
    except Flaky as exc:
        found = _first_disagreement(exc)
        detail = ("the port answered the same request differently on two tries (its answers are not "
                  "reproducible)")
        if found is not None:
            return result(DISAGREE, counterexample=Counterexample(
                found.family, found.op, found.inputs, found.expected, found.got, (*found.differences, detail)))
        return result(PORT_FAILURE, failure=detail, request=session.last_request)
    except Unsatisfiable:
        return result(PORT_FAILURE, failure="internal: the op's strategy drew no input the reference can run",
                      request=None)
    return result(AGREE)


def _first_disagreement(exc: BaseException) -> Counterexample | None:
    """The counterexample inside a Hypothesis Flaky error (an exception group), if any."""
    for inner in getattr(exc, "exceptions", ()) or ():
        if isinstance(inner, _Disagreement):
            return inner.counterexample
        found = _first_disagreement(inner)
        if found is not None:
            return found
    return None
