"""The numpy reference behind the conform protocol (spec/conform.md): the protocol loop a port adds, in Python.

Run it with ``vsaopt conform -- python tests/ports/reference_client.py``; every op agrees.
"""

import json
import sys

from vsaopt.backend import get_backend
from vsaopt.errors import SpecError
from vsaopt.golden import FAMILIES, _family, run_case


def answer(request, backend):
    """The answer object to one request (``outputs`` or ``error``)."""
    if request.get("op") == "ops":
        return {"ops": [f"{fam}.{op}" for fam in FAMILIES for op in _family(fam).OPS]}
    family, op, inputs = request.get("family"), request.get("op"), request.get("inputs")
    if family not in FAMILIES or not isinstance(inputs, dict):
        return {"error": "ProtocolError"}
    try:
        return {"outputs": run_case(_family(family), backend, {"op": op, "inputs": inputs})}
    except SpecError:  # an op the family lacks, or inputs that do not fit it
        return {"error": "ProtocolError"}


def serve(backend_for, stdin=sys.stdin, stdout=sys.stdout):
    """Answer each request line until end of input; ``backend_for(family)`` is the backend of a family's ops."""
    for line in stdin:
        try:
            request = json.loads(line)
            request_id = request["id"]
        except (ValueError, TypeError, KeyError):
            stdout.write(json.dumps({"id": None, "error": "ProtocolError"}) + "\n")
            stdout.flush()
            continue
        result = answer(request, backend_for(request.get("family")))
        if "outputs" in result and "error" in result["outputs"]:
            result = result["outputs"]  # run_case reports a raised vsaopt error as {"error": name}
        stdout.write(json.dumps({"id": request_id, **result}) + "\n")
        stdout.flush()


if __name__ == "__main__":
    reference = get_backend("numpy")
    serve(lambda family: reference)
