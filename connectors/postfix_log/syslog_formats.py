"""Syslog envelopes as found in the wild, parsed into one LogRecord each.

Supported: classic BSD (``Nov 27 01:47:03 host tag[pid]: msg``, no year, optional
fraction), rsyslog RFC 3339 (``2026-11-27T01:47:03.123+01:00 host tag[pid]: msg``),
RFC 5424 (``<22>1 2026-11-27T01:47:03Z host tag pid - - msg``), Postfix's own
``maillog_file`` (BSD-like), journald JSON (``journalctl -o json``) and rspamd's
own log file (``2026-11-27 01:47:03 #123(normal) <id>; task; ...``, no host).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

MAX_LINE = 64 * 1024  # Postfix cuts records at 2000 bytes; anything far longer is not a log line

_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_PRI = r"(?:<\d{1,3}>)?"
_TAG = r"(?P<tag>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?:\s?"
_BSD = re.compile(
    _PRI + r"(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d\d:\d\d:\d\d)(?P<frac>\.\d+)? "
    r"(?P<host>\S+) " + _TAG + r"(?P<msg>.*)", re.S)
_ISO = re.compile(
    _PRI + r"(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) "
    r"(?P<host>\S+) " + _TAG + r"(?P<msg>.*)", re.S)
# What follows a BSD stamp already read: host, tag, pid, message (``_BSD`` after its stamp).
_BSD_TAIL = re.compile(r"(\S+) ([^\s\[:]+)(?:\[(\d+)\])?:\s?(.*)", re.S)
_RFC5424 = re.compile(
    r"<\d{1,3}>1 (?P<ts>\S+) (?P<host>\S+) (?P<tag>\S+) (?P<pid>\S+) \S+ "
    r"(?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+) ?(?P<msg>.*)", re.S)
_RSPAMD = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:,\d+)? #(?P<pid>\d+)\((?P<kind>[a-z_]+)\) (?P<msg>.*)",
    re.S)


@dataclass(slots=True)  # not frozen: one is built per log line, and frozen ones build 5x slower
class LogRecord:
    ts: datetime
    host: str | None  # None where the format has none (rspamd's own file)
    tag: str  # "postfix/submission/smtpd", "amavis", "rspamd"
    pid: int | None
    message: str

    @property
    def daemon(self) -> str:
        """The program after the last ``/``: ``smtpd`` for ``postfix/submission/smtpd``."""
        return self.tag.rsplit("/", 1)[-1]

    @property
    def service(self) -> str:
        """The syslog name before the daemon: ``postfix/submission`` (or the tag itself)."""
        return self.tag.rsplit("/", 1)[0]


class YearGuess:
    """Years for BSD timestamps, which have none.

    The first line takes the year of ``reference`` (the file's mtime or now),
    or the year before when that would put it more than a day in the future;
    later lines add a year when the month wraps from December to January.
    """

    def __init__(self, reference: datetime) -> None:
        self._reference = reference
        self._year: int | None = None
        self._last_month = 0

    def year_for(self, month: int, day: int) -> int:
        if self._year is None:
            year = self._reference.year
            if (month, day) > (self._reference.month, self._reference.day + 1):
                year -= 1
            self._year = year
        elif month < self._last_month - 6:  # Dec -> Jan: a new year began
            self._year += 1
        self._last_month = month
        return self._year


class SyslogParser:
    """Turns one line into a LogRecord, or None when no known envelope fits.

    ``zone`` is the time zone of timestamps that carry none (BSD and rspamd).
    """

    def __init__(self, zone: tzinfo = UTC, reference: datetime | None = None) -> None:
        self._zone = zone
        self._years = YearGuess(reference or datetime.now(UTC))
        self._stamps: dict[tuple[str | Any, ...], datetime] = {}
        self._stamp_texts: dict[str, datetime] = {}  # a BSD line's stamp, as written

    def known_time(self, line: str) -> datetime | None:
        """The time of a BSD-format line whose stamp an earlier line had (most lines of a
        busy log), read without parsing the line; None otherwise."""
        return self._stamp_texts.get(_stamp_text(line))

    def parse(self, line: str) -> LogRecord | None:
        if len(line) > MAX_LINE:
            return None
        line = line.rstrip("\r\n")
        end = line.find(" ", 14)
        if end > 0:  # most lines of a busy log repeat a BSD stamp already read
            ts = self._stamp_texts.get(line[:end])
            tail = _BSD_TAIL.match(line, end + 1) if ts is not None else None
            if tail is not None:
                host, tag, pid, message = tail.groups()
                return LogRecord(ts, host, tag, _pid(pid), message)  # type: ignore[arg-type]
        first = line[:1]
        try:
            if first == "{":
                return _journald(line)
            match = _BSD.match(line)
            if match:
                return self._bsd(match)
            if first == "<":
                match = _RFC5424.match(line)
                if match:
                    return _rfc5424(match)
            match = _ISO.match(line)
            if match:
                return LogRecord(_iso_time(match["ts"], self._zone), match["host"], match["tag"],
                                 _pid(match["pid"]), match["msg"])
            match = _RSPAMD.match(line)
            if match:
                ts = datetime.fromisoformat(match["ts"]).replace(tzinfo=self._zone)
                return LogRecord(ts, None, "rspamd", int(match["pid"]), match["msg"])
        except (ValueError, OverflowError):
            return None  # e.g. "Feb 30", a broken year: not a usable line
        return None

    def _bsd(self, match: re.Match[str]) -> LogRecord:
        stamp = match.group("mon", "day", "time", "frac")
        ts = self._stamps.get(stamp)
        if ts is None:  # busy logs repeat each second's stamp many times
            if len(self._stamps) >= 256:
                self._stamps.clear()
            ts = self._stamps[stamp] = self._bsd_time(match)
        text = _stamp_text(match.string)
        if text not in self._stamp_texts:
            if len(self._stamp_texts) >= 256:
                self._stamp_texts.clear()
            self._stamp_texts[text] = ts
        host, tag, pid, message = match.group("host", "tag", "pid", "msg")
        return LogRecord(ts, host, tag, _pid(pid), message)

    def _bsd_time(self, match: re.Match[str]) -> datetime:
        month = _MONTHS.get(match["mon"])
        if month is None:
            raise ValueError(match["mon"])
        day = int(match["day"])
        hour, minute, second = (int(p) for p in match["time"].split(":"))
        micro = round(float(match["frac"]) * 1_000_000) if match["frac"] else 0
        year = self._years.year_for(month, day)
        return datetime(year, month, day, hour, minute, second, min(micro, 999_999), tzinfo=self._zone)


def _stamp_text(line: str) -> str:
    """What a BSD line's stamp is written as: the text before the first space after the
    time (``<13>`` and a fraction of a second included, when there are)."""
    return line[:line.find(" ", 14)]


def _pid(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _iso_time(text: str, zone: tzinfo) -> datetime:
    ts = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    return ts if ts.tzinfo else ts.replace(tzinfo=zone)


def _rfc5424(match: re.Match[str]) -> LogRecord:
    message = match["msg"]
    if message.startswith("\ufeff"):  # the BOM RFC 5424 allows before UTF-8 text
        message = message[1:]
    return LogRecord(_iso_time(match["ts"], UTC), None if match["host"] == "-" else match["host"],
                     match["tag"], _pid(match["pid"]), message)


def _journald(line: str) -> LogRecord | None:
    entry = json.loads(line)
    if not isinstance(entry, dict):
        return None
    message = entry.get("MESSAGE")
    if isinstance(message, list):  # journald gives non-UTF-8 text as a byte list
        message = bytes(b & 0xFF for b in message if isinstance(b, int)).decode("utf-8", "replace")
    stamp = entry.get("__REALTIME_TIMESTAMP")
    tag = entry.get("SYSLOG_IDENTIFIER")
    if not isinstance(message, str) or not isinstance(stamp, str) or not stamp.isdigit() or not tag:
        return None
    ts = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(stamp))
    pid = entry.get("SYSLOG_PID") or entry.get("_PID")
    return LogRecord(ts, entry.get("_HOSTNAME"), str(tag), _pid(str(pid) if pid else None), message)


# Postfix daemons, as the last part of a syslog tag (``postfix-out/submission/smtpd``).
POSTFIX_DAEMONS = frozenset({
    "smtpd", "smtp", "lmtp", "local", "virtual", "pipe", "error", "retry", "discard", "cleanup",
    "qmgr", "oqmgr", "pickup", "bounce", "defer", "trace", "postscreen", "dnsblog", "tlsproxy",
    "anvil", "scache", "verify", "postsuper", "postdrop", "sendmail", "master", "postfix-script",
    "postlogd", "trivial-rewrite", "tlsmgr", "showq", "flush", "proxymap", "spawn", "postmap",
    "postqueue", "postlog", "postmulti", "postalias", "postconf", "qmqpd", "lmtpd",
})


def is_postfix_tag(tag: str) -> bool:
    """``postfix/smtpd``, ``postfix-out/smtp``, any ``syslog_name/.../daemon``; not ``amavis``."""
    service, slash, daemon = tag.rpartition("/")
    return bool(slash) and daemon in POSTFIX_DAEMONS and bool(service)
