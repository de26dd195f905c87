"""Hostile SMTP sessions through a real Postfix, read back from its log: who is counted, as
what, and that no victim and no ISP domain is ever framed.

An authenticated customer (mallory) writes into every field it controls: quoted
recipients and senders that spell log syntax, a Subject refused by header_checks
that names a victim, MAIL FROM:<> and double-bounce, an exempt address, an
address over 512 characters, a reused Message-ID, a HELO that spells a trailer,
an SMTPUTF8 address, BDAT and pipelined commands. The log goes through the reader
(``LogReader.for_config``) and the threshold engine, as ``floodgate replay`` would.
With rspamd as Postfix's milter: a spam refusal counts as spam by rspamd's verdict
line whatever the reply says, and a Message-ID that spells another verdict changes
nothing.
"""

from __future__ import annotations

import shutil
import smtplib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.kafka.embedded_broker import free_port
from connectors.postfix_log.reader import LogReader, open_log_lines
from connectors.postfix_log.syslog_formats import SyslogParser
from pipeline.engine.evaluator import ThresholdEngine
from pipeline.replay import replay
from schemas.config import FloodgateConfig
from schemas.events import DeliveryEvent, MailEvent
from schemas.vocabulary import SubjectType
from tests.fixtures.postfix_instance import PostfixInstance, needs_postfix
from tests.fixtures.rspamd_instance import REJECT_MESSAGE, RspamdInstance, needs_rspamd
from tests.fixtures.smtp_sink import SmtpSink

pytestmark = needs_postfix
VICTIM = "victim@example.net"
FRAMING_RCPT = f'"x; from=<{VICTIM}> to=<y@remote.example>"@example.net'
FRAMING_SUBJECT = f"forbidden; from=<{VICTIM}> to=<y@remote.example>: spam"
HOSTILE_HELO = f"x> proto=ESMTP helo=<h; from=<{VICTIM}>"
LONG_SENDER = "a" * 600 + "@example.net"
EXTRA_MAIN_CF = """\
header_checks = regexp:{dir}/header_checks
smtpd_recipient_restrictions = check_recipient_access regexp:{dir}/recipient_access
line_length_limit = 4096
"""
CONFIG = FloodgateConfig.model_validate({
    "networks": {"internal": ["127.0.0.0/8"], "local_domains": ["example.net"]},
    "exempt": {"senders": ["alerts@example.net"]},
    "thresholds": [
        {"name": f"any_{key}", "key": key, "window": "1h", "messages": 1, "action": "warn",
         "duration": "1m"} for key in ("sasl_username", "sender", "sender_domain", "client_ip")]
    + [{"name": f"unknown_{key}", "key": key, "window": "1h", "count": "recipients",
        "direction": "any",
        "messages": 1, "flagged": "unknown_recipient", "flagged_units": 1, "action": "warn",
        "duration": "1m"} for key in ("sasl_username", "sender")]})


class Session:
    """One authenticated submission session, command by command."""

    def __init__(self, port: int, helo: str = "mallory-pc.example") -> None:
        self.smtp = smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=30)
        self.smtp.ehlo()
        self.smtp.login("mallory@example.net", "mallory-secret")

    def send(self, sender: str, recipients: list[str], body: str, utf8: bool = False,
             mid: str | None = None) -> int:
        """MAIL, RCPT..., DATA; the final reply code (or the refusing one)."""
        code = self.command(f"MAIL FROM:<{sender}>" + (" SMTPUTF8" if utf8 else ""))
        assert code == 250, (sender, code)
        accepted = [r for r in recipients if self.command(f"RCPT TO:<{r}>") == 250]
        if not accepted:
            self.smtp.rset()
            return 550
        message = (f"From: <{sender}>\r\nTo: <{accepted[0]}>\r\n"
                   f"Message-ID: <{mid or f'{time.monotonic_ns()}@mallory-pc.example'}>\r\n"
                   f"{body}\r\n\r\nhello\r\n")
        return self.smtp.data(message.encode("utf-8"))[0]

    def command(self, line: str) -> int:
        """A command sent as UTF-8 (smtplib's docmd takes ASCII only)."""
        self.smtp.send(f"{line}\r\n".encode())
        return self.smtp.getreply()[0]

    def bdat(self, sender: str, recipient: str) -> int:
        self.smtp.docmd(f"MAIL FROM:<{sender}>")
        self.smtp.docmd(f"RCPT TO:<{recipient}>")
        data = b"Subject: chunked\r\nMessage-ID: <bdat@mallory-pc.example>\r\n\r\nhello\r\n"
        self.smtp.send(f"BDAT {len(data)} LAST\r\n".encode() + data)
        return self.smtp.getreply()[0]

    def pipelined(self, sender: str, recipient: str) -> int:
        self.smtp.send(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode())
        codes = [self.smtp.getreply()[0] for _ in range(3)]
        assert codes == [250, 250, 354], codes
        self.smtp.send(b"Subject: pipelined\r\n\r\nhello\r\n.\r\n")
        return self.smtp.getreply()[0]

    def close(self) -> None:
        self.smtp.quit()


@contextmanager
def postfix_for_mallory(extra_main_cf: str, files: dict[str, str] | None = None
                        ) -> Iterator[PostfixInstance]:
    """A Postfix where mallory may submit, relaying to a sink that defers ``soft`` and
    refuses ``hard`` recipients; ``files`` are written into its directory first."""
    sink = SmtpSink(free_port())
    sink.start()
    instance = PostfixInstance(free_port(), free_port(), sink.port, extra_main_cf=extra_main_cf)
    instance.add_user("mallory", "example.net", "mallory-secret")
    for name, text in (files or {}).items():
        (instance.dir / name).write_text(text)
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()
        sink.stop()
        shutil.rmtree(instance.dir, ignore_errors=True)


@pytest.fixture
def postfix() -> Iterator[PostfixInstance]:
    with postfix_for_mallory(EXTRA_MAIN_CF, {
            "header_checks": "/^Subject:.*forbidden/ REJECT 5.7.1 content refused\n",
            "recipient_access": "/from=/ REJECT 5.1.1 User unknown\n"
                                "/^nobody@/ REJECT 5.1.1 User unknown\n"}) as instance:
        yield instance


def run_sessions(postfix: PostfixInstance) -> dict[str, int]:
    port, codes = postfix.submission_port, {}
    session = Session(port)
    codes["framing recipient"] = session.send("mallory@example.net", [FRAMING_RCPT], "Subject: a")
    codes["framing subject"] = session.send("mallory@example.net", ["r1@gmail.example"],
                                            f"Subject: {FRAMING_SUBJECT}")
    codes["null sender"] = session.send("", ["r2@gmail.example"], "Subject: b")
    codes["double bounce"] = session.send("double-bounce@elsewhere.example", ["r3@gmail.example"],
                                          "Subject: c")
    codes["quoted"] = session.send('"a, b>c"@example.net', ["r4@gmail.example"], "Subject: d")
    codes["proxy"] = session.send("proxy-reject@example.net", ["r5@gmail.example"], "Subject: e")
    codes["exempt"] = session.send("alerts@example.net", ["r6@gmail.example"], "Subject: f")
    codes["long"] = session.send(LONG_SENDER, ["r7@gmail.example"], "Subject: g")
    for n in (1, 2):
        codes[f"reused id {n}"] = session.send("dup@example.net", [f"r8{n}@gmail.example"],
                                               "Subject: h", mid="dup@mallory-pc.example")
    codes["utf8"] = session.send("ü@bücher.example", ["r9@gmail.example"], "Subject: i",
                                 utf8=True)
    codes["bdat"] = session.bdat("bdat@example.net", "r10@gmail.example")
    codes["pipelined"] = session.pipelined("piped@example.net", "r11@gmail.example")
    # Accepted for one recipient, then refused as unknown twice (the log names the queue id),
    # once for a recipient that spells a trailer naming the victim.
    codes["partly unknown"] = session.send("list@example.net", [
        "r12@gmail.example", "nobody@example.net", FRAMING_RCPT], "Subject: k")
    session.close()
    helo = Session(port, helo=HOSTILE_HELO)
    codes["hostile helo"] = helo.send("mallory@example.net", ["nobody@example.net"], "Subject: j")
    helo.close()
    return codes


def read_log(path: Path) -> tuple[list[MailEvent], LogReader]:
    reader = LogReader.for_config(CONFIG)
    out = [*reader.read(open_log_lines(str(path))), *reader.finish()]
    return [e for e in out if isinstance(e, MailEvent)], reader


def test_hostile_sessions_frame_nobody_and_hide_nothing(postfix: PostfixInstance) -> None:
    codes = run_sessions(postfix)
    refused = {"framing recipient", "framing subject", "hostile helo"}
    assert {k: c for k, c in codes.items() if k in refused} == dict.fromkeys(refused, 550)
    assert all(c == 250 for k, c in codes.items() if k not in refused), codes
    time.sleep(2)  # the last queue lines reach the log
    mails, reader = read_log(postfix.maillog)

    assert reader.tracker.stats.unparsed == 0, list(reader.tracker.stats.unparsed_samples)
    assert reader.tracker.stats.invalid == 0
    engine = ThresholdEngine(CONFIG)
    # The sink does not offer SMTPUTF8: Postfix may bounce the UTF-8 message within the
    # wait. Its bounce is Postfix's mail: no client, no account, counted against nobody.
    bounces = [m for m in mails if m.mta_generated]
    assert all((m.sender, m.sasl_username, m.client_ip) == ("", None, None)
               and not engine.subjects(m) for m in bounces), bounces
    mails = [m for m in mails if not m.mta_generated]
    # Every other message is mallory's, from her address; none is anybody else's.
    assert {(m.sasl_username, m.client_ip) for m in mails if m.accepted} == {
        ("mallory@example.net", "127.0.0.1")}
    assert all(m.client_ip == "127.0.0.1" for m in mails)
    subjects = {(s.type, s.value) for m in mails for s in engine.subjects(m)}
    assert (SubjectType.SENDER, VICTIM) not in subjects
    fired = {(a.subject_type, a.subject) for a in replay(CONFIG, mails)}
    assert (SubjectType.SENDER, VICTIM) not in fired
    assert (SubjectType.SASL_USERNAME, "mallory@example.net") in fired
    assert not any(m.spam for m in mails)  # no spam filter said so

    accepted = {m.sender: m for m in mails if m.accepted}
    # The null sender and double-bounce from a client are the client's mail.
    assert {"", "double-bounce@elsewhere.example"} <= set(accepted)
    assert all(engine.subjects(accepted[s]) for s in ("", "double-bounce@elsewhere.example"))
    # Quoted, proxy- and over-long senders are read, cut and flagged when too long.
    assert {'"a, b>c"@example.net', "proxy-reject@example.net"} <= set(accepted)
    [long] = [m for m in mails if m.truncated]
    assert long.sender == LONG_SENDER[:512] and long.sender_domain == "example.net"
    # An exempt sender keeps its sender subjects out, never the account.
    exempt = {s.type for s in engine.subjects(accepted["alerts@example.net"])}
    assert SubjectType.SASL_USERNAME in exempt and SubjectType.SENDER not in exempt
    # A reused Message-ID is two messages; SMTPUTF8, BDAT and pipelining are counted.
    assert len([m for m in mails if m.sender == "dup@example.net"]) == 2
    assert accepted["ü@bücher.example"].sender_domain == "xn--bcher-kva.example"
    assert {"bdat@example.net", "piped@example.net"} <= set(accepted)
    # The RCPT refusals name mallory's sender (the echoed reply is unquoted, the trailer
    # quoted: one reading); the header check's line reads two ways (the Subject spells a
    # trailer), so it names no sender, and the session's account and address stand.
    refusals = sorted((m.sender or "", m.sasl_username or "") for m in mails if not m.accepted)
    assert refusals == [("", "mallory@example.net"), ("list@example.net", "mallory@example.net"),
                        ("list@example.net", "mallory@example.net"),
                        ("mallory@example.net", ""), ("mallory@example.net", "")]
    # Refused as unknown (5.1.1): counted for the unknown-recipient thresholds only, under the
    # session's account once Postfix names the queue id, never under the victim.
    unknown = {(a.threshold, a.subject) for a in replay(CONFIG, mails)
               if a.threshold and a.threshold.startswith("unknown_")}
    assert unknown == {("unknown_sasl_username", "mallory@example.net"),
                       ("unknown_sender", "mallory@example.net"),
                       ("unknown_sender", "list@example.net")}


GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


@pytest.fixture
def filtered() -> Iterator[tuple[PostfixInstance, RspamdInstance]]:
    """Postfix with rspamd as its milter."""
    rspamd = RspamdInstance()
    sink = SmtpSink(free_port())
    sink.start()
    instance = PostfixInstance(free_port(), free_port(), sink.port, extra_main_cf=(
        f"smtpd_milters = inet:127.0.0.1:{rspamd.milter_port}\nmilter_default_action = accept\n"))
    instance.add_user("mallory", "example.net", "mallory-secret")
    try:
        rspamd.start()
        instance.start()
        yield instance, rspamd
    finally:
        instance.stop()
        sink.stop()
        rspamd.stop()
        shutil.rmtree(instance.dir, ignore_errors=True)


def merged(postfix_log: Path, rspamd_log: Path) -> list[str]:
    """The two files as one syslog stream would carry them: by time, and within a second
    a message's smtpd and cleanup lines, then the milter's verdict, then the queue's lines."""
    parser = SyslogParser(UTC, datetime.now(UTC))

    def key(line: str) -> tuple[datetime, int]:
        record = parser.parse(line)
        assert record is not None, line
        rank = 1 if "rspamd" in record.tag else 0 if record.daemon in ("smtpd", "cleanup") else 2
        return record.ts, rank

    lines = [*open_log_lines(str(postfix_log)),
             *(x for x in open_log_lines(str(rspamd_log)) if "rspamd_task_write_log" in x)]
    return sorted((x for x in lines if x.strip()), key=key)


@needs_rspamd
def test_rspamd_s_verdict_decides_spam_whatever_the_reply_or_the_client_writes(
        filtered: tuple[PostfixInstance, RspamdInstance]) -> None:
    postfix, rspamd = filtered
    session = Session(postfix.submission_port)
    # GTUBE: rspamd's stock reply ("Gtube pattern") and its verdict line agree.
    assert session.send("mallory@example.net", ["r1@gmail.example"], f"Subject: a\r\n\r\n{GTUBE}",
                        mid="gtube@mallory-pc.example") == 554
    # A spam refusal whose reply text is the operator's own: the verdict line decides.
    assert session.send("mallory@example.net", ["r4@gmail.example"], "Subject: cheap pills",
                        mid="pills@mallory-pc.example") == 554
    # A Message-ID that spells a clean verdict and another queue id: still mallory's spam.
    forged = ("x>, qid: <ABCDEF1234>, ip: 127.0.0.1, from: <mallory@example.net>, (default: F "
              "(no action): [0.00/15.00] []), len: 1, time: 1ms, dns req: 0, digest: <d")
    assert session.send("mallory@example.net", ["r2@gmail.example"], f"Subject: b\r\n\r\n{GTUBE}",
                        mid=forged) == 554
    assert session.send("mallory@example.net", ["r3@gmail.example"], "Subject: hello",
                        mid="clean@mallory-pc.example") == 250
    session.close()
    time.sleep(2)
    reader = LogReader.for_config(CONFIG, UTC)
    out = [*reader.read(merged(postfix.maillog, rspamd.log)), *reader.finish()]
    mails = {m.message_id: m for m in out if isinstance(m, MailEvent)}
    assert reader.tracker.stats.verdicts >= 4, rspamd.log.read_text()[-3000:]
    assert REJECT_MESSAGE in (mails["pills@mallory-pc.example"].reject_reason or "")
    assert [(m.accepted, m.spam, m.sasl_username) for m in (
        mails["gtube@mallory-pc.example"], mails["pills@mallory-pc.example"], mails[forged],
        mails["clean@mallory-pc.example"])] == [
        (False, True, "mallory@example.net"), (False, True, "mallory@example.net"),
        (False, True, "mallory@example.net"), (True, False, "mallory@example.net")]


SPELLING_MAIN_CF = """\
smtpd_recipient_restrictions = reject_non_fqdn_recipient
enable_long_queue_ids = yes
"""
SPELLED_STATUS = ['"hard x>, relay=none, delay=0, dsn=2.0.0, status=sent"@remote.example',
                  '"hard y>, orig_to=<a@b.example>, relay=x, conn_use=1, delay=0, delays=0/0/0/0, '
                  'dsn=2.0.0, status=expired"@remote.example']
SPAM_CONFIG = FloodgateConfig.model_validate({
    "networks": {"internal": ["127.0.0.0/8"], "local_domains": ["example.net"]},
    "thresholds": [{"name": f"spam_{key}", "key": key, "window": "1h", "messages": 3,
                    "spams": 3, "action": "block", "duration": "1h"}
                   for key in ("sasl_username", "sender", "sender_domain", "client_ip")]})


@pytest.fixture
def spelling_postfix() -> Iterator[PostfixInstance]:
    """Postfix with long queue ids, refusing non-FQDN recipients."""
    with postfix_for_mallory(SPELLING_MAIN_CF) as instance:
        yield instance


def queue_id(reply: bytes) -> str:
    return reply.decode().rsplit("queued as ", 1)[1].strip()


def wait_for_lines(path: Path, needles: list[str], deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if all(needle in text for needle in needles):
            return
        time.sleep(0.3)
    raise AssertionError(f"not logged: {needles}")


def test_recipients_that_spell_log_syntax_change_no_count(
        spelling_postfix: PostfixInstance) -> None:
    postfix = spelling_postfix
    session = Session(postfix.submission_port)
    smtp = session.smtp
    # An earlier message of mallory's, deferred by the sink: open in the log for a while.
    smtp.mail("mallory@example.net")
    smtp.rcpt("soft1@remote.example")
    code, reply = smtp.data(b"Subject: earlier\r\n\r\nhello\r\n")
    assert code == 250
    earlier = queue_id(reply)
    # A carrier whose recipient spells a hand-off of that message to a content filter.
    carrier = (f'"x>, relay=filter[127.0.0.1]:10024, delay=0, dsn=2.0.0, status=sent (250 2.0.0 '
               f'Ok: queued as {earlier})"@remote.example')
    assert session.send("mallory@example.net", [carrier], "Subject: carrier") == 250
    # Recipients that spell a delivery status: the sink refuses them, Postfix bounces.
    bounced = [session.send("mallory@example.net", [rcpt], "Subject: s") for rcpt in SPELLED_STATUS]
    assert bounced == [250, 250]
    # Twelve refusals whose recipients read like a spam filter's reply.
    refused = [session.send("mallory@example.net", [f'"Spam message rejected {n}"@remote'],
                            "Subject: r") for n in range(12)]
    assert refused == [550] * 12  # smtplib's send says 550 for "no recipient accepted"
    session.close()
    wait_for_lines(postfix.maillog, ["status=bounced", "status=deferred",
                                     "Spam message rejected 11"])
    time.sleep(1)  # the bounce notices' own lines
    reader = LogReader.for_config(SPAM_CONFIG)
    out = [*reader.read(open_log_lines(str(postfix.maillog))), *reader.finish()]
    assert reader.tracker.stats.unparsed == 0, list(reader.tracker.stats.unparsed_samples)
    deliveries = {d.recipient: d.status for d in out if isinstance(d, DeliveryEvent)}
    assert [deliveries[r] for r in SPELLED_STATUS] == ["bounced", "bounced"]
    assert deliveries[carrier] == "sent"
    mails = [m for m in out if isinstance(m, MailEvent) and not m.mta_generated]
    # The earlier message is still mallory's, counted: the carrier hid nothing.
    [earlier_mail] = [m for m in mails if m.queue_id == earlier]
    assert (earlier_mail.accepted, earlier_mail.sasl_username) == (True, "mallory@example.net")
    assert len([m for m in mails if m.accepted]) == 4
    # The twelve refusals: refused, no spam, nobody framed.
    refusals = [m for m in mails if not m.accepted]
    assert len(refusals) == 12 and not any(m.spam for m in refusals)
    assert replay(SPAM_CONFIG, mails) == []
