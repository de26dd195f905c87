"""Ask a policy service one question, as Postfix's smtpd would: for operators and scripts.

The answer is the ``action=...`` line. A service that is not there, or does
not answer within the timeout, is a ``PolicyUnreachable`` naming the address.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from connectors.postfix_policy.policy_protocol import MAX_LINE, encode_request

# What smtpd sends when the caller does not say: a request at the end of a message.
DEFAULTS = {"request": "smtpd_access_policy", "protocol_state": "END-OF-MESSAGE",
            "protocol_name": "ESMTP"}


class PolicyUnreachable(OSError):
    """No answer from the service: refused, timed out, or closed before answering."""


@dataclass(frozen=True)
class Answer:
    action: str  # what follows "action=": "DEFER 4.7.1 ...", "DUNNO"
    latency_ms: float


def ask(host: str, port: int, attributes: dict[str, str], timeout_s: float = 5.0) -> Answer:
    """One question on a connection of its own."""
    client = PolicyClient(host, port, timeout_s)
    try:
        return client.ask(attributes)
    finally:
        client.close()


class PolicyClient:
    """Questions on one kept-open connection, as smtpd keeps its policy connections; a
    connection that broke is opened again for the next question."""

    def __init__(self, host: str, port: int, timeout_s: float = 5.0) -> None:
        self._host, self._port, self._timeout_s = host, port, timeout_s
        self._connection: socket.socket | None = None

    def ask(self, attributes: dict[str, str]) -> Answer:
        request = encode_request({**DEFAULTS, **attributes})
        started = time.perf_counter()
        where = f"policy service {self._host}:{self._port}"
        try:
            if self._connection is None:
                self._connection = socket.create_connection((self._host, self._port),
                                                            timeout=self._timeout_s)
            self._connection.sendall(request)
            reply = _read_reply(self._connection)
        except OSError as exc:
            self.close()
            raise PolicyUnreachable(f"{where}: {exc.strerror or exc}") from None
        latency_ms = (time.perf_counter() - started) * 1000
        first = reply.split(b"\n", 1)[0].decode("utf-8", "replace")
        if not first.startswith("action="):
            self.close()
            raise PolicyUnreachable(f"{where} answered {first[:200]!r}, not an action")
        return Answer(first.removeprefix("action="), latency_ms)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _read_reply(connection: socket.socket) -> bytes:
    reply = b""
    while not reply.endswith(b"\n\n"):
        chunk = connection.recv(4096)
        if not chunk:
            raise OSError("closed the connection without an answer")
        reply += chunk
        if len(reply) > MAX_LINE:
            raise OSError("answered more than a policy reply")
    return reply
