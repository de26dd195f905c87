"""Read Postfix (and spam-filter) log files into MailEvents and DeliveryEvents."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, tzinfo
from pathlib import Path

from connectors.postfix_log.open_message import Position
from connectors.postfix_log.refusal_replies import RefusalReplies
from connectors.postfix_log.syslog_formats import MAX_LINE, LogRecord, SyslogParser
from connectors.postfix_log.tracker import MessageTracker, Output
from schemas.config import FloodgateConfig
from schemas.direction import DirectionRules


def open_log_lines(path: str) -> Iterator[str]:
    """Lines of a plain or gzip-compressed log, decoded leniently (logs are not always UTF-8)."""
    opener = gzip.open if path.endswith(".gz") else open
    # Lines end at "\n" only (a "\r" inside one is the line's own); one longer than any
    # log line is cut, and the parser refuses it.
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="\n") as stream:
        for line in stream:
            yield line if len(line) <= MAX_LINE else line[:MAX_LINE + 1]


def file_reference_time(path: str) -> datetime:
    """The file's modification time: the year BSD timestamps are read in."""
    try:
        return datetime.fromtimestamp(Path(path).stat().st_mtime, UTC)
    except OSError:
        return datetime.now(UTC)


# smtpd's lines about the connection itself, a third of a busy server's log: nothing in them
# is counted, and telling them costs far less than parsing them (``postfix_lines`` knows them
# as noise too, should one come another way).
_NOISE_STARTS = ("connect from ", "disconnect from ", "Anonymous TLS connection established ",
                 "Trusted TLS connection established ", "Untrusted TLS connection established ",
                 "Verified TLS connection established ", "lost connection after ",
                 "timeout after ")


def _connection_noise(line: str) -> bool:
    """Whether a syslog line is one of smtpd's connection lines (``_NOISE_STARTS``), told
    from its text alone: ``... postfix/submission/smtpd[123]: connect from ...``."""
    end = line.find("]: ")
    return (end > 0 and line.startswith(_NOISE_STARTS, end + 3)
            and line.endswith("/smtpd", 0, line.rfind("[", 0, end)))


class LogReader:
    """Parses lines in order, through one tracker (so messages span rotated files)."""

    def __init__(self, rules: DirectionRules, zone: tzinfo = UTC,
                 reference: datetime | None = None, default_host: str | None = None,
                 replies: RefusalReplies | None = None,
                 reinjection_services: frozenset[str] = frozenset(),
                 deliveries: bool = True) -> None:
        """``deliveries``: build DeliveryEvents (else only count them: ``floodgate parse``
        without ``--deliveries`` prints none)."""
        self.tracker = MessageTracker(rules, replies=replies,
                                      reinjection_services=reinjection_services,
                                      deliveries=deliveries)
        self._syslog = SyslogParser(zone, reference)
        self._default_host = default_host

    @classmethod
    def for_config(cls, config: FloodgateConfig, zone: tzinfo = UTC,
                   reference: datetime | None = None, default_host: str | None = None,
                   deliveries: bool = True) -> LogReader:
        """A reader with the config's networks, spam replies and policy reply texts."""
        return cls(DirectionRules(config.networks), zone, reference, default_host,
                   RefusalReplies.for_config(config),
                   frozenset(config.log_reading.reinjection_services), deliveries)

    def reconfigure(self, config: FloodgateConfig) -> None:
        """Read by ``config`` from the next line on; messages already open keep their state."""
        self.tracker.configure(DirectionRules(config.networks),
                               RefusalReplies.for_config(config),
                               frozenset(config.log_reading.reinjection_services))

    def read(self, lines: Iterable[str]) -> Iterator[Output]:
        for line in lines:
            outputs = self.feed_line(line)
            if outputs:  # most lines make nothing reportable
                yield from outputs

    def feed_line(self, line: str, position: Position = ()) -> list[Output]:
        """One line (``position``: where it starts) and what it made reportable."""
        if not line or line.isspace():
            return []
        if _connection_noise(line):
            ts = self._syslog.known_time(line)
            if ts is not None:  # no need to parse it: its time is all it tells
                return self.tracker.ignore(ts, position)
        record = self._syslog.parse(line)
        if record is None:
            self.tracker.reject_unparsed(line.rstrip("\n"))
            return []
        if record.host is None and self._default_host:
            record = LogRecord(record.ts, self._default_host, record.tag, record.pid, record.message)
        if record.message.startswith(_NOISE_STARTS) and record.tag.endswith("/smtpd"):
            return self.tracker.ignore(record.ts, position)
        return self.tracker.feed(record, position)

    def finish(self) -> list[Output]:
        return self.tracker.flush()
