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
    request = encode_request({**DEFAULTS, **attributes})
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as connection:
            connection.sendall(request)
            reply = _read_reply(connection)
    except OSError as exc:
        raise PolicyUnreachable(f"policy service {host}:{port}: {exc.strerror or exc}") from None
    latency_ms = (time.perf_counter() - started) * 1000
    first = reply.split(b"\n", 1)[0].decode("utf-8", "replace")
    if not first.startswith("action="):
        raise PolicyUnreachable(f"policy service {host}:{port} answered {first[:200]!r}, "
                                "not an action")
    return Answer(first.removeprefix("action="), latency_ms)


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
