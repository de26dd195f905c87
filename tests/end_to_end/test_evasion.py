"""Detection an abuser cannot step around, through a real Postfix: a customer rotating through
the addresses of its IPv6 /64 (XCLIENT), an account far above its own learnt normal, and a
receiver that refuses the ISP at the greeting. One mail chain serves the three tests:

* ``per-line`` counts client addresses per /64: 100 messages from 100 addresses of one /64
  fire it, and a fresh address of that /64 is then deferred while the next /64 is not;
* ``unusual`` compares each account with its own normal (shadow): two weeks of back-dated
  history on the mail-events topic, one message an hour for ``quiet``, 30 for ``steady``;
  then 30 messages each in a few seconds: 30 times quiet's normal, steady's usual hour;
* ``refused`` counts receivers' refusals: mail to ``blocked.example`` goes to a sink that
  answers every connection with ``421 4.7.0 ... listed``; Postfix defers it ("refused to talk
  to me") and suspends the rest of that destination's queue ("delivery temporarily
  suspended"), which must count once, not once per waiting message.
"""

from __future__ import annotations

import smtplib
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.kafka.embedded_broker import EmbeddedBroker, free_port
from connectors.postfix_log.reader import LogReader
from connectors.postfix_log.tail import partition_key
from pipeline.engine.counting import Exemptions, is_countable, unit_flags
from pipeline.engine.evaluator import ThresholdEngine
from schemas.config import Exempt, KafkaSettings
from schemas.config_file import load_config
from schemas.events import ActionEvent, DeliveryEvent, MailEvent
from schemas.vocabulary import FLAG_BITS, Flag
from tests.fixtures.mail_chain import MailChain, mail_chain, swaks
from tests.fixtures.postfix_instance import needs_postfix
from tests.fixtures.smtp_sink import SmtpSink
from tests.fixtures.topic_reader import read_all, read_until
from tests.fixtures.worker_process import counted, produce
from tests.pipeline.engine.builders import mail

pytestmark = needs_postfix

THRESHOLDS = (
    "  - {name: per-line, key: client_ip, prefix: {ipv6: 64}, window: 10m, messages: 100, "
    "action: defer, duration: 10m}\n"
    "  - {name: unusual, key: sasl_username, window: 1h, messages: 400, baseline: {factor: 10, "
    "min_messages: 20, learn: 14d}, action: defer, duration: 30m, mode: shadow}\n"
    "  - {name: refused, key: sender, window: 10m, count: deliveries, messages: 3, "
    "flagged: remote_refused, flagged_units: 3, action: warn, duration: 10m}\n")
LINE = "2001:db8:1:2"  # the customer's /64
GREETING = "421 4.7.0 sink.test: 198.51.100.7 is listed at bl.example, try again later"
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def chain(kafka_broker: EmbeddedBroker,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MailChain, SmtpSink]]:
    tmp_path = tmp_path_factory.mktemp("evasion")
    kafka = KafkaSettings(bootstrap_servers=kafka_broker.bootstrap, client_id="floodgate-test")
    refusing = SmtpSink(free_port(), greeting=GREETING)
    refusing.start()
    # XCLIENT takes IPv6 client addresses only where Postfix speaks IPv6 (it listens on
    # 127.0.0.1 still)
    # One connection at a time to a destination, as to a busy receiver: its first refusal
    # suspends the rest of its queue.
    main_cf = ("inet_protocols = ipv4, ipv6\ninitial_destination_concurrency = 1\n"
               f"smtpd_authorized_xclient_hosts = 127.0.0.0/8\nrelay_domains = rotation.example\n"
               f"transport_maps = inline:{{ example.net=discard:, "
               f"blocked.example=smtp:[127.0.0.1]:{refusing.port} }}\n")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FLOODGATE_POLICY__STATE_DIR", str(tmp_path / "policy-state"))
        try:
            with mail_chain(kafka, tmp_path, THRESHOLDS, ["quiet", "steady", "gina"],
                            internal="127.0.0.0/8, '2001:db8::/32'", main_cf=main_cf) as running:
                yield running, refusing
        finally:
            refusing.stop()


def kafka_of(chain: MailChain) -> KafkaSettings:
    return load_config(chain.config, {}).kafka


def actions(chain: MailChain, done: Callable[[list[ActionEvent]], bool],
            deadline_s: float) -> list[ActionEvent]:
    records = read_until(kafka_of(chain), chain.topics["actions"], 2,
                         lambda values: done([ActionEvent.model_validate_json(v)
                                              for v in values]), deadline_s)
    return [ActionEvent.model_validate_json(v) for v in records]


def send_from(chain: MailChain, address: str) -> tuple[int, str]:
    """One message from a client at ``address`` (XCLIENT), to a relayed domain: Postfix's
    answer to the end of DATA."""
    with smtplib.SMTP("127.0.0.1", chain.postfix.smtp_port, timeout=20) as smtp:
        smtp.ehlo("rotator.example")
        code, text = smtp.docmd("XCLIENT", f"ADDR=IPV6:{address} NAME=[UNAVAILABLE]")
        assert code == 220, text
        smtp.ehlo("rotator.example")
        smtp.mail("line@example.net")
        code, text = smtp.rcpt("someone@rotation.example")
        assert code == 250, text
        code, text = smtp.data(b"Subject: hi\r\n\r\nhello\r\n")
        return code, text.decode(errors="replace")


def test_a_rotation_through_one_slash_64_is_caught_and_a_fresh_address_is_deferred(
        chain: tuple[MailChain, SmtpSink]) -> None:
    running, _ = chain
    for n in range(100):  # each message from another address of the customer's /64
        code, text = send_from(running, f"{LINE}:{n:x}:{n:x}:{n:x}:{n + 1:x}")
        if code != 250:  # caught while still rotating: only after the 100th was counted
            assert n >= 99 and code == 450, text
    fired = actions(running, lambda got: any(a.threshold == "per-line" for a in got), 120)
    [line] = [a for a in fired if a.threshold == "per-line"]
    assert (line.subject_type.value, line.subject) == ("client_net", f"{LINE}::/64")
    assert line.evidence is not None and line.evidence.messages == 100
    deadline = time.monotonic() + 30  # the policy service reads the action topic on its own
    while (answer := send_from(running, f"{LINE}:ffff:ffff:ffff:fffe"))[0] != 450:
        assert answer[0] == 250 and time.monotonic() < deadline, answer
        time.sleep(0.5)
    assert f"Sending deferred for client_net {LINE}::/64: too much mail" in answer[1]
    # the next /64 is another customer
    assert send_from(running, "2001:db8:1:3::1")[0] == 250


def _history(user: str, per_hour: int, now_ms: int) -> list[MailEvent]:
    """Two weeks and a day of mail, ``per_hour`` messages in each hour before this one."""
    this_hour = now_ms // HOUR_MS * HOUR_MS
    start = datetime.fromtimestamp(0, UTC)
    return [mail(0, ts=start + timedelta(milliseconds=this_hour - hours * HOUR_MS
                                          + n * (HOUR_MS // (per_hour + 1)) + 1),
                 event_id=f"history/{user}/{hours}/{n}", sasl_username=f"{user}@example.net",
                 sender=f"{user}@example.net", client_ip="10.20.0.1")
            for hours in range(15 * 24, 0, -1) for n in range(per_hour)]


def test_an_account_far_above_its_own_normal_is_acted_on_in_shadow(
        chain: tuple[MailChain, SmtpSink]) -> None:
    running, _ = chain
    kafka = kafka_of(running)
    history = _history("quiet", 1, int(time.time() * 1000)) \
        + _history("steady", 30, int(time.time() * 1000))
    engine = ThresholdEngine(load_config(running.config, {}))
    entries = sum(len(engine.subjects(e)) for e in history)  # what the worker will count
    before = counted(running.worker_health)
    produce(kafka, running.topics["mail_events"], [e.model_dump_json().encode() for e in history],
            [partition_key(e) for e in history])
    deadline = time.monotonic() + 120  # learnt before the burst: history first
    while counted(running.worker_health) < before + entries:
        assert time.monotonic() < deadline, "the worker never counted the history"
        time.sleep(0.5)
    for _ in range(30):  # the same 30 messages each: the steady account's usual hour
        for user in ("quiet", "steady"):
            assert swaks(running.postfix, user, "friend@far.example").returncode == 0
    fired = actions(running, lambda got: any(a.threshold == "unusual" for a in got), 120)
    [unusual] = [a for a in fired if a.threshold == "unusual"]
    assert (unusual.subject, unusual.enforced) == ("quiet@example.net", False)
    evidence = unusual.evidence
    assert evidence is not None and evidence.baseline is not None
    assert 0.9 <= evidence.baseline <= 1.1 and evidence.limit_messages == 20
    time.sleep(5)  # the steady account's last messages counted too
    later = read_all(kafka, running.topics["actions"], 2, len(fired), 30)
    assert not [a for a in map(ActionEvent.model_validate_json, later)
                if a.subject == "steady@example.net"]


def _attempts(chain: MailChain) -> list[DeliveryEvent]:
    """What the log says of the deliveries to the refusing receiver."""
    reader = LogReader.for_config(load_config(chain.config, {}))
    lines = chain.postfix.maillog.read_text(errors="replace").splitlines()
    return [e for e in reader.read(lines)
            if isinstance(e, DeliveryEvent) and e.recipient.endswith("@blocked.example")]


def _wait_attempts(chain: MailChain, count: int, deadline_s: float = 60) -> list[DeliveryEvent]:
    deadline = time.monotonic() + deadline_s
    while len(found := _attempts(chain)) < count:
        assert time.monotonic() < deadline, chain.postfix.maillog.read_text()[-3000:]
        time.sleep(0.3)
    return found


def test_refusals_at_the_greeting_count_and_suspended_deliveries_count_once(
        chain: tuple[MailChain, SmtpSink]) -> None:
    running, refusing = chain
    for n in range(5):  # queued together: the first refusal suspends the others
        assert swaks(running.postfix, "gina", f"r{n}@blocked.example").returncode == 0
    attempts = _wait_attempts(running, 5)
    real = [a for a in attempts if "refused to talk to me" in (a.response or "")
            and not (a.response or "").startswith("delivery temporarily suspended")]
    assert real and all(GREETING.split(" ", 1)[1] in (a.response or "") for a in real)
    exemptions = Exemptions(Exempt())
    refused = FLAG_BITS[Flag.REMOTE_REFUSED]
    for attempt in attempts:  # Postfix's own words, as the reader and the counting read them
        suspended = (attempt.response or "").startswith("delivery temporarily suspended: ")
        assert is_countable(attempt, exemptions) is not suspended, attempt.response
        assert bool(unit_flags(attempt) & refused) is (attempt in real), attempt.response
    if len(real) < 3:  # the suspended ones must not have made up the three
        time.sleep(8)
        early = read_all(kafka_of(running), running.topics["actions"], 2, 0, 10)
        assert not [a for a in map(ActionEvent.model_validate_json, early)
                    if a.threshold == "refused"], [a.response for a in attempts]
    deadline = time.monotonic() + 120
    while len(real) < 3:  # flush: Postfix tries the listed destination again
        # The log has whole seconds and the message's age two digits: two attempts of one
        # recipient in one second may read as one (README), so flushes are a second apart.
        time.sleep(1)
        subprocess.run(["postqueue", "-c", str(running.postfix.dir), "-f"], check=True,
                       capture_output=True, timeout=30)
        attempts = _wait_attempts(running, len(attempts) + 1)
        real = [a for a in attempts if "refused to talk to me" in (a.response or "")
                and not (a.response or "").startswith("delivery temporarily suspended")]
        assert time.monotonic() < deadline, [a.response for a in attempts]
    assert refusing.refused >= 3 and len(attempts) > len(real)  # some were suspended
    fired = actions(running, lambda got: any(a.threshold == "refused" for a in got), 120)
    [action] = [a for a in fired if a.threshold == "refused"]
    assert (action.subject, action.action.value) == ("gina@example.net", "warn")
    assert action.evidence is not None and action.evidence.flagged is Flag.REMOTE_REFUSED
    assert action.evidence.spams >= 3
