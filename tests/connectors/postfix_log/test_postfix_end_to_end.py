"""Real Postfix (Debian package) on loopback: send mail, parse its log, check against what was sent.

Covers SASL submission, a trusted network client, several recipient domains,
hard and soft refusals at the next hop (a bounce, a deferral), a relay attempt
refused before queueing, and the thresholds fired on the parsed events.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from connectors.kafka.embedded_broker import free_port
from connectors.postfix_log.reader import LogReader, open_log_lines
from pipeline.replay import replay
from schemas.config import FloodgateConfig, Networks
from schemas.direction import DirectionRules
from schemas.events import DeliveryEvent, MailEvent
from schemas.thresholds import Threshold
from schemas.vocabulary import Direction
from tests.fixtures.postfix_instance import PostfixInstance, needs_postfix
from tests.fixtures.smtp_sink import SmtpSink

pytestmark = needs_postfix
NETWORKS = Networks(internal=["127.0.0.2/32"], local_domains=["example.net"])


@pytest.fixture
def postfix() -> Iterator[tuple[PostfixInstance, SmtpSink]]:
    sink = SmtpSink(free_port())
    sink.start()
    instance = PostfixInstance(free_port(), free_port(), sink.port)
    for user in ("alice", "bob", "dave"):
        instance.add_user(user, "example.net", f"{user}-secret")
    try:
        instance.start()
        yield instance, sink
    finally:
        instance.stop()
        sink.stop()
        shutil.rmtree(instance.dir, ignore_errors=True)


def swaks(port: int, sender: str, recipients: list[str], user: str | None = None,
          password: str | None = None, client: str = "127.0.0.1") -> subprocess.CompletedProcess[str]:
    command = ["swaks", "--server", f"127.0.0.1:{port}", "--local-interface", client,
               "--from", sender, "--to", ",".join(recipients), "--silent", "2", "--timeout", "20"]
    if user:
        command += ["--auth", "PLAIN", "--auth-user", f"{user}@example.net", "--auth-password",
                    password or f"{user}-secret"]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def wait_for(condition: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_parsed_events_match_the_mail_sent(postfix: tuple[PostfixInstance, SmtpSink]) -> None:
    instance, sink = postfix
    sub, smtp = instance.submission_port, instance.smtp_port
    for i in range(5):
        assert swaks(sub, "alice@example.net", [f"r{i}@gmail.example", f"s{i}@outlook.example"],
                     user="alice").returncode == 0
    for i in range(3):
        assert swaks(sub, "bob@example.net", [f"b{i}@gmail.example", f"hard{i}@outlook.example"],
                     user="bob").returncode == 0
    for i in range(2):  # a trusted network client, no authentication
        assert swaks(smtp, "carol@example.net", [f"c{i}@yahoo.example"],
                     client="127.0.0.2").returncode == 0
    assert swaks(sub, "dave@example.net", ["soft1@aol.example"], user="dave").returncode == 0
    relay = swaks(smtp, "spam@elsewhere.example", ["x@gmail.example"], client="127.0.0.3")
    assert relay.returncode != 0  # 454 Relay access denied
    bad_auth = swaks(sub, "alice@example.net", ["y@gmail.example"], user="alice", password="wrong")
    assert bad_auth.returncode != 0

    # 5x2 + 3x1 + 2 recipients reach the sink; 3 bounces and a deferral stay local.
    assert wait_for(lambda: len(sink.stats.recipients) == 15, 60), sink.stats
    assert wait_for(lambda: instance.maillog.read_text().count(": removed") >= 13, 30)
    instance.stop()

    reader = LogReader(DirectionRules(NETWORKS))
    out = [*reader.read(open_log_lines(str(instance.maillog))), *reader.finish()]
    mails = [o for o in out if isinstance(o, MailEvent)]
    deliveries = [o for o in out if isinstance(o, DeliveryEvent)]
    print(f"{reader.tracker.stats}")
    assert reader.tracker.stats.unparsed == 0, list(reader.tracker.stats.unparsed_samples)

    accepted = [m for m in mails if m.accepted and not m.mta_generated]
    assert Counter(m.sasl_username for m in accepted) == {
        "alice@example.net": 5, "bob@example.net": 3, "dave@example.net": 1, None: 2}
    assert Counter(m.sender for m in accepted) == {
        "alice@example.net": 5, "bob@example.net": 3, "carol@example.net": 2, "dave@example.net": 1}
    assert {m.direction for m in accepted} == {Direction.OUTBOUND}
    alice = sorted((m for m in accepted if m.sender == "alice@example.net"), key=lambda m: m.ts)
    assert [sorted(m.recipients) for m in alice] == [
        [f"r{i}@gmail.example", f"s{i}@outlook.example"] for i in range(5)]
    assert all(m.recipient_count == 2 and m.client_ip == "127.0.0.1" for m in alice)
    carol = [m for m in accepted if m.sender == "carol@example.net"]
    assert {m.client_ip for m in carol} == {"127.0.0.2"}

    bounces = [m for m in mails if m.mta_generated]
    assert len(bounces) == 3 and {m.sender for m in bounces} == {""}
    [refused] = [m for m in mails if not m.accepted]
    assert (refused.client_ip, refused.sender, refused.recipients) == (
        "127.0.0.3", "spam@elsewhere.example", ["x@gmail.example"])
    assert "Relay access denied" in (refused.reject_reason or "")

    statuses = Counter((d.sender, d.status) for d in deliveries)
    assert statuses == {
        ("alice@example.net", "sent"): 10, ("bob@example.net", "sent"): 3,
        ("bob@example.net", "bounced"): 3, ("carol@example.net", "sent"): 2,
        ("dave@example.net", "deferred"): 1, ("", "sent"): 3}

    # The whole way to a decision: 5 messages in a minute per account fires for alice only.
    config = FloodgateConfig(networks=NETWORKS, thresholds=[Threshold(
        name="five", key="sasl_username", window="1m", messages=5, action="defer",
        duration="10m")])
    fired = [a for a in replay(config, sorted(mails, key=lambda m: m.ts)) if a.state == "active"]
    assert [(a.subject, a.evidence.messages if a.evidence else 0) for a in fired] == [
        ("alice@example.net", 5)]
