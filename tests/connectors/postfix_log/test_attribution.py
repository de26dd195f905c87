"""What a customer can and cannot do to the counts through the strings it controls.

Each case is a log a hostile customer can make Postfix write; the log goes
through the reader and the threshold engine, and the test says who is counted,
as what. The same attacks through a real Postfix are in
``tests/end_to_end/test_hostile_sessions.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.postfix_log.reader import LogReader
from connectors.postfix_log.tracker import Output
from pipeline.engine.enforcement import ActiveActions
from pipeline.engine.policy_decision import PolicyResponder
from pipeline.replay import replay
from schemas.config import Exempt, FloodgateConfig, Networks, PolicySettings
from schemas.events import DeliveryEvent, MailEvent
from tests.fixtures.policy_requests import NOW, action

NETWORKS = Networks(internal=["10.0.0.0/8"], local_domains=["isp.example"])
SPAM_DOMAIN = {"name": "spam_domain", "key": "sender_domain", "window": "30s", "messages": 3,
               "spams": 3, "action": "block", "duration": "1h"}


def read(lines: list[str], config: FloodgateConfig | None = None) -> tuple[list[MailEvent],
                                                                             LogReader]:
    reader = LogReader.for_config(config or FloodgateConfig(networks=NETWORKS), UTC,
                                  datetime(2026, 11, 27, tzinfo=UTC))
    out: list[Output] = [*reader.read(lines), *reader.finish()]
    return [o for o in out if isinstance(o, MailEvent)], reader


def line(second: int, text: str, tag: str = "postfix/submission/smtpd") -> str:
    return f"Nov 27 10:00:{second:02d} mx1 {tag}[7]: {text}"


def session(qid: str, second: int, sender: str, *, user: str = "mallory", ip: str = "10.0.0.66",
            mid: str = "m@x", rcpt: str = "r@far.example") -> list[str]:
    """An authenticated client's message, queued and delivered."""
    return [
        line(second, f"{qid}: client=c[{ip}], sasl_method=PLAIN, sasl_username={user}"),
        line(second, f"{qid}: message-id=<{mid}>", "postfix/cleanup"),
        line(second, f"{qid}: from=<{sender}>, size=900, nrcpt=1 (queue active)", "postfix/qmgr"),
        line(second + 1, f"{qid}: to=<{rcpt}>, relay=mx[192.0.2.1]:25, delay=1, dsn=2.0.0, "
                         "status=sent (250 ok)", "postfix/smtp"),
        line(second + 1, f"{qid}: removed", "postfix/qmgr"),
    ]


def own_reply(kind: str, subject_type: str, subject: str,
              replies: dict[str, str] | None = None) -> str:
    """The text the policy service answers for an action in force, as Postfix logs it."""
    view = ActiveActions()
    view.apply(action(kind, subject_type, subject))
    wire = PolicyResponder(PolicySettings(), Exempt(), view, replies=replies).answer(
        {"sender": subject, "sasl_username": "", "client_address": "10.0.0.5"}, NOW).wire
    keyword, text = wire.decode().removeprefix("action=").strip().split(" ", 1)
    code = "554 5.7.1" if keyword == "REJECT" else "450 4.7.1"
    return f"{code} <r@far.example>: Recipient address rejected: {text}"


def test_floodgate_s_own_refusals_of_a_retrying_account_never_count_as_spam() -> None:
    # The default block text says "too much mail or spam": the old reader counted each retry
    # as a spam refusal, and a spams threshold on the domain then blocked every customer.
    lines = [line(n, f"NOQUEUE: reject: RCPT from c[10.0.0.5]: "
                     f"{own_reply(kind, 'sender', 'alice@isp.example')}; from=<alice@isp.example> "
                     "to=<r@far.example> proto=ESMTP helo=<h>")
             for n in range(10) for kind in ("block", "defer")]
    config = FloodgateConfig(networks=NETWORKS, thresholds=[SPAM_DOMAIN],
                             log_reading={"spam_replies": [r"\bspam\b"]})  # even so
    mails, reader = read(lines, config)
    assert len(mails) == 20 and all(not m.accepted and m.spam is False for m in mails)
    assert reader.tracker.stats.own_refusals == 20
    assert replay(config, mails) == []


def test_a_threshold_s_own_reply_text_is_still_known_as_floodgate_s() -> None:
    # The operator's text for the "burst" threshold says "spam" and carries a 4xx code that
    # the policy service turns into 5xx when the ladder blocks: retries are still its own.
    text = "4.7.1 {subject} is sending spam-like volumes; call 0800 123 (ref {action_id})"
    replies = {"burst": text}
    lines = [line(n, f"NOQUEUE: reject: RCPT from c[10.0.0.5]: "
                     f"{own_reply(kind, 'sender', 'alice@isp.example', replies)}; "
                     "from=<alice@isp.example> to=<r@far.example> proto=ESMTP helo=<h>")
             for n in range(5) for kind in ("block", "defer")]
    assert "5.7.1 alice@isp.example is sending spam-like volumes" in lines[0]
    assert "4.7.1 alice@isp.example is sending spam-like volumes" in lines[1]
    config = FloodgateConfig(networks=NETWORKS, log_reading={"spam_replies": [r"\bspam\b"]},
                             thresholds=[SPAM_DOMAIN, {**SPAM_DOMAIN, "name": "burst",
                                                       "key": "sender", "reply": text}])
    mails, reader = read(lines, config)
    assert len(mails) == 10 and all(not m.accepted and m.spam is False for m in mails)
    assert reader.tracker.stats.own_refusals == 10
    # without the threshold's text in the config, the same lines read as a spam filter's
    misread, plain = read(lines, FloodgateConfig(networks=NETWORKS, thresholds=[SPAM_DOMAIN],
                                                 log_reading={"spam_replies": [r"\bspam\b"]}))
    assert plain.tracker.stats.own_refusals == 0 and all(m.spam is True for m in misread)


def test_a_spam_filter_refusal_counts_by_its_verdict_whatever_its_reply_says() -> None:
    lines = [
        line(0, "AAA111: client=c[10.0.0.66], sasl_method=PLAIN, sasl_username=mallory"),
        line(0, "AAA111: message-id=<m1@x>", "postfix/cleanup"),
        line(1, "AAA111: milter-reject: END-OF-MESSAGE from c[10.0.0.66]: 5.7.1 Go away; "
                "from=<mallory@isp.example> to=<r@far.example> proto=ESMTP helo=<h>",
             "postfix/cleanup"),
        # rspamd logs its verdict after Postfix logged the refusal
        line(2, "<ab12>; task; rspamd_task_write_log: id: <m1@x>, qid: <AAA111>, ip: 10.0.0.66, "
                "user: mallory, from: <mallory@isp.example>, (default: T (reject): [16.00/15.00] "
                "[GTUBE(0.00)]), len: 900, time: 5ms, dns req: 0, digest: <d>, "
                "rcpts: <r@far.example>", "rspamd"),
        line(3, "BBB222: client=c[10.0.0.66], sasl_method=PLAIN, sasl_username=mallory"),
        line(3, "BBB222: milter-reject: END-OF-MESSAGE from c[10.0.0.66]: 5.7.1 Gtube pattern; "
                "from=<mallory@isp.example> to=<r@far.example> proto=ESMTP helo=<h>",
             "postfix/cleanup"),
        line(4, "CCC333: client=c[10.0.0.66], sasl_method=PLAIN, sasl_username=mallory"),
        line(4, "CCC333: milter-reject: END-OF-MESSAGE from c[10.0.0.66]: 4.7.1 Try again later; "
                "from=<mallory@isp.example> to=<r@far.example> proto=ESMTP helo=<h>",
             "postfix/cleanup"),
    ]
    mails, _ = read(lines)
    by_qid = {m.queue_id: m for m in mails}
    assert [(by_qid[q].accepted, by_qid[q].spam, by_qid[q].sasl_username)
            for q in ("AAA111", "BBB222", "CCC333")] == [
        (False, True, "mallory"), (False, True, "mallory"), (False, None, "mallory")]


def test_a_recipient_that_names_a_victim_frames_nobody() -> None:
    hostile = '"x; from=<victim@isp.example> to=<y@remote.example>: spam"@isp.example'
    lines = [line(n, f"NOQUEUE: reject: RCPT from c[10.0.0.66]: 550 5.1.1 <{hostile}>: Recipient "
                     f"address rejected: Spam message rejected; from=<mallory@isp.example> "
                     f"to=<{hostile}> proto=ESMTP helo=<h>") for n in range(5)]
    mails, _ = read(lines)
    assert {m.sender for m in mails} == {"mallory@isp.example"}
    assert all(m.client_ip == "10.0.0.66" for m in mails)


def test_mail_from_the_null_sender_or_double_bounce_is_the_client_s_mail() -> None:
    lines = [*session("AAA111", 0, ""), *session("BBB222", 2, "double-bounce@elsewhere.example",
                                                  mid="m2@x")]
    mails, _ = read(lines)
    assert [(m.mta_generated, m.sasl_username, m.client_ip) for m in mails] == [
        (False, "mallory", "10.0.0.66"), (False, "mallory", "10.0.0.66")]
    config = FloodgateConfig(networks=NETWORKS, thresholds=[
        {"name": "burst", "key": "sasl_username", "window": "30s", "messages": 2,
         "action": "defer", "duration": "15m"}])
    assert [a.subject for a in replay(config, mails)] == ["mallory"]


def test_quoted_senders_with_commas_brackets_and_proxy_are_counted() -> None:
    senders = ['"a, b"@isp.example', '"a>b"@isp.example', "proxy-reject@isp.example"]
    lines = [text for n, sender in enumerate(senders)
             for text in session(f"A{n}A{n}A{n}", n * 2, sender, mid=f"m{n}@x")]
    mails, reader = read(lines)
    assert [m.sender for m in mails] == senders
    assert reader.tracker.stats.unparsed == 0


def test_an_exempt_sender_in_mail_from_does_not_exempt_the_account() -> None:
    config = FloodgateConfig(networks=NETWORKS, exempt={"senders": ["alerts@isp.example"]},
                             thresholds=[{"name": "burst", "key": "sasl_username", "window": "30s",
                                          "messages": 3, "action": "defer", "duration": "15m"}])
    lines = [text for n in range(3)
             for text in session(f"A{n}A{n}A{n}", n * 2, "alerts@isp.example", mid=f"m{n}@x")]
    mails, _ = read(lines, config)
    assert [a.subject for a in replay(config, mails)] == ["mallory"]


def test_a_reused_message_id_over_loopback_is_still_a_new_message() -> None:
    # webmail submits over loopback; the same Message-ID twice is two messages
    lines = [*session("AAA111", 0, "a@isp.example", ip="127.0.0.1", mid="same@x"),
             *session("BBB222", 0, "a@isp.example", ip="127.0.0.1", mid="same@x")]
    mails, _ = read(lines)
    assert sorted(m.queue_id or "" for m in mails) == ["AAA111", "BBB222"]


def test_an_over_long_address_is_cut_and_flagged_and_takes_no_other_message_with_it() -> None:
    long_sender = "a" * 600 + "@isp.example"
    lines = [*session("AAA111", 0, long_sender), *session("BBB222", 0, "b@isp.example",
                                                         mid="m2@x", rcpt="r" * 700 + "@x.example")]
    mails, reader = read(lines)
    by_qid = {m.queue_id: m for m in mails}
    assert set(by_qid) == {"AAA111", "BBB222"}
    assert by_qid["AAA111"].truncated and by_qid["AAA111"].sender_domain == "isp.example"
    assert len(by_qid["AAA111"].sender or "") == 512
    assert by_qid["BBB222"].truncated and by_qid["BBB222"].sasl_username == "mallory"
    assert reader.tracker.stats.truncated == 2 and reader.tracker.stats.invalid == 0


def test_a_message_id_that_spells_another_message_s_verdict_start_changes_nothing() -> None:
    # mallory's Message-ID spells the start of alice's rspamd line and a clean verdict
    forged = "a@x>, qid: <AAA111>, ip: 10.0.0.5, from: <alice@isp.example>, (default: T (reject)" \
             ": [30.00/15.00] [X]), len: 1, time: 1, dns req: 0, digest: <d>, rcpts: <x"
    lines = [
        *session("AAA111", 0, "alice@isp.example", user="alice", ip="10.0.0.5", mid="a@x")[:3],
        *session("BBB222", 0, "mallory@isp.example", mid=forged)[:3],
        line(1, f"<ab12>; task; rspamd_task_write_log: id: <{forged}>, qid: <BBB222>, "
                "ip: 10.0.0.66, user: mallory, from: <mallory@isp.example>, (default: T "
                "(add header): [9.00/15.00] [X]), len: 900, time: 5ms", "rspamd"),
        line(1, "<ab13>; task; rspamd_task_write_log: id: <a@x>, qid: <AAA111>, ip: 10.0.0.5, "
                "user: alice, from: <alice@isp.example>, (default: F (no action): [0.00/15.00] "
                "[]), len: 900, time: 5ms", "rspamd"),
    ]
    mails, _ = read(lines)
    by_qid = {m.queue_id: m for m in mails}
    assert (by_qid["AAA111"].spam, by_qid["BBB222"].spam) == (False, True)
    assert (by_qid["AAA111"].spam_score, by_qid["BBB222"].spam_score) == (0.0, 9.0)


def filtered(copy_client_line: str, copy_tag: str = "postfix/smtpd") -> list[str]:
    """Alice's message handed to a content filter, which re-injects a copy as CCC333."""
    return [
        *session("AAA111", 0, "alice@isp.example", user="alice", ip="10.0.0.5", mid="a@x")[:3],
        line(1, "AAA111: to=<r@far.example>, relay=127.0.0.1[127.0.0.1]:10024, delay=1, "
                "dsn=2.0.0, status=sent (250 2.0.0 Ok, id=1234-01, from MTA: accepted)",
             "postfix/smtp"),
        line(1, "AAA111: removed", "postfix/qmgr"),
        line(1, f"CCC333: {copy_client_line}", copy_tag),
        line(1, "CCC333: message-id=<a@x>", "postfix/cleanup"),
        line(1, "CCC333: from=<alice@isp.example>, size=990, nrcpt=1 (queue active)",
             "postfix/qmgr"),
        line(2, "CCC333: to=<r@far.example>, relay=mx[192.0.2.1]:25, delay=1, dsn=2.0.0, "
                "status=sent (250 ok)", "postfix/smtp"),
        line(2, "CCC333: removed", "postfix/qmgr"),
    ]


def test_a_content_filter_s_copy_is_known_by_xforward_or_by_its_service() -> None:
    mails, _ = read(filtered("client=localhost[127.0.0.1], orig_queue_id=AAA111, "
                             "orig_client=c[10.0.0.5]"))
    assert [(m.queue_id, m.sasl_username) for m in mails] == [("AAA111", "alice")]
    service = FloodgateConfig(networks=NETWORKS,
                              log_reading={"reinjection_services": ["postfix/reinject"]})
    plain = "client=localhost[127.0.0.1]"
    mails, _ = read(filtered(plain, "postfix/reinject/smtpd"), service)
    assert [m.queue_id for m in mails] == ["AAA111"]
    # Without evidence, the copy is new mail (a Message-ID alone never makes a copy).
    mails, _ = read(filtered(plain, "postfix/reinject/smtpd"))
    assert sorted(m.queue_id or "" for m in mails) == ["AAA111", "CCC333"]


def deliveries(lines: list[str]) -> list[DeliveryEvent]:
    reader = LogReader.for_config(FloodgateConfig(networks=NETWORKS), UTC,
                                  datetime(2026, 11, 27, tzinfo=UTC))
    out = [*reader.read(lines), *reader.finish()]
    return [o for o in out if isinstance(o, DeliveryEvent)]


SPELLED_STATUS = '"x>, relay=none, delay=0, dsn=2.0.0, status=sent"@remote.example'


def bounced(qid: str, rcpt: str, daemon: str = "smtp") -> str:
    return line(2, f"{qid}: to=<{rcpt}>, relay=mx.remote.example[192.0.2.7]:25, delay=1.2, "
                   "delays=0.1/0/0.5/0.6, dsn=5.1.1, status=bounced (host mx.remote.example"
                   f"[192.0.2.7] said: 550 5.1.1 <{rcpt}>: no such user (in reply to RCPT TO "
                   "command))", f"postfix/{daemon}")


def test_a_recipient_that_spells_a_delivery_status_is_still_the_bounce_it_was() -> None:
    for daemon in ("smtp", "lmtp", "local", "virtual"):
        for rcpt in (SPELLED_STATUS, '"a>, orig_to=<b>, relay=x, delay=0, dsn=2.0.0, '
                                     'status=expired"@remote.example',
                     '"q\\"x>, dsn=2.0.0, status=sent (250 ok)"@remote.example'):
            lines = [*session("AAA111", 0, "mallory@isp.example", rcpt=rcpt)[:3],
                     bounced("AAA111", rcpt, daemon)]
            [delivery] = deliveries(lines)
            assert (delivery.status, delivery.recipient, delivery.dsn) == ("bounced", rcpt, "5.1.1")
            assert delivery.relay == "mx.remote.example[192.0.2.7]:25"


def test_a_recipient_that_spells_a_content_filter_hand_off_hides_no_message() -> None:
    earlier = session("BBB22200001", 0, "mallory@isp.example")[:3]  # open: not yet delivered
    carrier = '"x>, relay=filter[127.0.0.1]:10024, delay=0, dsn=2.0.0, status=sent ' \
              '(250 2.0.0 Ok: queued as BBB22200001)"@remote.example'
    lines = [*earlier, *session("AAA111", 3, "mallory@isp.example", rcpt=carrier)[:3],
             bounced("AAA111", carrier),
             line(5, "BBB22200001: to=<r@far.example>, relay=mx[192.0.2.1]:25, delay=1, "
                     "dsn=2.0.0, status=sent (250 ok)", "postfix/smtp")]
    mails, _ = read(lines)
    assert sorted(m.queue_id or "" for m in mails) == ["AAA111", "BBB22200001"]
    assert all(m.sasl_username == "mallory" for m in mails)


def test_a_real_filter_s_queued_as_cannot_name_a_client_s_earlier_message() -> None:
    # A genuine "queued as" naming an open message that logged in: not a copy, still counted.
    lines = [*session("BBB222", 0, "mallory@isp.example")[:3],
             *session("AAA111", 1, "alice@isp.example", user="alice", ip="10.0.0.5")[:3],
             line(2, "AAA111: to=<r@far.example>, relay=127.0.0.1[127.0.0.1]:10024, delay=1, "
                     "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as BBB222)", "postfix/smtp")]
    mails, _ = read(lines)
    assert sorted(m.queue_id or "" for m in mails) == ["AAA111", "BBB222"]


def test_an_echo_in_either_spelling_turns_no_refusal_into_spam() -> None:
    spam_sender = {"name": "spam_sender", "key": "sender", "window": "30s", "messages": 3,
                   "spams": 3, "action": "block", "duration": "1h"}
    config = FloodgateConfig(networks=NETWORKS, thresholds=[SPAM_DOMAIN, spam_sender])
    lines = []
    for n in range(12):
        local = f"Spam message rejected {n}"
        for reply in (f"<{local}@remote.example>: Recipient address rejected: need fully-"
                      "qualified address", f"<{local.upper()}@REMOTE.EXAMPLE>: Recipient address "
                      "rejected: User unknown", f"Client host rejected: {local}@remote.example"):
            lines.append(line(n % 50, f"NOQUEUE: reject: RCPT from c[10.0.0.66]: 554 5.7.1 "
                                      f"{reply}; from=<mallory@isp.example> "
                                      f'to=<"{local}"@remote.example> proto=ESMTP helo=<pc>',
                              "postfix/submission/smtpd"))
    mails, reader = read(lines, config)
    assert len(mails) == 36 and not any(m.spam for m in mails) and not any(m.accepted for m in mails)
    assert replay(config, mails) == []
    assert reader.tracker.stats.own_refusals == 0
