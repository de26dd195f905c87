"""Minimal HTTP health endpoints: ``/livez`` (the process runs) and ``/readyz`` (it can answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def serve_health(listen: str, ready: Callable[[], bool]) -> asyncio.base_events.Server:
    host, _, port = listen.rpartition(":")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            path = line.split(b" ")[1] if line.count(b" ") >= 2 else b""
            if path == b"/livez":
                status, body = "200 OK", "ok\n"
            elif path == b"/readyz":
                status, body = ("200 OK", "ready\n") if ready() else (
                    "503 Service Unavailable", "catching up\n")
            else:
                status, body = "404 Not Found", "try /livez or /readyz\n"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: "
                         f"{len(body)}\r\nConnection: close\r\n\r\n{body}".encode())
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host.strip("[]"), int(port))
