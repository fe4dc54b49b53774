"""A port that breaks the conform protocol in one chosen way (for the harness's own tests).

Usage: ``faulty_client.py MODE [OP]``.  It answers the ``ops`` request with
every op (or only ``OP``; ``-`` for every op); on the first request for an op it then misbehaves
by MODE: ``crash`` (exits 3 with a message on stderr), ``hang`` (never
answers), ``garbage`` (a line that is not JSON), ``wrong-id`` (another id),
``no-newline`` (half an answer, then exits), ``both`` (outputs and error),
``nondeterministic`` (every other answer to the same request differs),
``bad-handshake`` (the ``ops`` answer is not a list), ``stderr-flood``
(writes megabytes to stderr, then answers correctly) or ``ignore-eof``
(answers correctly but does not exit at the end of input).
"""

import json
import sys
import time

from reference_client import answer, get_backend  # noqa: F401  (the reference answers what is not broken)

MODE = sys.argv[1]
ONLY = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "-" else None


def main():
    reference = get_backend("numpy")
    calls = 0
    for line in sys.stdin:
        request = json.loads(line)
        rid = request["id"]
        if request["op"] == "ops":
            if MODE == "bad-handshake":
                print(json.dumps({"id": 0, "ops": "pack.pack"}), flush=True)
                continue
            ops = answer(request, reference)["ops"]
            print(json.dumps({"id": 0, "ops": [ONLY] if ONLY else ops}), flush=True)
            continue
        result = answer(request, reference)
        result = result["outputs"] if "outputs" in result and "error" in result["outputs"] else result
        calls += 1
        if MODE == "stderr-flood":
            sys.stderr.write("x" * 2**20 + "\n")
            sys.stderr.flush()
        if MODE == "crash":
            print("port: segmentation fault in the pack loop (simulated)", file=sys.stderr, flush=True)
            sys.exit(3)
        if MODE == "hang":
            time.sleep(3600)
        if MODE == "garbage":
            print("DEBUG packing 5 trits", flush=True)
            continue
        if MODE == "wrong-id":
            rid += 1
        if MODE == "no-newline":
            sys.stdout.write(json.dumps({"id": rid, **result})[:10])
            sys.stdout.flush()
            sys.exit(0)
        if MODE == "both":
            result = {"outputs": {}, "error": "ShapeError"}
        if MODE == "nondeterministic" and calls % 2 == 0 and "outputs" in result:
            result = {"error": "ShapeError"}
        print(json.dumps({"id": rid, **result}), flush=True)
    if MODE == "ignore-eof":
        time.sleep(3600)


if __name__ == "__main__":
    main()
