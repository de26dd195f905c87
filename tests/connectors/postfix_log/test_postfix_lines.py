"""Postfix message parsing, checked against the whyscream grok-pattern corpus (BSD-3-Clause)."""

from __future__ import annotations

from pathlib import Path

import yaml

from connectors.postfix_log.postfix_lines import (
    IGNORED,
    ClientSeen,
    Delivery,
    MessageIdSeen,
    Queued,
    Refused,
    Removed,
    parse_postfix,
)
from connectors.postfix_log.spam_verdicts import parse_verdict
from tests.connectors.postfix_log.corpora import WHYSCREAM, needs_corpora

# The daemons whose lines make or change MailEvents; the rest must at least not crash.
COUNTED = ("smtpd", "smtp", "qmgr", "cleanup", "lmtp", "local", "pipe", "virtual", "error",
           "pickup", "bounce", "postsuper", "discard")


def test_client_line_with_sasl() -> None:
    fact = parse_postfix("smtpd", "BA8F630001DA: client=c.example.com[89.247.252.52]:4711, "
                                  "sasl_method=PLAIN, sasl_username=alice@example.net")
    assert fact == ClientSeen("BA8F630001DA", "c.example.com", "89.247.252.52", "PLAIN",
                              "alice@example.net")


def test_qmgr_with_and_without_angle_brackets() -> None:
    assert parse_postfix("qmgr", "4ABC12: from=<a@x.org>, size=502, nrcpt=5 (queue active)") == \
        Queued("4ABC12", "a@x.org", 502, 5)
    assert parse_postfix("qmgr", "4ABC12: from=a@x.org, size=502, nrcpt=5 (queue active)") == \
        Queued("4ABC12", "a@x.org", 502, 5)
    assert parse_postfix("qmgr", "4ABC12: removed") == Removed("4ABC12")


def test_long_queue_ids_and_words_that_are_not_ids() -> None:
    fact = parse_postfix("cleanup", "4ZYQ3h0CBMz9sYk: message-id=<m@x.org>")
    assert fact == MessageIdSeen("4ZYQ3h0CBMz9sYk", "m@x.org")
    assert parse_postfix("smtpd", "warning: hostname x does not resolve") is IGNORED


def test_what_postfix_says_while_it_starts_and_stops_is_ignored() -> None:
    for daemon, message in (("postfix-script", "waiting for the Postfix mail system to terminate"),
                            ("postfix-script", "fatal: the Postfix mail system is not running"),
                            ("master", "reload -- version 3.7.11, configuration /etc/postfix")):
        assert parse_postfix(daemon, message) is IGNORED, message
    assert parse_postfix("smtpd", "waiting for the Postfix mail system to terminate") is None


def test_delivery_with_next_hop_queue_id() -> None:
    fact = parse_postfix("smtp", "7EE668039: to=<admin@example.com>, orig_to=<a@example.com>, "
                                 "relay=127.0.0.1[127.0.0.1]:2525, delay=3.6, "
                                 "delays=0.2/0.02/0.04/3.3, dsn=2.0.0, status=sent "
                                 "(250 2.0.0 Ok: queued as 153053D)")
    assert isinstance(fact, Delivery)
    assert (fact.recipient, fact.orig_recipient, fact.status, fact.queued_as, fact.delay_s) == (
        "admin@example.com", "a@example.com", "sent", "153053D", 3.6)


def test_a_damaged_number_makes_a_line_not_understood_not_a_crash() -> None:
    # found by atheris: "delay=0.3." matched [\d.]+ and float() raised
    fact = parse_postfix("smtp", "7EE668039: to=<a@example.com>, relay=none, delay=0.3., "
                                 "delays=0.2/0/0/0.1, dsn=2.0.0, status=sent (250 ok)")
    assert not isinstance(fact, Delivery)
    rspamd = "rspamd_task_write_log: id: <m@x>, qid: <Q1>, (default: T (reject): [1.2.3/15.00]"
    assert parse_verdict("rspamd", rspamd) is None


def test_noqueue_reject() -> None:
    fact = parse_postfix("smtpd", "NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 "
                                  "<x@y.org>: Relay access denied; from=<a@b.org> to=<x@y.org> "
                                  "proto=ESMTP helo=<h>")
    assert fact == Refused(None, "reject", "RCPT", "unknown", "192.0.2.1",
                           "554 5.7.1 <x@y.org>: Relay access denied", "a@b.org", "x@y.org",
                           "554 5.7.1 Relay access denied")


def test_a_recipient_that_spells_a_trailer_frames_nobody() -> None:
    hostile = '"x; from=<victim@isp.example> to=<y@remote.example>"@isp.example'
    fact = parse_postfix("smtpd", f"NOQUEUE: reject: RCPT from c[10.0.0.9]: 550 5.1.1 <{hostile}>: "
                                  f"Recipient address rejected: User unknown; from=<att@x.example> "
                                  f"to=<{hostile}> proto=ESMTP helo=<h>")
    assert isinstance(fact, Refused)
    assert (fact.sender, fact.recipient, fact.client_ip) == ("att@x.example", hostile, "10.0.0.9")
    assert fact.reply == "550 5.1.1 Recipient address rejected: User unknown"
    # Spelling a whole trailer makes two readings: the line then names nobody.
    worse = '"x; from=<victim@isp.example> to=<y@r.example> proto=ESMTP helo=<h"@isp.example'
    fact = parse_postfix("smtpd", f"NOQUEUE: reject: RCPT from c[10.0.0.9]: 550 5.1.1 <{worse}>: "
                                  f"Recipient address rejected: User unknown; from=<att@x.example> "
                                  f"to=<{worse}> proto=ESMTP helo=<h>")
    assert isinstance(fact, Refused)
    assert (fact.sender, fact.recipient, fact.reply, fact.client_ip) == (None, None, None,
                                                                         "10.0.0.9")


def test_quoted_senders_with_commas_and_brackets_are_queued_records() -> None:
    sender = '"a>, size=1, nrcpt=99 b"@x.example'
    assert parse_postfix("qmgr", f"4ABC12: from=<{sender}>, size=502, nrcpt=5 (queue active)") == \
        Queued("4ABC12", sender, 502, 5)


def test_a_sender_or_client_name_with_proxy_in_it_is_not_a_proxy_line() -> None:
    fact = parse_postfix("smtpd", "NOQUEUE: reject: RCPT from proxy-1.example[192.0.2.1]: 554 5.7.1 "
                                  "<x@y.org>: Relay access denied; from=<proxy-reject@b.org> "
                                  "to=<x@y.org> proto=ESMTP helo=<proxy-accept>")
    assert isinstance(fact, Refused) and fact.action == "reject" and fact.sender == "proxy-reject@b.org"
    fact = parse_postfix("smtpd", "4ABC12: proxy-reject: END-OF-MESSAGE: 554 5.7.1 Spam message "
                                  "rejected; from=<a@b.org> to=<x@y.org> proto=ESMTP helo=<h>")
    assert isinstance(fact, Refused) and fact.action == "proxy-reject" and fact.qid == "4ABC12"
    assert fact.reply == "554 5.7.1 Spam message rejected"


def test_header_checks_text_cannot_name_the_sender() -> None:
    fact = parse_postfix("cleanup", "4ABC12: reject: header Subject: hi from c[10.0.0.9]; "
                                    "from=<att@x.example> to=<z@r.example> proto=ESMTP helo=<h>: "
                                    "5.7.1 no thanks")
    assert isinstance(fact, Refused)
    assert (fact.sender, fact.recipient, fact.reply) == ("att@x.example", "z@r.example",
                                                         "5.7.1 no thanks")
    fact = parse_postfix("cleanup", "4ABC12: reject: header Subject: hi; from=<victim@isp.example> "
                                    "to=<y@r.example>: spam from c[10.0.0.9]; from=<att@x.example> "
                                    "to=<z@r.example> proto=ESMTP helo=<h>: 5.7.1 no thanks")
    assert isinstance(fact, Refused)  # two readings: nobody named, no reply to judge
    assert (fact.sender, fact.recipient, fact.reply) == (None, None, None)


@needs_corpora
def test_whyscream_corpus() -> None:
    cases = sorted(WHYSCREAM.glob("*.yaml"))
    assert len(cases) > 150
    understood = not_understood = checked = 0
    for path in cases:
        daemon = path.name.rsplit("_", 1)[0]
        case = yaml.safe_load(path.read_text())
        expected = case.get("results") or {}
        fact = parse_postfix(daemon, str(case["data"]))  # must never raise
        if daemon not in COUNTED:
            continue
        if fact is None:
            not_understood += 1
            continue
        understood += 1
        checked += _agrees(path, fact, expected)
    share = not_understood / (understood + not_understood)
    print(f"whyscream: {understood} understood, {not_understood} not understood "
          f"({share:.1%}), {checked} compared field by field")
    assert checked >= 40
    assert share < 0.05


def _agrees(path: Path, fact: object, expected: dict[str, object]) -> int:
    """Compare the fields both sides have; 1 when a fact was compared."""
    if fact is IGNORED:
        return 0
    qid = expected.get("postfix_queueid")
    if qid not in (None, "NOQUEUE"):
        assert getattr(fact, "qid", None) == str(qid), path.name
    if isinstance(fact, ClientSeen | Refused) and "postfix_client_ip" in expected:
        assert getattr(fact, "client_ip", None) == str(expected["postfix_client_ip"]), path.name
    if isinstance(fact, Delivery) and "postfix_status" in expected:
        assert fact.status == expected["postfix_status"], path.name
    if isinstance(fact, Refused) and "postfix_action" in expected:
        assert fact.action == expected["postfix_action"], path.name
    if isinstance(fact, Queued) and "postfix_size" in expected:
        assert fact.size == int(str(expected["postfix_size"])), path.name
    return 1
