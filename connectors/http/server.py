"""One small threaded HTTP server, shared by health, metrics and the console.

A thread per request (``ThreadingHTTPServer``) and one serving thread, both
daemons: a probe, a scrape or a page never waits on the process's own loop,
and a stuck client never keeps the process from exiting.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("floodgate.http")

# (the request, its method) -> nothing: the callback writes the whole response
Handle = Callable[[BaseHTTPRequestHandler, str], None]


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) -> (host, port)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def is_loopback_host(host: str) -> bool:
    """Whether a host name or address is this machine's loopback."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class SmallHttpServer:
    """Serves GET (and POST when ``methods`` says so) through one callback.

    ``quiet``: no access log at all (probes every few seconds would drown it);
    otherwise each request is logged at debug level. Raises ``OSError`` when the
    address cannot be listened on.
    """

    def __init__(self, listen: str, handle: Handle, name: str, methods: tuple[str, ...] = ("GET",),
                 quiet: bool = True, server_name: str | None = None) -> None:
        attributes: dict[str, object] = {
            f"do_{method}": _dispatch(handle, method) for method in methods}
        attributes["log_message"] = _silent if quiet else _debug
        if server_name is not None:
            attributes.update(server_version=server_name, sys_version="")
        handler = type(f"{name}Handler", (BaseHTTPRequestHandler,), attributes)
        self._server = ThreadingHTTPServer(split_listen(listen), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return (host.decode() if isinstance(host, bytes) else str(host)), int(port)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop serving (a server never started is only closed: shutdown would wait for ever)."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def _dispatch(handle: Handle, method: str) -> Callable[[BaseHTTPRequestHandler], None]:
    def do(request: BaseHTTPRequestHandler) -> None:
        handle(request, method)
    return do


def _silent(request: BaseHTTPRequestHandler, format: str, *args: object) -> None:
    pass


def _debug(request: BaseHTTPRequestHandler, format: str, *args: object) -> None:
    log.debug("%s " + format, request.address_string(), *args)
