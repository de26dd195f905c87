"""Floodgate's SIEM records through a real rsyslog (Debian's, stock 8 KiB limit) over TCP
with octet counting and over UDP: records with hostile and over-long values each arrive
as exactly one record, whole, and valid.

Before records were bounded, one long reason made rsyslog keep the first 8 KiB and turn
the rest into bogus records (TCP), or arrived as cut JSON (UDP).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from connectors.siem.outputs import Output, TcpSyslog, UdpSyslog
from connectors.siem.record_size import DEFAULT_RECORD_BYTES
from pipeline.cli.siem_cmd import write_record
from schemas.events import ActionEvent, Evidence, MailEvent
from tests.fixtures.rsyslog_instance import RsyslogInstance, needs_rsyslog
from tests.pipeline.engine.builders import T0

pytestmark = [needs_rsyslog, pytest.mark.slow]
HOST = "mx1.example"
PIECES = ["\r\n", "\n", "\x00", "\x1b[31m", "\t", "\u2028", "\u0085", "CEF:0|x|y|", "a=b", "\\",
          "|", '"', "}", "{", "é", "漢字", "😀", "\ufeff", "<13>1 2026-01-01T00:00:00Z evil app - - ",
          "8000 ", "ü" * 40, "x" * 300, " "]


def hostile(rng: random.Random, limit: int) -> str:
    text = ""
    while len(text) < limit and rng.random() < 0.995:
        text += rng.choice(PIECES)
    return text[:limit] or "x"


def records(seed: int) -> Iterator[ActionEvent | MailEvent]:
    rng = random.Random(seed)
    for n in range(24):
        kind = ("sasl_username", "sender", "client_ip", "sender_domain")[n % 4]
        subject = "192.0.2.7" if kind == "client_ip" else hostile(rng, rng.choice((30, 512)))
        lifted = n % 3 == 0
        yield ActionEvent(
            action_id=f"a{seed}-{n}", ts=T0 + timedelta(seconds=n), subject_type=kind,
            subject=subject, action=("block", "defer", "quarantine", "warn")[n % 4],
            threshold=hostile(rng, 255) if n % 2 else None,
            state="lifted" if lifted else "active", origin="manual" if n % 2 == 0 else "auto",
            triggered_at=T0, expires_at=T0 + timedelta(hours=1),
            actor=hostile(rng, 255) if lifted or n % 2 == 0 else None,
            reason=hostile(rng, rng.choice((100, 2000))),
            evidence=Evidence(window_start=T0 - timedelta(seconds=30), window_end=T0,
                              messages=60, spams=2, recipients=61, count="messages",
                              limit_messages=60, limit_spams=0))
        recipients = [hostile(rng, rng.choice((20, 512))) for _ in range(rng.choice((1, 40, 2000)))]
        yield MailEvent(
            event_id=f"mx1:{seed}:{n}", ts=T0 + timedelta(seconds=n), host=hostile(rng, 60),
            queue_id="4Fx" + str(n), message_id=hostile(rng, 2000), client_ip="10.0.0.5",
            client_name=hostile(rng, 255), sasl_username=hostile(rng, 512),
            sender=hostile(rng, 512), recipients=recipients, recipient_count=len(recipients),
            direction="outbound", accepted=n % 2 == 0, spam=n % 3 == 0,
            reject_reason=None if n % 2 == 0 else hostile(rng, 2000), source="log")


class Recording:
    """The output, keeping each line it was given."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self.lines: list[str] = []

    def budget(self, ts: datetime, severity: int, msgid: str) -> int:
        return self.output.budget(ts, severity, msgid)

    def send(self, line: str, ts: datetime, severity: int, msgid: str) -> None:
        self.lines.append(line)
        self.output.send(line, ts, severity, msgid)
        if isinstance(self.output, UdpSyslog):
            time.sleep(0.002)  # no more than a receive buffer's worth in flight at once

    def close(self) -> None:
        self.output.close()


@pytest.fixture
def rsyslog() -> Iterator[RsyslogInstance]:
    instance = RsyslogInstance()
    instance.start()
    yield instance
    instance.stop()


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_each_record_arrives_once_whole_and_valid(rsyslog: RsyslogInstance,
                                                  transport: str) -> None:
    output: Output = (TcpSyslog("127.0.0.1", rsyslog.tcp_port, HOST) if transport == "tcp"
                      else UdpSyslog("127.0.0.1", rsyslog.udp_port, HOST))
    sent = Recording(output)
    for fmt, seed in (("ecs", 1), ("cef", 2)):
        for record in records(seed):
            write_record(sent, fmt, record, None)
    sent.close()
    received = rsyslog.records(len(sent.lines))

    print(f"{transport}: {len(sent.lines)} sent, {len(received)} received")
    assert "oversize" not in rsyslog.output()
    assert len(received) == len(sent.lines)
    assert Counter(r["msg"] for r in received) == Counter(sent.lines)  # each one, whole
    for record in received:
        assert (record["hostname"], record["app-name"], record["procid"]) == (
            HOST, "floodgate", str(os.getpid()))
        assert record["msgid"] in ("action", "mail")
    ecs_lines = [r["msg"] for r in received if r["msg"].startswith("{")]
    cef_lines = [r["msg"] for r in received if r["msg"].startswith("CEF:0|Floodgate|")]
    assert len(ecs_lines) == len(cef_lines) == len(sent.lines) // 2
    documents = [json.loads(line) for line in ecs_lines]  # every one valid JSON
    assert sum("cut" in d["floodgate"] for d in documents) >= 10  # the limit was exercised
    assert sum("cs6Label=cut" in line for line in cef_lines) >= 10
    assert max(len(line.encode()) for line in sent.lines) < DEFAULT_RECORD_BYTES
