"""The least a Postfix policy server can do, for ``bench_policy``'s baseline: answer DUNNO to
every request (a block of lines ended by an empty line), no parsing, no Kafka.

Run: python -m tests.benchmarks.trivial_policy_server PORT
"""

from __future__ import annotations

import asyncio
import sys

ANSWER = b"action=DUNNO\n\n"


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        requests = self._buffer.count(b"\n\n")
        if requests:
            self._buffer = self._buffer[self._buffer.rindex(b"\n\n") + 2:]
            assert self._transport is not None
            self._transport.write(ANSWER * requests)


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Connection, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
