"""A port under test: a subprocess spoken to over stdin/stdout, one JSON line each way, with a timeout per answer."""

from __future__ import annotations

import queue
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

from ..errors import BackendError, ConfigError
from .codec import MAX_LINE_BYTES, AnswerError, parse_answer

__all__ = ["Port", "PortFailure", "command_ok"]

#: Lines of the port's stderr kept for a failure message.
STDERR_TAIL_LINES = 20


class PortFailure(Exception):
    """The port crashed, hung past the timeout, or wrote an answer that breaks the protocol (internal to the runner)."""


class Port:
    """A running port process.

    Parameters
    ----------
    command : sequence of str
        The program and its arguments.
    timeout : float
        Seconds allowed for each answer.

    Raises
    ------
    BackendError
        The program cannot be started (not found, not executable).
    """

    def __init__(self, command: Sequence[str], timeout: float) -> None:
        self.command = list(command)
        self.timeout = timeout
        try:
            self._proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, bufsize=0)
        except OSError as exc:
            raise BackendError(f"command: cannot start {self.command[0]!r} ({exc.strerror or exc})") from None
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        stream = self._proc.stdout
        assert stream is not None
        try:
            while True:
                line = stream.readline(MAX_LINE_BYTES + 1)
                if not line:
                    break
                self._lines.put(line)
        except (OSError, ValueError):
            pass
        self._lines.put(None)

    def _read_stderr(self) -> None:
        stream = self._proc.stderr
        assert stream is not None
        try:
            for line in iter(stream.readline, b""):
                self._stderr.append(line.decode("utf-8", errors="replace").rstrip("\n"))
        except (OSError, ValueError):
            pass

    def ask(self, line: str, request_id: int) -> dict:
        """Send one request line and return the parsed answer.

        Raises
        ------
        PortFailure
            The port exited, did not answer within the timeout, or answered
            with malformed JSON, another id or a form the protocol has not.
        """
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(line.encode("utf-8") + b"\n")
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise PortFailure(self._exited("before reading the request")) from None
        try:
            answer = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            raise PortFailure(f"no answer within the timeout of {self.timeout:g} s (the port hangs, is too slow, or does not flush stdout after each answer)") from None
        if answer is None:
            raise PortFailure(self._exited("without answering"))
        if not answer.endswith(b"\n"):
            if len(answer) > MAX_LINE_BYTES:
                raise PortFailure(f"the answer is longer than {MAX_LINE_BYTES} bytes")
            raise PortFailure(self._exited("in the middle of an answer line"))
        try:
            return parse_answer(answer.rstrip(b"\r\n"), request_id)
        except AnswerError as exc:
            raise PortFailure(str(exc)) from None

    def _exited(self, when: str) -> str:
        try:
            status = self._proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            return f"the port closed its stdout {when}"
        tail = self.stderr_tail()
        return f"the port exited with status {status} {when}" + (f"; its stderr ends: {tail}" if tail else "")

    def stderr_tail(self) -> str:
        """The last lines the port wrote to stderr, joined by `` | ``."""
        return " | ".join(self._stderr)

    def close(self) -> int | None:
        """End the session: close stdin (end of input), wait a moment for the port to exit, kill it if it does not."""
        try:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        except OSError:
            pass
        try:
            return self._proc.wait(timeout=min(self.timeout, 5.0))
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            return None

    def __enter__(self) -> Port:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def command_ok(command: Sequence[str]) -> list[str]:
    """``command`` as a list of strings, checked: not empty, strings without NUL bytes.

    Raises
    ------
    ConfigError
        Not a sequence of strings, empty, or a string with a NUL byte.
    """
    if isinstance(command, (str, bytes)) or not isinstance(command, Sequence):
        raise ConfigError(f"command: expected a sequence of strings (program, arguments...), got {type(command).__name__}")
    items = list(command)
    if not items or not all(isinstance(c, str) and "\0" not in c for c in items) or not items[0]:
        raise ConfigError(f"command: expected a non-empty sequence of strings without NUL bytes, got {items!r}")
    return items

