"""An asyncio Postfix policy server: many persistent connections, bounded in every way.

Each smtpd process keeps its own connection and sends request after request.
The server answers each from the responder at once (no I/O on the answer
path), closes connections that break the protocol, stay silent past
``idle_timeout`` or leave a request half-sent past ``request_timeout``, and
refuses connections beyond ``max_connections``. Its own failures answer DUNNO
when ``fail_open`` (the default), so a Floodgate bug never stops mail.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from connectors.postfix_policy.policy_protocol import ProtocolError, RequestReader, reply
from connectors.postfix_policy.responder import DUNNO, Answer, PolicyResponder
from schemas.config import PolicySettings

log = logging.getLogger("floodgate.policy")
READ_CHUNK = 65536
FAIL_CLOSED = reply("DEFER_IF_PERMIT", "4.3.0 Policy service temporarily unavailable")

RequestHook = Callable[[dict[str, str], Answer], None]


@dataclass
class ServerStats:
    connections: int = 0
    open_connections: int = 0
    refused_connections: int = 0
    requests: int = 0
    answers: Counter[str] = field(default_factory=Counter)  # by reply keyword
    protocol_errors: int = 0
    timeouts: int = 0
    internal_errors: int = 0


class PolicyServer:
    def __init__(self, settings: PolicySettings, responder: PolicyResponder,
                 now_ms: Callable[[], int], on_request: RequestHook | None = None) -> None:
        self._settings = settings
        self._responder = responder
        self._now_ms = now_ms
        self._on_request = on_request
        self._servers: list[asyncio.base_events.Server] = []
        self.stats = ServerStats()

    async def start(self) -> None:
        host, _, port = self._settings.listen.rpartition(":")
        self._servers.append(await asyncio.start_server(
            self._session, host.strip("[]"), int(port), limit=READ_CHUNK))
        if self._settings.unix_socket:
            self._servers.append(await asyncio.start_unix_server(
                self._session, self._settings.unix_socket, limit=READ_CHUNK))

    @property
    def port(self) -> int:
        """The TCP port listened on (useful with ``listen: 127.0.0.1:0``)."""
        port: int = self._servers[0].sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats = self.stats
        if stats.open_connections >= self._settings.max_connections:
            stats.refused_connections += 1
            writer.close()
            return
        stats.connections += 1
        stats.open_connections += 1
        parser = RequestReader()
        peer = writer.get_extra_info("peername")
        try:
            while True:
                timeout = (self._settings.request_timeout if parser.pending
                           else self._settings.idle_timeout).total_seconds()
                data = await asyncio.wait_for(reader.read(READ_CHUNK), timeout)
                if not data:
                    break
                requests = parser.feed(data)
                if requests:
                    answers = [(attributes, self._answer(attributes)) for attributes in requests]
                    writer.write(b"".join(answer.wire for _, answer in answers))
                    self._report(answers)  # after the reply left: reporting never delays Postfix
                    await writer.drain()
        except TimeoutError:
            stats.timeouts += 1
        except ProtocolError as exc:
            stats.protocol_errors += 1
            log.warning("closing policy connection from %s: %s", peer, exc)
        except ConnectionError:
            pass
        finally:
            stats.open_connections -= 1
            writer.close()

    def _answer(self, attributes: dict[str, str]) -> Answer:
        self.stats.requests += 1
        try:
            answer = self._responder.answer(attributes, self._now_ms())
        except Exception:  # never let a bug of ours decide the mail's fate by accident
            self.stats.internal_errors += 1
            log.exception("policy request failed; answering %s",
                          "DUNNO" if self._settings.fail_open else "DEFER_IF_PERMIT")
            wire = DUNNO if self._settings.fail_open else FAIL_CLOSED
            answer = Answer(wire, None)
        keyword = answer.wire[7:].split(b" ", 1)[0].strip().decode()
        self.stats.answers[keyword] += 1
        return answer

    def _report(self, answers: list[tuple[dict[str, str], Answer]]) -> None:
        if self._on_request is None:
            return
        for attributes, answer in answers:
            try:
                self._on_request(attributes, answer)
            except Exception:  # reporting must not break answering
                self.stats.internal_errors += 1
                log.exception("policy event hook failed")
