"""The one small HTTP server: each method through the callback, a thread per request."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler

import pytest

from connectors.http.server import SmallHttpServer, is_loopback_host, split_listen


def test_listen_addresses_split_and_loopback_hosts_are_known() -> None:
    assert split_listen("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert split_listen("[::1]:0") == ("::1", 0)
    assert is_loopback_host("::1") and is_loopback_host("localhost")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("example.net")


def test_requests_reach_the_callback_and_a_slow_one_does_not_hold_the_others() -> None:
    release = threading.Event()
    seen: list[tuple[str, str]] = []

    def handle(request: BaseHTTPRequestHandler, method: str) -> None:
        seen.append((method, request.path))
        if request.path == "/slow":
            release.wait(10)
        body = f"{method} {request.path}".encode()
        request.send_response(200)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    server = SmallHttpServer("127.0.0.1:0", handle, "test-http", ("GET", "POST"))
    server.start()
    host, port = server.address
    try:
        slow = threading.Thread(target=urllib.request.urlopen, args=(f"http://{host}:{port}/slow",))
        slow.start()
        with urllib.request.urlopen(f"http://{host}:{port}/fast", timeout=5) as response:
            assert response.read() == b"GET /fast"
        posted = urllib.request.Request(f"http://{host}:{port}/p", data=b"{}", method="POST")
        with urllib.request.urlopen(posted, timeout=5) as response:
            assert response.read() == b"POST /p"
        release.set()
        slow.join(10)
        with pytest.raises(urllib.error.HTTPError) as refused:  # not a method it serves
            urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/", method="PUT"))
        assert refused.value.code == 501
    finally:
        release.set()
        server.close()
    assert ("GET", "/slow") in seen and ("POST", "/p") in seen


def test_an_address_in_use_is_an_os_error() -> None:
    first = SmallHttpServer("127.0.0.1:0", lambda r, m: None, "first")
    try:
        with pytest.raises(OSError):
            SmallHttpServer(f"127.0.0.1:{first.address[1]}", lambda r, m: None, "second")
    finally:
        first.close()
