from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.postfix_log.syslog_formats import SyslogParser

REF = datetime(2026, 11, 27, 12, tzinfo=UTC)


def test_bsd_with_service_name_and_pid() -> None:
    record = SyslogParser(UTC, REF).parse(
        "Nov 27 01:47:03 mx1 postfix/submission/smtpd[123]: 4ABC: client=a[10.0.0.5]\n")
    assert record is not None
    assert (record.ts, record.host, record.tag, record.pid, record.message) == (
        datetime(2026, 11, 27, 1, 47, 3, tzinfo=UTC), "mx1", "postfix/submission/smtpd", 123,
        "4ABC: client=a[10.0.0.5]")
    assert (record.daemon, record.service) == ("smtpd", "postfix/submission")


def test_bsd_year_is_inferred_and_wraps_at_new_year() -> None:
    parser = SyslogParser(UTC, datetime(2027, 1, 1, 0, 30, tzinfo=UTC))
    december = parser.parse("Dec 31 23:59:59 mx1 postfix/qmgr[1]: 4ABC: removed")
    january = parser.parse("Jan  1 00:00:01 mx1 postfix/qmgr[1]: 4ABD: removed")
    assert december is not None and january is not None
    assert (december.ts.year, january.ts.year) == (2026, 2027)


def test_bsd_local_zone_and_fraction() -> None:
    paris = timezone(timedelta(hours=1))
    record = SyslogParser(paris, REF).parse("Nov 27 01:47:03.250 mx1 postfix/smtp[9]: x")
    assert record is not None
    assert record.ts == datetime(2026, 11, 27, 0, 47, 3, 250_000, tzinfo=UTC)


@pytest.mark.parametrize(("line", "ts", "host", "tag", "pid", "message"), [
    ("2024-08-26T01:33:38.572449+00:00 machine postfix/smtpd[1]: hello",
     datetime(2024, 8, 26, 1, 33, 38, 572449, tzinfo=UTC), "machine", "postfix/smtpd", 1, "hello"),
    ("<22>1 2026-11-27T01:47:03.123Z mx2 postfix/smtpd 4242 - - NOQUEUE: reject: x",
     datetime(2026, 11, 27, 1, 47, 3, 123000, tzinfo=UTC), "mx2", "postfix/smtpd", 4242,
     "NOQUEUE: reject: x"),
    ('<22>1 2026-11-27T01:47:03Z mx2 postfix/qmgr - - [meta x="1"] A1B2C: removed',
     datetime(2026, 11, 27, 1, 47, 3, tzinfo=UTC), "mx2", "postfix/qmgr", None, "A1B2C: removed"),
    ('{"__REALTIME_TIMESTAMP":"1795780800000000","_HOSTNAME":"mx3","SYSLOG_IDENTIFIER":'
     '"postfix/cleanup","_PID":"77","MESSAGE":"A1B2C: message-id=<m@x>"}',
     datetime(2026, 11, 27, 12, tzinfo=UTC), "mx3", "postfix/cleanup", 77, "A1B2C: message-id=<m@x>"),
    ("2026-11-27 01:47:03 #1234(normal) <6a1e3a>; task; rspamd_task_write_log: id: <m@x>",
     datetime(2026, 11, 27, 1, 47, 3, tzinfo=UTC), None, "rspamd", 1234,
     "<6a1e3a>; task; rspamd_task_write_log: id: <m@x>"),
])
def test_other_envelopes(line: str, ts: datetime, host: str | None, tag: str, pid: int | None,
                         message: str) -> None:
    record = SyslogParser(UTC, REF).parse(line)
    assert record is not None
    assert (record.ts, record.host, record.tag, record.pid, record.message) == (
        ts, host, tag, pid, message)


@pytest.mark.parametrize("line", [
    "", "garbage", "Feb 30 01:00:00 mx1 postfix/smtpd[1]: impossible date",
    "{not json", '{"MESSAGE": 5}', "[]", "x" * 70_000,
    "0000-12-30T00:00:00 host prog[1]: broken year",
])
def test_unusable_lines_give_none_never_raise(line: str) -> None:
    assert SyslogParser(UTC, REF).parse(line) is None


@pytest.mark.parametrize("stamp", ["Nov 27 01:47:03", "Nov  7 01:47:03", "Nov 7 01:47:03",
                                   "<13>Nov 27 01:47:03", "Nov 27 01:47:03.250"])
@pytest.mark.parametrize("rest", [
    "mx1 postfix/smtpd[12]: connect from x", "mx1 postfix/smtpd: no pid", "mx1 postfix/smtpd[]: x",
    "mx1 postfix/smtpd[1a]: x", "mx1 tag:\tmessage", "mx1 tag:no space", "mx1 tag[3]:",
    "mx1  double space[1]: x", "mx1 tag[12] missing colon", "mx1", "", "mx1 a:b[1]: c",
    "mx1 postfix/smtpd[12]: multi\nline\r", "mx1 postfix/smtpd[١٢]: unicode digits"])
def test_a_stamp_already_read_gives_what_a_full_parse_gives(stamp: str, rest: str) -> None:
    """Lines of a stamp seen before skip the stamp's parse: the record is the same."""
    line = f"{stamp} {rest}"
    fresh = SyslogParser(UTC, REF).parse(line)
    warm = SyslogParser(UTC, REF)
    assert warm.parse(f"{stamp} mx0 postfix/qmgr[1]: earlier") is not None  # the stamp seen
    assert warm.parse(line) == fresh
