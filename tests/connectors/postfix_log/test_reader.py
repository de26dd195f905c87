"""The reader's shortcuts change nothing it reports: smtpd's connection lines are skipped
without parsing but still counted and still move the clock, and a reader that builds no
DeliveryEvents reports the same MailEvents."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.postfix_log import reader as reader_module
from connectors.postfix_log.reader import LogReader
from connectors.postfix_log.tracker import Output
from schemas.config import Networks
from schemas.direction import DirectionRules
from schemas.events import DeliveryEvent, MailEvent
from tests.benchmarks.bench_log_parser import generate

RULES = DirectionRules(Networks(internal=["10.0.0.0/8"], local_domains=["example.net"]))
REFERENCE = datetime(2026, 12, 1, tzinfo=UTC)


def read(lines: list[str], deliveries: bool = True) -> tuple[list[Output], LogReader]:
    reader = LogReader(RULES, UTC, REFERENCE, deliveries=deliveries)
    return [*reader.read(lines), *reader.finish()], reader


def test_a_generated_day_reads_the_same_with_and_without_the_shortcuts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    lines = list(generate(20_000))
    quick, quick_reader = read(lines, deliveries=False)
    monkeypatch.setattr(reader_module, "_connection_noise", lambda line: False)
    monkeypatch.setattr(reader_module, "_NOISE_STARTS", ("\x00never",))
    full, full_reader = read(lines)
    mail = [o for o in full if isinstance(o, MailEvent)]
    assert len(mail) > 1_000 and quick == mail  # the same events, in the same order
    assert quick_reader.tracker.stats == full_reader.tracker.stats
    assert full_reader.tracker.stats.delivery_events == sum(isinstance(o, DeliveryEvent)
                                                            for o in full) > 0


SUBMITTED = [
    "Dec  1 10:00:00 mx1 postfix/submission/smtpd[7]: 4A1B2C3D4E: client=c.example.org"
    "[10.0.0.9], sasl_method=PLAIN, sasl_username=alice@example.net",
    "Dec  1 10:00:00 mx1 postfix/cleanup[8]: 4A1B2C3D4E: message-id=<m1@example.net>",
    "Dec  1 10:00:00 mx1 postfix/qmgr[9]: 4A1B2C3D4E: from=<alice@example.net>, size=900, "
    "nrcpt=2 (queue active)",
]


def test_connection_lines_move_the_clock_and_repeat_stamps_skip_the_parse() -> None:
    """Two recipients announced, none delivered yet: the message is reported once the settle
    time has passed, here at a connection line 11 s later; the next one, of a stamp already
    seen, is not parsed at all, and both are counted."""
    reader = LogReader(RULES, UTC, REFERENCE, deliveries=False)
    assert [o for line in SUBMITTED for o in reader.feed_line(line)] == []
    later = "Dec  1 10:00:11 mx1 postfix/smtpd[3]: connect from unknown[192.0.2.1]"
    [event] = reader.feed_line(later)
    assert isinstance(event, MailEvent) and event.sasl_username == "alice@example.net"
    parsed = reader._syslog.parse
    reader._syslog.parse = lambda line: pytest.fail("parsed")  # type: ignore[method-assign]
    assert reader.feed_line(later.replace("connect from", "disconnect from")) == []
    reader._syslog.parse = parsed  # type: ignore[method-assign]
    stats = reader.tracker.stats
    assert (stats.lines, stats.postfix_lines, stats.ignored) == (5, 5, 2)


@pytest.mark.parametrize(("line", "postfix"), [
    ("Dec  1 10:00:11 mx1 dovecot[3]: connect from unknown[192.0.2.1]", False),
    ("Dec  1 10:00:11 mx1 postfix/smtp[3]: connect from unknown[192.0.2.1]", True),
])
def test_lines_that_only_look_like_smtpd_connection_lines_are_read_in_full(
        line: str, postfix: bool) -> None:
    reader = LogReader(RULES, UTC, REFERENCE)
    reader.feed_line(line.replace("connect from", "lost connection after"))  # its stamp known
    seen: list[str] = []
    parse = reader._syslog.parse
    reader._syslog.parse = lambda text: seen.append(text) or parse(text)  # type: ignore
    reader.feed_line(line)
    assert seen == [line]
    assert (reader.tracker.stats.postfix_lines, reader.tracker.stats.other_lines) == (
        (2, 0) if postfix else (0, 2))
