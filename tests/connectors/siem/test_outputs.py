"""Syslog delivery to local listeners (RFC 5424 over TCP with octet counting, and UDP),
and the ``--to`` forms."""

from __future__ import annotations

import re
import socket
import threading
import time
from datetime import UTC, datetime

import pytest

from connectors.siem.outputs import (
    Destination,
    TcpSyslog,
    UdpSyslog,
    open_output,
    parse_destination,
    syslog_frame,
)

TS = datetime(2026, 11, 27, 12, 0, 0, 123000, tzinfo=UTC)
RFC5424 = re.compile(rb"<(\d+)>1 (\S+) (\S+) (\S+) (\d+) (\S+) - (.*)", re.S)


def test_destinations() -> None:
    assert parse_destination("syslog://siem.example:6514") == Destination("tcp", "siem.example", 6514)
    assert parse_destination("syslog+udp://[2001:db8::1]:514") == Destination("udp", "2001:db8::1", 514)
    assert parse_destination("file:/var/log/f.cef") == Destination("file", path="/var/log/f.cef")
    assert parse_destination("stdout") == Destination("stdout")
    for bad in ("syslog://host", "syslog://host:99999", "http://x:1", "file:", "tcp://h:1"):
        with pytest.raises(ValueError, match="syslog://HOST:PORT"):
            parse_destination(bad)


def _frames(data: bytes) -> list[bytes]:
    """Split RFC 6587 octet-counted frames."""
    frames = []
    while data:
        length, _, rest = data.partition(b" ")
        frames.append(rest[:int(length)])
        data = rest[int(length):]
    return frames


def test_tcp_syslog_frames_and_reconnects() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    received: list[bytes] = []

    def accept_twice() -> None:
        for _ in range(2):  # the first connection is closed after one frame: the sender reconnects
            conn, _ = server.accept()
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                    if data.count(b"floodgate-line") >= 1 and len(received) == 0:
                        break
                received.append(data)

    thread = threading.Thread(target=accept_twice, daemon=True)
    thread.start()
    output = open_output(parse_destination(f"syslog://127.0.0.1:{port}"), hostname="mx 1")
    output.send("floodgate-line one", TS, 4, "action")
    time.sleep(0.3)  # let the listener drop the first connection
    for attempt in range(2):  # a write into a socket the peer closed can succeed once
        output.send(f"floodgate-line two {attempt}", TS, 6, "mail")
    output.close()
    thread.join(10)
    server.close()
    frames = [f for data in received for f in _frames(data)]
    first = RFC5424.fullmatch(frames[0])
    assert first is not None
    pri, stamp, host, app, _pid, msgid, message = first.groups()
    assert (pri, stamp, host, app, msgid) == (b"132", b"2026-11-27T12:00:00.123Z", b"mx_1",
                                             b"floodgate", b"action")
    assert message == b"floodgate-line one"
    assert any(f.endswith(b"floodgate-line two 1") for f in frames[1:])


def test_a_line_of_the_budget_makes_a_record_of_exactly_the_limit() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    udp = UdpSyslog("127.0.0.1", receiver.getsockname()[1], "mx1", max_bytes=3000)
    udp.send("short", TS, 2, "action")
    budget = udp.budget(TS, 2, "action")
    udp.send("x" * budget, TS, 2, "action")
    first, _ = receiver.recvfrom(65536)
    second, _ = receiver.recvfrom(65536)
    udp.close()
    receiver.close()
    assert RFC5424.fullmatch(first) is not None and first.endswith(b" short")
    assert first.startswith(b"<130>1 ")
    assert len(second) == 3000 and second.endswith(b" " + b"x" * budget)  # never cut here
    tcp = TcpSyslog("127.0.0.1", 9, "mx1", max_bytes=3000)
    head = syslog_frame("", TS, 2, "action", "mx1")
    assert tcp.budget(TS, 2, "action") == 3000 - len("3000 ") - len(head)


def test_file_output_appends_lines(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "siem.log"
    output = open_output(parse_destination(f"file:{path}"))
    output.send("one", TS, 6, "mail")
    output.send("two", TS, 6, "mail")
    output.close()
    assert path.read_text() == "one\ntwo\n"
