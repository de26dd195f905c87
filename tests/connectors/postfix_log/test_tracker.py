"""Correlation on real logs: Lightmeter's tracking corpus (AGPL, read from ../shared, not copied)
and the CrowdSec and Datadog samples, plus hand-written edge cases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.postfix_log.reader import LogReader, open_log_lines
from connectors.postfix_log.tracker import Output
from schemas.config import Networks
from schemas.direction import DirectionRules
from schemas.events import DeliveryEvent, MailEvent
from schemas.vocabulary import Direction
from tests.connectors.postfix_log.corpora import CORPORA, LIGHTMETER, needs_corpora

RULES = DirectionRules(Networks(internal=["127.0.0.0/8", "10.0.0.0/8"],
                                local_domains=["mydomain.com", "example.net"]))


def read(lines: list[str] | Path, max_messages: int = 200_000) -> tuple[list[MailEvent],
                                                                          list[DeliveryEvent],
                                                                          LogReader]:
    reader = LogReader(RULES, UTC, datetime(2020, 12, 31, tzinfo=UTC))
    reader.tracker._max = max_messages
    source = open_log_lines(str(lines)) if isinstance(lines, Path) else lines
    out: list[Output] = [*reader.read(source), *reader.finish()]
    return ([o for o in out if isinstance(o, MailEvent)],
            [o for o in out if isinstance(o, DeliveryEvent)], reader)


@needs_corpora
@pytest.mark.parametrize(("name", "deliveries"), [
    ("1_bounce_simple.log", 2), ("2_multiple_recipients_some_bounces.log", 6),
    ("2_multiple_recipients_some_bounces_no_last_remove.log", 6), ("3_local_delivery.log", 1),
    ("5_zimbra_amavisd.log", 1), ("7_only_connections_and_disconnections.log", 0),
    ("9_mixed_messages.log", 8), ("10_pickup.log", 1), ("11_single_successful_delivery.log", 1),
    ("12_two_independent_deliveries_in_the_same_smtpd_process_in_order.log", 2),
    ("12_two_independent_deliveries_in_the_same_smtpd_process_mixed.log", 2),
    ("13_empty_msgid_issue_388.log", 1), ("15_milter-reject.log", 0),
    ("16_corrupted_messageid.log", 1), ("17-smtpd-reject.log", 0),
    ("17-smtpd-reject-with-milter-reject.log", 0), ("18_expired.log", 8),
    ("22_virtual_delivery.log", 1), ("25_authclean_cleanup.log", 1), ("26_two_recipients.log", 2),
    ("28_received_bounce.log", 1), ("31_relayed_bounce.log", 2),
    ("33_delivery_with_remote_id.log", 1),
])
def test_lightmeter_delivery_results(name: str, deliveries: int) -> None:
    _mails, found, reader = read(LIGHTMETER / name)
    assert len(found) == deliveries
    stats = reader.tracker.stats
    print(f"{name}: {stats.postfix_lines} Postfix lines, {stats.unparsed} not understood")
    assert stats.unparsed <= 1  # one multi-line local(8) record in 18_expired


@needs_corpora
def test_submission_through_a_content_filter_is_one_outbound_message() -> None:
    mails, deliveries, _ = read(LIGHTMETER / "11_single_successful_delivery.log")
    [mail] = mails  # the copy Amavis re-injected is not a second message
    assert (mail.sender, mail.sasl_username, mail.client_name, mail.size, mail.recipient_count,
            mail.message_id, mail.direction, mail.accepted) == (
        "sender@mydomain.com", "sender@mydomain.com", "client.example.com", 502, 5,
        "264dc34c-ad52-466c-6d41-6622dfced3b8@mydomain.com", Direction.OUTBOUND, True)
    [delivery] = deliveries
    assert (delivery.event_id, delivery.recipient, delivery.status, delivery.sasl_username) == (
        mail.event_id, "recipient1@dst1.example.com", "sent", "sender@mydomain.com")


@needs_corpora
def test_amavis_verdict_joins_the_message() -> None:
    mails, _, _ = read(LIGHTMETER / "5_zimbra_amavisd.log")
    [mail] = mails
    # Amavis passed it CLEAN ("Hits: -": no score); its second pass, of the re-injected
    # copy, comes after the message was reported and removed.
    assert (mail.sasl_username, mail.spam, mail.spam_score) == (
        "sender@sender.example.com", False, None)


@needs_corpora
def test_milter_reject_is_a_refused_message_once() -> None:
    mails, _, _ = read(LIGHTMETER / "15_milter-reject.log")
    [mail] = mails
    assert (mail.accepted, mail.queue_id, mail.reject_reason) == (
        False, "B37FD2E05B9", "4.7.1 Try again later")


@needs_corpora
def test_bounces_are_marked_generated() -> None:
    mails, _, _ = read(LIGHTMETER / "1_bounce_simple.log")
    assert [m.mta_generated for m in mails] == [False, True]
    assert mails[1].sender == ""


@needs_corpora
def test_two_recipients_and_expiry() -> None:
    mails, _deliveries, _ = read(LIGHTMETER / "26_two_recipients.log")
    assert [sorted(m.recipients) for m in mails] == [
        ["recipient1@external.org", "recipient2@external.org"]]
    _, expired, _ = read(LIGHTMETER / "18_expired.log")
    # Lightmeter's 7 results (5 deferrals, the expiry, the bounce), and the relay hop before
    assert [d.status for d in expired] == ["sent"] + ["deferred"] * 5 + ["expired", "sent"]
    assert expired[6].queue_id == "23EBE3D5C0"
    assert expired[6].ts == datetime(2020, 9, 30, 20, 46, 8, tzinfo=UTC)


@needs_corpora
def test_crowdsec_envelopes_and_noqueue_rejects() -> None:
    log = CORPORA / "crowdsecurity-hub" / ".tests" / "postfix-logs" / "postfix-logs.log"
    mails, _, reader = read(log)
    stats = reader.tracker.stats
    assert (stats.lines, stats.postfix_lines, stats.unparsed) == (7, 7, 0)
    assert [m.reject_reason.split(" ", 2)[1] for m in mails if m.reject_reason] == [
        "5.7.1", "5.5.2", "4.7.1", "4.7.1"]
    assert all(not m.accepted and m.client_ip == "192.168.1.1" for m in mails)
    assert mails[1].ts == datetime(2024, 8, 26, 1, 33, 38, 572449, tzinfo=UTC)


@needs_corpora
def test_datadog_samples() -> None:
    import yaml

    tests = yaml.safe_load((CORPORA / "datadog-integrations-core" / "postfix" / "assets" / "logs"
                            / "postfix_tests.yaml").read_text())["tests"]
    lines = [t["sample"] for t in tests]
    _mails, deliveries, reader = read(lines)
    assert reader.tracker.stats.unparsed == 0
    expected = {t["result"]["custom"]["properties"].get("to") for t in tests
                if "to" in t["result"]["custom"].get("properties", {})}
    assert {d.recipient for d in deliveries} == expected


def _line(second: int, text: str, tag: str = "postfix/smtpd", host: str = "mx1") -> str:
    return f"Nov 27 10:00:{second:02d} {host} {tag}[1]: {text}"


def test_interleaved_sessions_and_a_spam_verdict() -> None:
    lines = [
        _line(0, "AAA111: client=a.example.org[10.0.0.5], sasl_method=PLAIN, sasl_username=alice"),
        _line(0, "BBB222: client=b.example.org[203.0.113.9]"),
        _line(1, "AAA111: message-id=<a@x>", "postfix/cleanup"),
        _line(1, "BBB222: message-id=<b@x>", "postfix/cleanup"),
        _line(1, "<x>; task; rspamd_task_write_log: id: <a@x>, qid: <AAA111>, ip: 10.0.0.5, "
                 "(default: T (add header): [9.10/15.00] [X]), len: 1", "rspamd"),
        _line(2, "BBB222: from=<b@partner.org>, size=10, nrcpt=1 (queue active)", "postfix/qmgr"),
        _line(2, "AAA111: from=<alice@example.net>, size=20, nrcpt=2 (queue active)", "postfix/qmgr"),
        _line(3, "AAA111: to=<x@gmail.example>, relay=g[1.2.3.4]:25, delay=1, dsn=2.0.0, "
                 "status=sent (250 ok)", "postfix/smtp"),
        _line(3, "BBB222: to=<bob@example.net>, relay=local, delay=1, dsn=2.0.0, "
                 "status=sent (delivered)", "postfix/local"),
        _line(4, "AAA111: to=<y@aol.example>, relay=a[1.2.3.5]:25, delay=2, dsn=4.4.1, "
                 "status=deferred (timeout)", "postfix/smtp"),
        _line(4, "BBB222: removed", "postfix/qmgr"),
    ]
    mails, deliveries, _ = read(lines)
    by_qid = {m.queue_id: m for m in mails}
    alice, inbound = by_qid["AAA111"], by_qid["BBB222"]
    assert (alice.direction, alice.spam, alice.spam_score, alice.recipients) == (
        Direction.OUTBOUND, True, 9.1, ["x@gmail.example", "y@aol.example"])
    assert (inbound.direction, inbound.spam) == (Direction.INBOUND, None)
    assert [d.status for d in deliveries] == ["sent", "sent", "deferred"]


def test_qmgr_retries_do_not_repeat_the_message_and_settle_reports_it() -> None:
    lines = [
        _line(0, "CCC333: client=c[10.0.0.7], sasl_method=PLAIN, sasl_username=carol"),
        _line(1, "CCC333: from=<carol@example.net>, size=5, nrcpt=2 (queue active)", "postfix/qmgr"),
        _line(2, "CCC333: to=<x@far.example>, relay=f[1.2.3.4]:25, delay=1, dsn=4.4.1, "
                 "status=deferred (timeout)", "postfix/smtp"),
        _line(30, "DDD444: client=d[10.0.0.8]"),  # 29 s later: CCC333 is due (settle 10 s)
        _line(40, "CCC333: from=<carol@example.net>, size=5, nrcpt=2 (queue active)", "postfix/qmgr"),
    ]
    reader = LogReader(RULES, UTC, datetime(2026, 12, 1, tzinfo=UTC))
    early = list(reader.read(lines[:3]))
    assert early == [d for d in early if isinstance(d, DeliveryEvent)]  # not yet reported
    later = [o for o in reader.read(lines[3:]) if isinstance(o, MailEvent)]
    assert [(m.queue_id, m.recipient_count) for m in later] == [("CCC333", 2)]
    assert [o for o in reader.finish() if isinstance(o, MailEvent)] == []


def test_memory_stays_bounded_and_evictions_are_counted() -> None:
    lines = []
    for n in range(2_000):  # sessions that never finish
        lines.append(_line(n % 60, f"{n + 0xA0000:X}: client=c[10.0.0.9], sasl_method=PLAIN, "
                                   "sasl_username=u"))
    mails, _, reader = read(lines, max_messages=100)
    assert reader.tracker.open_messages == 0  # finish() reported and dropped the rest
    assert reader.tracker.stats.evicted == 1_900
    assert mails == []  # never queued: nothing to report, nothing invented


def test_garbage_lines_are_counted_not_fatal() -> None:
    mails, _, reader = read(["\x00\x01 binary", "Nov 27 10:00:00 mx1 postfix/smtpd[1]: "
                             "AAA111: client=broken", "", "x" * 100_000])
    stats = reader.tracker.stats
    assert (mails, stats.unparsed) == ([], 3)


def test_held_mail_is_accepted_mail() -> None:
    lines = [
        _line(0, "EEE555: client=e[10.0.0.9], sasl_method=PLAIN, sasl_username=erin"),
        _line(1, "EEE555: hold: RCPT from e[10.0.0.9]: <erin@example.net>: Sender address "
                 "triggers HOLD action; from=<erin@example.net> to=<z@far.example> proto=ESMTP "
                 "helo=<e>"),
        _line(20, "FFF666: client=f[10.0.0.10]"),  # time passes: the held message is reported
    ]
    mails, _, _ = read(lines)
    assert [(m.queue_id, m.accepted, m.sender, m.recipients) for m in mails] == [
        ("EEE555", True, "erin@example.net", ["z@far.example"])]


@needs_corpora
def test_a_real_mail_server_day() -> None:
    """Lightmeter's anonymised /var/log/mail.log set: amavis, postscreen, submission, lmtp."""
    import tarfile

    archive = LIGHTMETER.parent / "complete.tar.gz"
    with tarfile.open(archive) as tar:
        texts = [tar.extractfile(f"logs_sample/{name}").read().decode("utf-8", "replace")  # type: ignore[union-attr]
                 for name in ("mail.log.1", "mail.log")]
    mails, deliveries, reader = read([line for text in texts for line in text.splitlines()])
    stats = reader.tracker.stats
    print(f"complete.tar.gz: {stats.lines} lines, {stats.postfix_lines} Postfix, "
          f"{stats.verdicts} verdicts, {stats.unparsed} not understood ({stats.unparsed_share:.2%}), "
          f"{len(mails)} MailEvents, {len(deliveries)} DeliveryEvents")
    assert stats.unparsed_share < 0.005
    assert stats.verdicts > 100  # amavis verdicts joined
    assert len({m.event_id for m in mails}) == len(mails)  # each message once
    assert sum(1 for m in mails if m.spam is not None) > 50


@needs_corpora
def test_delivery_attempts_carry_the_messages_direction_and_origin() -> None:
    from pipeline.engine.counting import unit_flags
    from schemas.vocabulary import DELIVERY_UNIT, FLAG_BITS, Flag

    _, deliveries, _ = read(LIGHTMETER / "2_multiple_recipients_some_bounces.log")
    sent_by_customer = [d for d in deliveries if not d.mta_generated]
    assert {d.direction for d in sent_by_customer} == {Direction.OUTBOUND}
    [notice] = [d for d in deliveries if d.mta_generated]  # the bounce notice to the sender
    assert notice.direction is Direction.INBOUND
    bounced, refused = FLAG_BITS[Flag.BOUNCED], FLAG_BITS[Flag.REMOTE_REFUSED]
    # nullMX is Postfix's own verdict; Outlook and Gmail answered 550 themselves
    assert sorted(unit_flags(d) for d in sent_by_customer) == sorted(
        [DELIVERY_UNIT | bounced] + [DELIVERY_UNIT | bounced | refused] * 2 + [DELIVERY_UNIT] * 2)


def test_a_recipient_refused_in_a_queued_message_is_its_own_refused_event() -> None:
    """Postfix names the queue id once a recipient was accepted: the refused ones then carry
    the session's account, which NOQUEUE lines never have."""
    reject = ("EEE555: reject: RCPT from e.example.org[10.0.0.9]: 550 5.1.1 <{0}@example.net>: "
              "Recipient address rejected: User unknown in virtual mailbox table; "
              "from=<erin@example.net> to=<{0}@example.net> proto=ESMTP helo=<e.example.org>")
    lines = [
        _line(0, "EEE555: client=e.example.org[10.0.0.9], sasl_method=PLAIN, "
                 "sasl_username=erin"),
        _line(1, reject.format("nobody")),
        _line(1, reject.format("nobody")),  # the same line read twice: the same event id
        _line(2, reject.format("noone")),
        _line(3, "EEE555: message-id=<e@x>", "postfix/cleanup"),
        _line(3, "EEE555: from=<erin@example.net>, size=20, nrcpt=1 (queue active)",
              "postfix/qmgr"),
        _line(4, "EEE555: to=<bob@example.net>, relay=local, delay=1, dsn=2.0.0, "
                 "status=sent (delivered)", "postfix/local"),
        _line(4, "EEE555: removed", "postfix/qmgr"),
    ]
    mails, _, _ = read(lines)
    refused = [m for m in mails if not m.accepted]
    [message] = [m for m in mails if m.accepted]
    assert (message.recipients, message.sasl_username) == (["bob@example.net"], "erin")
    assert [(m.recipients, m.sasl_username, m.client_ip, m.sender, m.queue_id, m.direction)
            for m in refused] == [
        ([f"{r}@example.net"], "erin", "10.0.0.9", "erin@example.net", "EEE555",
         Direction.INTERNAL) for r in ("nobody", "nobody", "noone")]
    assert len({m.event_id for m in refused}) == 2 and message.event_id not in {
        m.event_id for m in refused}
    assert all(m.reject_reason and m.reject_reason.startswith("550 5.1.1 ") and m.spam is None
               for m in refused)
