"""The policy server over real sockets: persistent connections, concurrency, bad peers."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from connectors.postfix_policy.policy_protocol import Answer
from connectors.postfix_policy.server import PolicyServer
from schemas.config import PolicySettings
from tests.figures import Figures
from tests.fixtures.policy_requests import NOW, make_server

REQUEST = (b"request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=%s\n"
           b"sender=%s@example.net\nclient_address=10.0.0.5\n\n")


async def ask(port: int, users: list[bytes]) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    for user in users:  # one persistent connection, request after request, like smtpd
        writer.write(REQUEST % (user, user))
        await writer.drain()
        answers.append(await reader.readuntil(b"\n\n"))
    writer.close()
    return answers


def test_persistent_connections_and_many_clients() -> None:
    async def scenario() -> None:
        server = make_server()
        await server.start()
        try:
            results = await asyncio.gather(*(ask(server.port, [b"alice", b"mallory", b"bob"] * 5)
                                             for _ in range(100)))
        finally:
            await server.stop()
        for answers in results:
            assert [a.split(b" ")[0] for a in answers] == [
                b"action=DUNNO\n\n", b"action=REJECT", b"action=DUNNO\n\n"] * 5
        assert server.stats.requests == 1500 and server.stats.answers["REJECT"] == 500

    asyncio.run(scenario())


def test_bad_peers_are_cut_off_and_others_keep_being_served() -> None:
    async def scenario() -> None:
        server = make_server(request_timeout=timedelta(milliseconds=300),
                             idle_timeout=timedelta(seconds=1), max_connections=3)
        await server.start()
        try:
            flood_reader, flood = await asyncio.open_connection("127.0.0.1", server.port)
            flood.write(b"sender=" + b"a" * 20_000)  # one endless line
            await flood.drain()
            assert await asyncio.wait_for(flood_reader.read(), 5) == b""  # closed by the server
            slow_reader, slow = await asyncio.open_connection("127.0.0.1", server.port)
            slow.write(b"request=smtpd_access_policy\n")  # starts a request, never ends it
            await slow.drain()
            assert await asyncio.wait_for(slow_reader.read(), 5) == b""  # closed by the server
            [still_served] = await ask(server.port, [b"mallory"])
            assert still_served.startswith(b"action=REJECT 5.7.1")
            idle_reader, _ = await asyncio.open_connection("127.0.0.1", server.port)
            assert await asyncio.wait_for(idle_reader.read(), 5) == b""  # idle timeout
            assert server.stats.protocol_errors == 1 and server.stats.timeouts >= 2
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_connections_beyond_the_limit_are_refused() -> None:
    async def scenario() -> None:
        server = make_server(max_connections=2)
        await server.start()
        try:
            held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
            await asyncio.sleep(0.1)
            reader, _ = await asyncio.open_connection("127.0.0.1", server.port)
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert server.stats.refused_connections == 1
            for _, writer in held:
                writer.close()
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_a_failing_decision_fails_open() -> None:
    def broken(attributes: dict[str, str], now_ms: int) -> Answer:
        raise RuntimeError("a bug in the decision")

    async def scenario() -> None:
        server = PolicyServer(PolicySettings(listen="127.0.0.1:0"), broken, lambda: NOW)
        await server.start()
        try:
            assert await ask(server.port, [b"mallory"]) == [b"action=DUNNO\n\n"]
            assert server.stats.internal_errors == 1
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_unix_socket(tmp_path: Path) -> None:
    async def scenario() -> None:
        path = str(tmp_path / "policy.sock")
        server = make_server(unix_socket=path)
        await server.start()
        try:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(REQUEST % (b"mallory", b"mallory"))
            assert (await reader.readuntil(b"\n\n")).startswith(b"action=REJECT")
            writer.close()
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_a_client_that_does_not_read_is_not_answered_into_memory() -> None:
    """Requests sent without reading the replies: the server stops reading that client
    (its send buffer is full) instead of queueing replies without bound."""
    async def scenario() -> None:
        server = make_server(texts={"block": "5.7.1 " + "x" * 440})  # 460-byte replies
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            batch = (REQUEST % (b"mallory", b"mallory")) * 1000
            for _ in range(60):  # 60,000 requests (28 MB of replies), replies left unread
                writer.write(batch)
                try:
                    await asyncio.wait_for(writer.drain(), 0.5)
                except TimeoutError:
                    break  # the server pushed back: it is not reading us
            else:
                raise AssertionError("the server kept reading a client that never reads")
            answered_while_blocked = server.stats.requests
            assert answered_while_blocked < 60_000
            replies = 0
            while replies < answered_while_blocked:  # now read: the server resumes
                replies += (await reader.read(1 << 20)).count(b"\n\n")
            await asyncio.sleep(0.2)
            assert server.stats.requests > answered_while_blocked
            writer.close()
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_clients_outside_the_allow_list_are_refused() -> None:
    async def scenario() -> None:
        server = make_server(allow_clients=["10.0.0.0/8", "2001:db8::/32"])
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(REQUEST % (b"alice", b"alice"))
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, nothing answered
            writer.close()
        finally:
            await server.stop()
        assert server.stats.refused_clients == 1 and server.stats.requests == 0
        assert server.allows(("10.1.2.3", 5000)) and server.allows(("::ffff:10.0.0.1", 1, 0, 0))
        assert not server.allows(("192.0.2.1", 5000)) and not server.allows(("not-an-ip", 1))
        assert server.allows("")  # a unix socket peer

    asyncio.run(scenario())


def test_loopback_is_allowed_by_default() -> None:
    server = make_server()
    assert server.allows(("127.0.0.1", 1)) and server.allows(("::1", 1, 0, 0))
    assert not server.allows(("192.0.2.1", 1))


def test_a_thousand_concurrent_smtpd_connections(figures: Figures) -> None:
    """1,000 persistent connections asking at once, like a large Postfix: all answered, none
    refused, the slowest answer well inside smtpd's 10 s policy timeout."""
    import resource
    import time

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2_500:  # both ends of every connection live in this process
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4_096, hard), hard))

    async def client(port: int, slowest: list[float]) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answered = 0
        for user in (b"alice", b"mallory", b"bob"):
            started = time.perf_counter()
            writer.write(REQUEST % (user, user))
            await reader.readuntil(b"\n\n")
            slowest.append(time.perf_counter() - started)
            answered += 1
        writer.close()
        return answered

    async def scenario() -> tuple[list[int], list[float]]:
        server = make_server(max_connections=2_000)
        await server.start()
        slowest: list[float] = []
        try:
            answered = await asyncio.gather(*(client(server.port, slowest) for _ in range(1_000)))
        finally:
            await server.stop()
        assert server.stats.connections == 1_000 and server.stats.refused_connections == 0
        assert server.stats.requests == 3_000
        return answered, slowest

    answered, latencies = asyncio.run(scenario())
    assert sum(answered) == 3_000
    assert max(latencies) < 5.0
    figures.add("1,000 concurrent policy connections", f"{sum(answered):,} requests",
                "all answered, none refused (the clients share the server's event loop)",
                lost=3_000 - sum(answered),
                worst_ms=max(latencies) * 1000)
