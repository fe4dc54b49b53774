"""What a conform run found: per op, agreement or the shrunk counterexample or the port's failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Counterexample", "OpResult", "ConformReport", "AGREE", "DISAGREE", "PORT_FAILURE"]

AGREE, DISAGREE, PORT_FAILURE = "agree", "DISAGREE", "PORT FAILURE"


@dataclass(frozen=True)
class Counterexample:
    """The minimal input found on which the port and the reference differ.

    Attributes
    ----------
    family, op : str
        The op, as the vector files name it.
    inputs : dict
        The encoded inputs (a vector case's ``inputs``).
    expected : dict
        The reference's answer (a vector case's ``expected``).
    got : dict
        The port's answer (``{"outputs": ...}`` or ``{"error": ...}``).
    differences : tuple of str
        What differs, one line per output.
    """

    family: str
    op: str
    inputs: dict
    expected: dict
    got: dict
    differences: tuple[str, ...]

    def vector_case(self, seed: int) -> dict:
        """The counterexample as a case ready to add to ``spec/vectors/<family>_test.json`` (without ``tcId``)."""
        comment = f"conform --seed {seed}: " + "; ".join(self.differences)
        return {"op": self.op, "comment": comment, "inputs": self.inputs, "expected": self.expected}


@dataclass(frozen=True)
class OpResult:
    """The outcome of one op.

    Attributes
    ----------
    name : str
        ``family.op``.
    status : str
        :data:`AGREE`, :data:`DISAGREE` or :data:`PORT_FAILURE`.
    examples : int
        Requests the port answered for this op (shrinking included).
    seconds : float
        Wall time of the op.
    counterexample : Counterexample or None
        The shrunk disagreement (status :data:`DISAGREE`).
    failure : str or None
        How the port broke the protocol (status :data:`PORT_FAILURE`).
    request : str or None
        The request line the port failed on (status :data:`PORT_FAILURE`).
    skipped : int
        Drawn inputs outside the op's domain (the reference itself cannot run them); 0 for every shipped strategy.
    """

    name: str
    status: str
    examples: int
    seconds: float
    counterexample: Counterexample | None = None
    failure: str | None = None
    request: str | None = None
    skipped: int = 0

    def to_dict(self, seed: int) -> dict:
        """JSON form (the counterexample as a vector case plus the port's answer)."""
        out: dict[str, Any] = {"op": self.name, "status": self.status, "examples": self.examples,
                               "seconds": round(self.seconds, 3), "skipped": self.skipped}
        if self.counterexample is not None:
            out["case"] = self.counterexample.vector_case(seed)
            out["got"] = self.counterexample.got
        if self.failure is not None:
            out["failure"] = self.failure
            out["request"] = self.request
        return out


@dataclass(frozen=True)
class ConformReport:
    """A whole run: the ops checked, in order, and what the port serves.

    Attributes
    ----------
    command : tuple of str
        The port's command line.
    seed, max_examples : int
        The run's settings (the same settings reproduce the same requests).
    results : tuple of OpResult
        One per op checked.
    not_served : tuple of str
        Selected ops the port does not list.
    unknown : tuple of str
        Names the port lists that are no op of the vector files.
    """

    command: tuple[str, ...]
    seed: int
    max_examples: int
    results: tuple[OpResult, ...]
    not_served: tuple[str, ...] = ()
    unknown: tuple[str, ...] = field(default=())

    @property
    def agreed(self) -> int:
        """Ops on which the port agreed with the reference on every example."""
        return sum(r.status == AGREE for r in self.results)

    @property
    def examples(self) -> int:
        """Requests answered, over every op."""
        return sum(r.examples for r in self.results)

    @property
    def exit_status(self) -> int:
        """0 every op agrees, 1 some op disagrees, 2 the port broke the protocol on some op."""
        if any(r.status == PORT_FAILURE for r in self.results):
            return 2
        return 1 if any(r.status == DISAGREE for r in self.results) else 0

    def summary(self) -> str:
        """The run's last line: ``conform: P/T ops agree (E examples)``."""
        return f"conform: {self.agreed}/{len(self.results)} ops agree ({self.examples} examples)"

    def to_dict(self) -> dict:
        """JSON form of the whole report."""
        return {"command": list(self.command), "seed": self.seed, "max_examples": self.max_examples,
                "exit_status": self.exit_status, "summary": self.summary(),
                "results": [r.to_dict(self.seed) for r in self.results],
                "not_served": list(self.not_served), "unknown": list(self.unknown)}
