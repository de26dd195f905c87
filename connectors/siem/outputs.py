"""Where SIEM lines go: syslog over TCP (RFC 5424 with RFC 6587 octet counting) or UDP
(RFC 5426), a file, or stdout. Destinations are written as
``syslog://HOST:PORT`` (TCP), ``syslog+udp://HOST:PORT``, ``file:PATH`` or ``stdout``.
Each output is opened with a byte limit for a whole record as it goes on the wire
(syslog header and octet count included) and tells the renderer, through
``budget``, how many bytes of that are left for the line.
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

from connectors.siem.record_size import DEFAULT_RECORD_BYTES

FACILITY_LOCAL0 = 16
_NOT_PRINTABLE = re.compile(r"[^\x21-\x7e]")


class Output(Protocol):
    def budget(self, ts: datetime, severity: int, msgid: str) -> int:
        """Bytes left for the line of a record sent with these header values."""

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


def syslog_head(ts: datetime, severity: int, msgid: str, hostname: str,
                app: str = "floodgate") -> bytes:
    """An RFC 5424 header with the space before MSG:
    ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID - ``."""
    def field(value: str, limit: int) -> str:
        return _NOT_PRINTABLE.sub("_", value)[:limit] or "-"

    stamp = ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return (f"<{FACILITY_LOCAL0 * 8 + severity}>1 {stamp} {field(hostname, 255)} "
            f"{field(app, 48)} {os.getpid()} {field(msgid, 32)} - ").encode()


def syslog_frame(line: str, ts: datetime, severity: int, msgid: str, hostname: str,
                 app: str = "floodgate") -> bytes:
    """An RFC 5424 message: ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG``."""
    return syslog_head(ts, severity, msgid, hostname, app) + line.encode()


def open_output(destination: Destination, hostname: str | None = None,
                max_bytes: int = DEFAULT_RECORD_BYTES) -> Output:
    host = hostname or socket.gethostname()
    if destination.kind == "stdout":
        return StreamOutput(sys.stdout, max_bytes)
    if destination.kind == "file":
        return StreamOutput(Path(destination.path).open("a", encoding="utf-8"), max_bytes)
    if destination.kind == "udp":
        return UdpSyslog(destination.host, destination.port, host, max_bytes)
    return TcpSyslog(destination.host, destination.port, host, max_bytes)


class StreamOutput:
    def __init__(self, stream: TextIO, max_bytes: int = DEFAULT_RECORD_BYTES) -> None:
        self._stream = stream
        self._max_bytes = max_bytes

    def budget(self, ts: datetime, severity: int, msgid: str) -> int:
        return self._max_bytes - 1  # the newline

    def send(self, line: str, ts: datetime, severity: int, msgid: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._stream is not sys.stdout:
            self._stream.close()


class UdpSyslog:
    """One datagram per record: the renderer keeps it within ``max_bytes``, never cut here."""

    def __init__(self, host: str, port: int, hostname: str,
                 max_bytes: int = DEFAULT_RECORD_BYTES) -> None:
        self._address = (host, port)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        self._hostname = hostname
        self._max_bytes = max_bytes

    def budget(self, ts: datetime, severity: int, msgid: str) -> int:
        return self._max_bytes - len(syslog_head(ts, severity, msgid, self._hostname))

    def send(self, line: str, ts: datetime, severity: int, msgid: str) -> None:
        self._socket.sendto(syslog_frame(line, ts, severity, msgid, self._hostname),
                            self._address)

    def close(self) -> None:
        self._socket.close()


class TcpSyslog:
    """Reconnects and retries until the line is written: the caller commits only after."""

    def __init__(self, host: str, port: int, hostname: str,
                 max_bytes: int = DEFAULT_RECORD_BYTES, retry_s: float = 1.0,
                 give_up_s: float = 300.0) -> None:
        self._address = (host, port)
        self._hostname = hostname
        self._max_bytes = max_bytes
        self._retry_s, self._give_up_s = retry_s, give_up_s
        self._socket: socket.socket | None = None

    def budget(self, ts: datetime, severity: int, msgid: str) -> int:
        count = len(f"{self._max_bytes} ")  # RFC 6587 octet count, at its longest
        return self._max_bytes - count - len(syslog_head(ts, severity, msgid, self._hostname))

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
