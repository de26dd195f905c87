"""An asyncio Postfix policy server: many persistent connections, bounded in every way.

Each smtpd process keeps its own connection and sends request after request.
The server answers each with its ``decide`` function at once, in the event loop's
data callback (no I/O, task or timer on the answer path), closes connections
that break the protocol, stay silent past ``idle_timeout`` or leave a request
half-sent past ``request_timeout`` (checked once a second), and
refuses connections beyond ``max_connections``. Its own failures answer DUNNO
when ``fail_open`` (the default), so a Floodgate bug never stops mail.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from connectors.http.server import split_listen
from connectors.postfix_policy.policy_protocol import DUNNO, Answer, ProtocolError, RequestReader, reply
from schemas.addresses import NetworkSet
from schemas.config import PolicySettings

log = logging.getLogger("floodgate.policy")
FAIL_CLOSED = reply("DEFER_IF_PERMIT", "4.3.0 Policy service temporarily unavailable")

RequestHook = Callable[[dict[str, str], Answer], None]
# The decision: a request's attributes and the time (ms since the epoch) -> the answer.
Decide = Callable[[dict[str, str], int], Answer]


@dataclass
class ServerStats:
    connections: int = 0
    open_connections: int = 0
    refused_connections: int = 0
    refused_clients: int = 0  # outside policy.allow_clients
    requests: int = 0
    answers: Counter[str] = field(default_factory=Counter)  # by reply keyword
    protocol_errors: int = 0
    timeouts: int = 0
    internal_errors: int = 0


class PolicyServer:
    def __init__(self, settings: PolicySettings, decide: Decide,
                 now_ms: Callable[[], int], on_request: RequestHook | None = None,
                 observe_latency: Callable[[float], None] | None = None) -> None:
        self._settings = settings
        self._observe = observe_latency
        self._decide_answer = decide
        self._now_ms = now_ms
        self._on_request = on_request
        self._servers: list[asyncio.base_events.Server] = []
        self._connections: set[_Connection] = set()
        self._allowed = NetworkSet(settings.allow_clients, cache=4096)
        self._sweeper: asyncio.Task[None] | None = None
        self.stats = ServerStats()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = split_listen(self._settings.listen)
        self._servers.append(await loop.create_server(lambda: _Connection(self), host, port))
        if self._settings.unix_socket:
            self._servers.append(await loop.create_unix_server(
                lambda: _Connection(self), self._settings.unix_socket))
        self._sweeper = asyncio.create_task(self._close_stale())

    @property
    def port(self) -> int:
        """The TCP port listened on (useful with ``listen: 127.0.0.1:0``)."""
        port: int = self._servers[0].sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for server in self._servers:
            server.close()
        for connection in list(self._connections):
            connection.close()
        for server in self._servers:
            await server.wait_closed()

    async def _close_stale(self) -> None:
        """Once a second: close connections idle, or mid-request, for too long.

        One sweep instead of a timer per read keeps the request path short.
        """
        idle = self._settings.idle_timeout.total_seconds()
        half_sent = self._settings.request_timeout.total_seconds()
        while True:
            await asyncio.sleep(min(1.0, half_sent, idle))
            now = time.monotonic()
            for connection in list(self._connections):
                limit = half_sent if connection.parser.pending else idle
                if now - connection.last_active > limit:
                    self.stats.timeouts += 1
                    connection.close()

    def allows(self, peer: object) -> bool:
        """Whether a client at ``peer`` (a socket peer name) may ask; unix sockets may."""
        if not isinstance(peer, tuple) or not peer:
            return True
        return self._allowed.contains(str(peer[0]))

    def _answer(self, attributes: dict[str, str]) -> Answer:
        started = time.perf_counter()
        answer = self._decide(attributes)
        if self._observe is not None:
            self._observe(time.perf_counter() - started)
        return answer

    def _decide(self, attributes: dict[str, str]) -> Answer:
        self.stats.requests += 1
        try:
            answer = self._decide_answer(attributes, self._now_ms())
        except Exception:  # never let a bug of ours decide the mail's fate by accident
            self.stats.internal_errors += 1
            log.exception("policy request failed; answering %s",
                          "DUNNO" if self._settings.fail_open else "DEFER_IF_PERMIT")
            wire = DUNNO if self._settings.fail_open else FAIL_CLOSED
            answer = Answer(wire, None)
        self.stats.answers[answer.keyword] += 1
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


class _Connection(asyncio.Protocol):
    """One client connection (one smtpd process), driven by the event loop's callbacks."""

    def __init__(self, server: PolicyServer) -> None:
        self._server = server
        self.parser = RequestReader()
        self.last_active = 0.0  # time.monotonic()
        self._transport: asyncio.Transport | None = None
        self._peer: object = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server, stats = self._server, self._server.stats
        assert isinstance(transport, asyncio.Transport)
        if stats.open_connections >= server._settings.max_connections:
            stats.refused_connections += 1
            transport.close()
            return
        peer = transport.get_extra_info("peername")
        if not server.allows(peer):
            stats.refused_clients += 1
            if math.log10(stats.refused_clients).is_integer():  # 1st, 10th, 100th: no log flood
                log.warning("refused policy client %s: not in policy.allow_clients (%d refused "
                            "so far)", peer, stats.refused_clients)
            transport.close()
            return
        self._transport = transport
        self._peer = peer
        self.last_active = time.monotonic()
        stats.connections += 1
        stats.open_connections += 1
        server._connections.add(self)

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        # time.monotonic, not the loop's time: get_running_loop makes a getpid system call
        self.last_active = time.monotonic()
        server = self._server
        try:
            requests = self.parser.feed(data)
        except ProtocolError as exc:
            server.stats.protocol_errors += 1
            log.warning("closing policy connection from %s: %s", self._peer, exc)
            self.close()
            return
        if len(requests) == 1:  # smtpd's way: one request, then it waits for the answer
            answer = server._answer(requests[0])
            transport.write(answer.wire)
            server._report([(requests[0], answer)])  # after the reply left: never delays Postfix
        elif requests:
            answers = [(attributes, server._answer(attributes)) for attributes in requests]
            transport.write(b"".join(answer.wire for _, answer in answers))
            server._report(answers)

    def pause_writing(self) -> None:
        # A client that sends without reading our replies: stop reading it until it does.
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is None:
            return  # refused at the door: never counted
        self._transport = None
        self._server.stats.open_connections -= 1
        self._server._connections.discard(self)
