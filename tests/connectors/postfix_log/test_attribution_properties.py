"""Property: whatever a client writes into the fields it controls (envelope sender and
recipient local parts, logged quoted as Postfix does; HELO name and Message-ID, logged
as sent), the reader attributes its message to the account and
address the session established, keeps the spam filter's verdict, leaves a second
customer's message alone, and never raises."""

from __future__ import annotations

import string
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.postfix_log.reader import LogReader
from schemas.config import FloodgateConfig, Networks
from schemas.events import DeliveryEvent, MailEvent

# Pieces of the lines the reader reads, which a hostile value would spell.
FRAGMENTS = ["from=<", "> to=<", "> proto=ESMTP helo=<", "; from=<victim@isp.example>", ">, ",
             ", qid: <BBB222>, ", "qid: <AAA111>", "(default: T (reject): [99.00/15.00] [X])",
             "(default: F (no action): [0.00/15.00] [])", ", size=1, nrcpt=9 (queue active)",
             "proxy-reject: ", "Spam message rejected", "Gtube pattern", "user: bob, ",
             "ip: 10.0.0.6, ", '"', "\\", ">: ", ": ", "id: <", "victim@isp.example", "<", ">",
             "Queue-ID: BBB222", "Passed SPAM", "status=sent (250 ok)", ", relay="]
PRINTABLE = "".join(c for c in string.printable if c not in "\t\n\r\x0b\x0c")
HOSTILE = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(PRINTABLE, max_size=6)),
                   max_size=8).map("".join)


def logged(local: str) -> str:
    """An address with ``local`` as its local part, as Postfix logs it (quoted when needed)."""
    if local and not any(c in SPECIALS for c in local):
        return f"{local}@isp.example"
    return '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"@isp.example'


SPECIALS = set('()<>@,;:\\".[] ')


def line(second: int, text: str, tag: str) -> str:
    return f"Nov 27 10:00:{second:02d} mx1 {tag}[7]: {text}"


def message(qid: str, user: str, ip: str, sender: str, rcpt: str, helo: str, mid: str,
            spam: bool, refused: bool) -> list[str]:
    flag, verdict = ("T", "add header") if spam else ("F", "no action")
    lines = [
        line(0, f"{qid}: client=c[{ip}], sasl_method=PLAIN, sasl_username={user}",
             "postfix/submission/smtpd"),
        line(0, f"{qid}: message-id=<{mid}>", "postfix/cleanup"),
        line(1, f"<t{qid}>; task; rspamd_task_write_log: id: <{mid}>, qid: <{qid}>, ip: {ip}, "
                f"user: {user}, from: <{sender}>, ({'default'}: {flag} ({verdict}): "
                f"[{9 if spam else 0}.00/15.00] [SYM]), len: 900, time: 5ms, dns req: 0, "
                f"digest: <d>, rcpts: <{rcpt}>, mime_rcpts: <{rcpt}>", "rspamd"),
    ]
    if refused:
        return [*lines, line(1, f"{qid}: milter-reject: END-OF-MESSAGE from c[{ip}]: 5.7.1 "
                                f"Refused by local policy; from=<{sender}> to=<{rcpt}> "
                                f"proto=ESMTP helo=<{helo}>", "postfix/cleanup")]
    return [*lines,
            line(1, f"{qid}: from=<{sender}>, size=900, nrcpt=1 (queue active)", "postfix/qmgr"),
            line(2, f"{qid}: to=<{rcpt}>, relay=mx[192.0.2.1]:25, delay=1, dsn=2.0.0, "
                    "status=sent (250 ok)", "postfix/smtp"),
            line(2, f"{qid}: removed", "postfix/qmgr")]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sender=HOSTILE, rcpt=HOSTILE, helo=HOSTILE, mid=HOSTILE.filter(bool),
       spam=st.booleans(), refused=st.booleans(), interleave=st.booleans())
def test_client_text_never_moves_the_account_the_address_or_the_verdict(
        sender: str, rcpt: str, helo: str, mid: str, spam: bool, refused: bool,
        interleave: bool) -> None:
    mallory = message("AAA111", "mallory", "10.0.0.66", logged(sender), logged(rcpt), helo, mid,
                      spam, refused)
    bob = message("BBB222", "bob", "10.0.0.6", "bob@isp.example", "r@far.example", "bob-pc",
                  "b@isp.example", False, False)
    lines = [x for pair in zip(mallory, bob, strict=False) for x in pair] if interleave \
        else [*bob[:3], *mallory, *bob[3:]]
    lines += mallory[len(bob):] if interleave else []
    reader = LogReader.for_config(FloodgateConfig(networks=Networks(internal=["10.0.0.0/8"])),
                                  UTC, datetime(2026, 11, 27, tzinfo=UTC))
    mails = [e for e in [*reader.read(lines), *reader.finish()] if isinstance(e, MailEvent)]
    by_qid = {m.queue_id: m for m in mails}
    assert set(by_qid) == {"AAA111", "BBB222"} and len(mails) == 2
    hers = by_qid["AAA111"]
    assert (hers.sasl_username, hers.client_ip, hers.accepted) == ("mallory", "10.0.0.66",
                                                                   not refused)
    assert hers.spam is spam
    his = by_qid["BBB222"]
    assert (his.sasl_username, his.client_ip, his.sender, his.spam) == (
        "bob", "10.0.0.6", "bob@isp.example", False)


# Every delimiter and field name of a delivery line, and a queue id that names another message.
DELIVERY_FRAGMENTS = ["to=<", "orig_to=<", ", relay=", "filter[127.0.0.1]:10024", ", delay=0",
                      ", delays=0/0/0/0", ", dsn=2.0.0", ", status=sent", ", status=expired",
                      " (250 2.0.0 Ok: queued as BBB222)", "queued as BBB222", ">", "<", ",",
                      "=", "(", ")", '"', "\\", " ", ";", ":", "@"]
DELIVERY_HOSTILE = st.lists(st.one_of(st.sampled_from(DELIVERY_FRAGMENTS),
                                      st.text(PRINTABLE, max_size=4)), max_size=10).map("".join)


def deliveries_of(local: str, daemon: str) -> tuple[list[tuple[str, str, str, str]],
                                                     list[tuple[str | None, str | None]]]:
    """Mallory's bounced message to ``local``@isp.example and bob's message still open when it
    bounces: the delivery outcomes (queue id, status, relay, dsn) and the MailEvents."""
    rcpt = logged(local)
    bob = message("BBB222", "bob", "10.0.0.6", "bob@isp.example", "r@far.example", "bob-pc",
                  "b@isp.example", False, False)
    lines = [*bob[:2], *message("AAA111", "mallory", "10.0.0.66", "m@isp.example", rcpt, "pc",
                                "m@x", False, False)[:2],
             line(1, "AAA111: from=<m@isp.example>, size=900, nrcpt=1 (queue active)",
                  "postfix/qmgr"),
             line(2, f"AAA111: to=<{rcpt}>, orig_to=<{rcpt}>, relay=mx.far.example[192.0.2.7]:25, "
                     "delay=1, delays=0.1/0/0.4/0.5, dsn=5.1.1, status=bounced (host mx.far.example"
                     f"[192.0.2.7] said: 550 5.1.1 <{rcpt}>: unknown)", f"postfix/{daemon}"),
             *bob[3:]]
    reader = LogReader.for_config(FloodgateConfig(networks=Networks(internal=["10.0.0.0/8"])),
                                  UTC, datetime(2026, 11, 27, tzinfo=UTC))
    out = [*reader.read(lines), *reader.finish()]
    outcomes = [(d.queue_id, d.status, d.relay or "", d.dsn or "") for d in out
                if isinstance(d, DeliveryEvent)]
    mails = sorted((m.queue_id, m.sasl_username) for m in out if isinstance(m, MailEvent))
    return outcomes, mails


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(local=DELIVERY_HOSTILE, daemon=st.sampled_from(["smtp", "lmtp", "local", "virtual"]))
def test_a_recipient_moves_no_status_relay_or_linkage(local: str, daemon: str) -> None:
    assert deliveries_of(local, daemon) == deliveries_of("plain", daemon)
