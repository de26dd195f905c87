"""Where SIEM lines go: syslog over TCP (RFC 5424 with RFC 6587 octet counting) or UDP
(RFC 5426), a file, or stdout. Destinations are written as
``syslog://HOST:PORT`` (TCP), ``syslog+udp://HOST:PORT``, ``file:PATH`` or ``stdout``.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, TextIO

FACILITY_LOCAL0 = 16
MAX_UDP_MESSAGE = 8192  # bytes; larger datagrams are often dropped on the way
_NOT_PRINTABLE = re.compile(r"[^\x21-\x7e]")


class Output(Protocol):
    def send(self, line: str, ts: datetime, severity: int, msgid: str) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Destination:
    kind: str  # tcp, udp, file, stdout
    host: str = ""
    port: int = 0
    path: str = ""


def parse_destination(text: str) -> Destination:
    """``--to`` as given; ValueError with the accepted forms for anything else."""
    if text == "stdout":
        return Destination("stdout")
    if text.startswith("file:") and len(text) > 5:
        return Destination("file", path=text[5:])
    match = re.fullmatch(r"syslog(\+tcp|\+udp)?://(\[[0-9A-Fa-f:.]+\]|[^:/\s]+):(\d{1,5})", text)
    if match and 0 < int(match.group(3)) < 65536:
        kind = "udp" if match.group(1) == "+udp" else "tcp"
        return Destination(kind, host=match.group(2).strip("[]"), port=int(match.group(3)))
    raise ValueError(f"{text!r}: use syslog://HOST:PORT (TCP), syslog+udp://HOST:PORT, "
                     "file:PATH or stdout")


def syslog_frame(line: str, ts: datetime, severity: int, msgid: str, hostname: str,
                 app: str = "floodgate") -> bytes:
    """An RFC 5424 message: ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG``."""
    def field(value: str, limit: int) -> str:
        return _NOT_PRINTABLE.sub("_", value)[:limit] or "-"

    stamp = ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    head = (f"<{FACILITY_LOCAL0 * 8 + severity}>1 {stamp} {field(hostname, 255)} "
            f"{field(app, 48)} {os.getpid()} {field(msgid, 32)} -")
    return f"{head} {line}".encode()


def open_output(destination: Destination, hostname: str | None = None) -> Output:
    host = hostname or socket.gethostname()
    if destination.kind == "stdout":
        return StreamOutput(sys.stdout)
    if destination.kind == "file":
        return StreamOutput(Path(destination.path).open("a", encoding="utf-8"))
    if destination.kind == "udp":
        return UdpSyslog(destination.host, destination.port, host)
    return TcpSyslog(destination.host, destination.port, host)


class StreamOutput:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def send(self, line: str, ts: datetime, severity: int, msgid: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._stream is not sys.stdout:
            self._stream.close()


class UdpSyslog:
    def __init__(self, host: str, port: int, hostname: str) -> None:
        self._address = (host, port)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        self._hostname = hostname

    def send(self, line: str, ts: datetime, severity: int, msgid: str) -> None:
        frame = syslog_frame(line, ts, severity, msgid, self._hostname)
        self._socket.sendto(frame[:MAX_UDP_MESSAGE], self._address)

    def close(self) -> None:
        self._socket.close()


class TcpSyslog:
    """Reconnects and retries until the line is written: the caller commits only after."""

    def __init__(self, host: str, port: int, hostname: str, retry_s: float = 1.0,
                 give_up_s: float = 300.0) -> None:
        self._address = (host, port)
        self._hostname = hostname
        self._retry_s, self._give_up_s = retry_s, give_up_s
        self._socket: socket.socket | None = None

    def send(self, line: str, ts: datetime, severity: int, msgid: str) -> None:
        frame = syslog_frame(line, ts, severity, msgid, self._hostname)
        framed = f"{len(frame)} ".encode() + frame
        deadline = time.monotonic() + self._give_up_s
        while True:
            try:
                if self._socket is None:
                    self._socket = socket.create_connection(self._address, timeout=10)
                self._socket.sendall(framed)
                return
            except OSError:
                self.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(self._retry_s)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
