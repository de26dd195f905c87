"""An hour of mail from many customers, produced to 4 partitions before the worker starts (the
backlog after an outage), keyed as the tailer keys it: the worker's actions are exactly the
replay's, whatever the speed at which each partition is read, and still exactly the replay's
when the worker is killed (-9) twice while it works through the backlog.

The traffic has what the thresholds look for, spread so that one subject's messages come
from several source partitions: account bursts, spam runs of a sender, an inbound flood from
one client address through many senders, a domain-wide surge, messages with equal timestamps,
a repeat offender whose third burst climbs the escalation ladder to a block, a dictionary
attack (recipients refused as unknown) beside relay-denied refusals, and a heavy
partition (one busy account) read more slowly than the others. Delivery attempts come on
their own topic, keyed by message as the tailer keys them (so one account's attempts are
spread over every partition): an account mailing a bought list (most of it bounces), a sender
the receivers push back on (421 4.7.0), and a clean account with as many deliveries.
A customer rotates through the addresses of its IPv6 /64 (a per-network threshold), and a
quiet account sends 30 times its learnt normal (a baseline threshold, in shadow) beside a
steady one with the same burst and a matching history.
Subject settings on their own 4 partitions, set before the hour (and one removed again): two
bursting accounts are business customers (a higher limit: no action), one has a lower limit
of its own, a spamming sender is exempt and a flooding address has its threshold off; the
replay reads the same settings (``replay --settings``)."""

from __future__ import annotations

import random
import signal
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Producer

from connectors.kafka.client_config import producer_config
from connectors.kafka.embedded_broker import free_port
from connectors.kafka.settings_records import publish_settings
from connectors.kafka.topics import TopicSpec, ensure_topics
from connectors.postfix_log.tail import partition_key
from pipeline.engine.customisation import Customisation
from pipeline.engine.evaluator import ThresholdEngine
from pipeline.replay import replay
from schemas.config import FloodgateConfig, KafkaSettings
from schemas.config_file import load_config
from schemas.events import ActionEvent, DeliveryEvent, MailEvent
from schemas.subject_settings import SubjectSettings
from schemas.time_ms import to_ms
from schemas.vocabulary import ActionState
from tests.figures import Figures
from tests.fixtures.topic_reader import read_until
from tests.fixtures.worker_process import (
    Worker,
    active,
    counted,
    produce,
    wait_caught_up,
    wait_next_checkpoint,
)
from tests.pipeline.engine.builders import T0, delivery, mail

pytestmark = pytest.mark.slow
PARTITIONS = 4
HOUR_MS = 3_600_000

THRESHOLDS = """
classes: {default: standard, names: [standard, business]}
thresholds:
  - {name: burst, key: sasl_username, direction: outbound, window: 30s, messages: 45,
     action: defer, duration: 5m, per_class: {business: {messages: 100}},
     escalate: [{after: 2, within: 24h, action: defer, duration: 15m},
                {after: 3, within: 24h, action: block, duration: 30m}]}
  - {name: all-spam, key: sender, direction: outbound, window: 30s, messages: 10, spams: 10,
     action: block, duration: 10m}
  - {name: inbound-flood, key: client_ip, direction: inbound, window: 10s, messages: 90,
     action: defer, duration: 2m}
  - {name: domain-surge, key: sender_domain, direction: outbound, window: 1m, messages: 150,
     action: warn, duration: 5m}
  - {name: bought-list, key: sasl_username, window: 10m, count: deliveries, messages: 30,
     flagged: bounced, flagged_units: 20, action: defer, duration: 10m}
  - {name: pushback, key: sender, window: 5m, count: deliveries, messages: 20,
     flagged: remote_refused, flagged_units: 15, action: warn, duration: 5m, mode: shadow}
  - {name: harvest, key: client_ip, direction: inbound, window: 1m, count: recipients,
     messages: 20, flagged: unknown_recipient, flagged_units: 12, action: block, duration: 10m}
  - {name: per-line, key: client_ip, prefix: {ipv4: 24, ipv6: 64}, direction: outbound,
     window: 1m, messages: 100, action: defer, duration: 5m}
  - {name: unusual, key: sasl_username, direction: outbound, window: 5m, messages: 400,
     baseline: {factor: 8, min_messages: 30, learn: 30m}, action: defer, duration: 10m,
     mode: shadow}
"""
BOUNCE = "host mx.big.example[192.0.2.25] said: 550 5.1.1 <x@big.example>: user unknown"
PUSHBACK = "host mx.big.example[192.0.2.25] said: 421 4.7.0 Try again later, closing connection"


def hour_of_mail(seed: int = 11) -> list[MailEvent]:
    """Background traffic with known abusers; sorted by time (ties keep their order)."""
    rng = random.Random(seed)
    events: list[MailEvent] = []

    def add(at_ms: int, **fields: object) -> None:
        events.append(mail(at_ms, event_id=f"mx{len(events) % 3}/{len(events)}", **fields))

    for _ in range(24_000):  # 300 accounts over 40 domains, from their home addresses
        user = rng.randrange(300)
        add(rng.randrange(HOUR_MS), sasl_username=f"user{user}",
            sender=f"user{user}@d{user % 40}.example", client_ip=f"10.1.{user % 250}.{user % 7}")
    for _ in range(2_400):  # one busy account: a heavy partition, under every limit
        add(rng.randrange(HOUR_MS), sasl_username="newsletter", sender="news@d1.example",
            client_ip="10.9.9.9")
    for n in range(6):  # account bursts: 50 in 10 s
        start = rng.randrange(HOUR_MS - 11_000)
        for i in range(50):
            add(start + i * 200, sasl_username=f"burst{n}", sender=f"burst{n}@d{n}.example",
                client_ip=f"10.2.0.{n}")
    for start in (300_000, 1_500_000, 2_700_000):  # a repeat offender: 3 bursts, 20 min apart
        for _ in range(50):
            add(start + rng.randrange(10_000), sasl_username="repeat",
                sender="repeat@d3.example", client_ip="10.2.1.1")
    for n in range(4):  # spam runs of one sender through several accounts (so several partitions)
        start = rng.randrange(HOUR_MS - 30_000)
        for i in range(12):
            add(start + i * 2_000, sasl_username=f"spam{n}-{i % 3}", sender=f"spammer{n}@d7.example",
                client_ip="10.3.0.1", spam=True)
    for n in range(3):  # inbound floods: 100 in 10 s from one address, each with another sender
        start = rng.randrange(HOUR_MS - 12_000)
        for i in range(100):
            add(start + i * 95, sasl_username=None, sender=f"x{i}@remote{n}.example",
                client_ip=f"198.51.100.{n + 1}", direction="inbound")
    for n, reason in enumerate(("550 5.1.1 <u@example.net>: Recipient address rejected: User "
                                "unknown in virtual mailbox table",  # a dictionary attack
                                "554 5.7.1 <u@elsewhere.example>: Relay access denied")):
        start = rng.randrange(HOUR_MS - 40_000)
        for i in range(30):  # refused RCPTs: only the unknown ones count, and only for harvest
            add(start + i * 1_000, sasl_username=None, sender=f"h{i}@harvest{n}.example",
                client_ip=f"198.51.100.{50 + n}", direction="inbound", accepted=False,
                recipients=[f"u{i}@example.net"], reject_reason=reason)
    for i in range(120):  # a customer rotating through its IPv6 /64: one address a message
        add(1_200_000 + i * 400 + rng.randrange(300), sasl_username=f"line{i % 5}",
            sender=f"line{i % 5}@d21.example", client_ip=f"2001:db8:77:1:{i:x}::{i + 1:x}")
    for name, usual in (("quiet", 1), ("steady", 12)):  # 40 in 2 minutes: 30x the quiet one's
        for window in range(8):  # normal, learnt over 40 minutes; the steady one's own normal
            for i in range(usual):
                add(window * 300_000 + i * (300_000 // usual) + rng.randrange(1_000),
                    sasl_username=name, sender=f"{name}@d22.example", client_ip="10.6.0.1")
        for i in range(40):
            add(2_700_000 + i * 3_000, sasl_username=name, sender=f"{name}@d22.example",
                client_ip="10.6.0.1")
    surge = rng.randrange(HOUR_MS - 70_000)  # a domain surge: many accounts at once, equal times
    for i in range(160):
        add(surge + (i // 4) * 300, sasl_username=f"surge{i % 40}",
            sender=f"surge{i % 40}@d39.example", client_ip=f"10.4.0.{i % 40}")
    events.sort(key=lambda e: e.ts)
    return events


Events = list[MailEvent | DeliveryEvent]


def hour_of_deliveries(mails: list[MailEvent], seed: int = 12) -> list[DeliveryEvent]:
    """An attempt for every 4th background message, and three planted senders; by time."""
    rng = random.Random(seed)
    out: list[DeliveryEvent] = []

    def attempt(at_ms: int, status: str, response: str | None, **fields: object) -> None:
        number = len(out)
        out.append(delivery(at_ms, status, response, delivery_id=f"mx1/D{number}/{status}",
                            event_id=f"mx1/m{number}", queue_id=f"D{number}", **fields))

    for event in mails[::4]:
        attempt(to_ms(event.ts) - to_ms(mails[0].ts) + rng.randrange(100, 5_000), "sent",
                "250 2.0.0 Ok", sasl_username=event.sasl_username, sender=event.sender,
                client_ip=event.client_ip, direction=event.direction)
    for name, start, statuses in (
            ("bought", 900_000, ["bounced"] * 28 + ["sent"] * 12),  # 20 bounced in 10 min
            ("clean", 900_000, ["sent"] * 40),  # the same volume, delivered
            ("pushed", 2_000_000, ["deferred"] * 18 + ["sent"] * 7)):
        rng.shuffle(statuses)
        for i, status in enumerate(statuses):
            response = {"bounced": BOUNCE, "deferred": PUSHBACK}.get(status, "250 2.0.0 Ok")
            attempt(start + i * 12_000 + rng.randrange(1_000), status, response,
                    sasl_username=name, sender=f"{name}@d5.example", client_ip="10.5.0.1")
    out.sort(key=lambda e: e.ts)
    return out


def hour_settings() -> list[tuple[str, SubjectSettings | None]]:
    """Settings records, all set before the hour's first message; the last removes one."""
    at = T0 - timedelta(minutes=1)

    def record(subject: str, **fields: object) -> tuple[str, SubjectSettings]:
        return subject, SubjectSettings(subject=subject, actor="crm", reason="export", at=at,
                                        **fields)  # type: ignore[arg-type]

    return [record("sasl_username:burst0", subject_class="business"),
            record("sasl_username:burst1", subject_class="business"),
            record("sasl_username:burst2", overrides={"burst": {"messages": 20}}),
            record("sasl_username:burst3", subject_class="business"),
            record("sender:spammer0@d7.example", exempt=True),
            record("client_ip:198.51.100.1", overrides={"inbound-flood": "off"}),
            ("sasl_username:burst3", None)]  # removed again (30 s before the hour): it fires


def settings_of(changes: list[tuple[str, SubjectSettings | None]]) -> dict[str, Customisation]:
    """What ``replay --settings`` reads from an export listing the subjects still set."""
    latest = dict(changes)
    return {key: Customisation.of(record) for key, record in latest.items() if record}


def config_text(kafka: KafkaSettings, tmp_path: Path, run: str, health: int) -> str:
    return (f"kafka: {{bootstrap_servers: '{kafka.bootstrap_servers}'}}\n"
            "networks: {internal: [10.0.0.0/8], local_domains: [example.net]}\n" + THRESHOLDS +
            f"topics: {{mail_events: mail-{run}, deliveries: deliveries-{run}, "
            f"subject_events: subjects-{run}, "
            f"actions: actions-{run}, dead_letter: dead-{run}, "
            f"subject_settings: settings-{run}}}\n"
            f"worker: {{app_id: backlog-{run}, data_dir: '{tmp_path / 'data'}', "
            f"partitions: {PARTITIONS}, health_listen: '127.0.0.1:{health}'}}\n")


Fired = set[tuple[str, str, int]]  # action id (threshold, subject, time), action, end


def identities(actions: list[ActionEvent]) -> Fired:
    return {(a.action_id, a.action.value, to_ms(a.expires_at)) for a in actions
            if a.state is ActionState.ACTIVE}


def run_backlog(kafka_settings: KafkaSettings, tmp_path: Path, kills: int
                ) -> tuple[Fired, Fired, list[float]]:
    run, health = uuid.uuid4().hex[:6], free_port()
    path = tmp_path / "floodgate.yaml"
    path.write_text(config_text(kafka_settings, tmp_path, run, health))
    config = load_config(path, {})
    ensure_topics(kafka_settings, [TopicSpec(f"{name}-{run}", PARTITIONS) for name in
                                   ("mail", "deliveries", "subjects", "actions", "settings")])
    changes = hour_settings()
    producer = Producer(producer_config(kafka_settings))
    publish_settings(producer, f"settings-{run}", [c for c in changes if c[1] is not None])
    for key, _ in (c for c in changes if c[1] is None):  # removed before the hour too
        producer.produce(f"settings-{run}", key=key.encode(), value=None,
                         timestamp=to_ms(T0) - 30_000)
    assert producer.flush(30) == 0
    mails = hour_of_mail()
    deliveries = hour_of_deliveries(mails)
    for topic, records in (("mail", mails), ("deliveries", deliveries)):
        produce(kafka_settings, f"{topic}-{run}", [e.model_dump_json().encode() for e in records],
                [partition_key(e) for e in records])
    events: Events = sorted([*mails, *deliveries], key=lambda e: e.ts)
    expected = identities(replay(config, events, settings_of(changes)))
    engine = ThresholdEngine(config)  # the worker counts one entry per message and key dimension
    entries = sum(len(engine.subjects(e)) for e in events)
    worker = Worker(path, tmp_path / "worker.log")
    killed_at: list[float] = []
    try:
        worker.start()
        for share in (0.4, 0.3)[:kills]:  # of all entries, counted by this process since its start
            deadline = time.monotonic() + 300
            while counted(health) < share * entries and time.monotonic() < deadline:
                time.sleep(0.02)
            killed_at.append(round(counted(health) / entries, 2))
            worker.stop(signal.SIGKILL)
            worker.start()
        wait_caught_up(health, worker, [f"mail-{run}", f"deliveries-{run}"])
        got = read_until(kafka_settings, f"actions-{run}", PARTITIONS,
                         lambda values: len(identities(active(values))) >= len(expected),
                         300)
        wait_next_checkpoint(health)  # anything counted twice has fired and is in Kafka
        got += read_until(kafka_settings, f"actions-{run}", PARTITIONS, lambda values: False, 5)
    finally:
        worker.stop()
    return expected, identities(active(got)), killed_at


def describe(expected: Fired, fired: Fired, log: Path) -> str:
    return (f"missing {sorted(expected - fired)[:5]}, extra {sorted(fired - expected)[:5]}\n"
            + log.read_text(errors="replace")[-3000:])


def test_a_backlog_over_four_partitions_gives_the_replays_actions(
        kafka_settings: KafkaSettings, tmp_path: Path, figures: Figures) -> None:
    expected, fired, _ = run_backlog(kafka_settings, tmp_path, kills=0)
    # every planted abuser: 6 bursts, 4 spam runs, 3 floods, a surge, 3 bursts of a repeater,
    # a bought list (bounced, and refused by the receiver too), a pushed-back sender, a
    # dictionary attack, an IPv6 /64 and an IPv4 /24 (the surge), an account far above its
    # own normal; less the two business bursts, the exempt spammer and the flood whose
    # threshold is off
    assert len(expected) == 24 - 4
    assert fired == expected, describe(expected, fired, tmp_path / "worker.log")
    figures.add("worker on an hour's backlog over 4 partitions (27,000 events, 7,000 deliveries)",
                "9 thresholds on 5 key dimensions, deliveries and refused recipients, "
                "a /64 and a baseline too",
                f"the replay's {len(expected)} actions, none missing, none extra")


def test_a_backlog_with_the_worker_killed_twice_gives_the_replays_actions(
        kafka_settings: KafkaSettings, tmp_path: Path, figures: Figures) -> None:
    expected, fired, killed_at = run_backlog(kafka_settings, tmp_path, kills=2)
    assert fired == expected, describe(expected, fired, tmp_path / "worker.log")
    figures.add(f"worker SIGKILL x2 in an hour's backlog (after {' and '.join(map(str, killed_at))}"
                " of it counted by each process)", "34,000 events over 4 partitions",
                f"the replay's {len(expected)} actions, none missing, none extra")


def test_the_traffic_has_every_kind_of_abuser() -> None:
    """The generator itself: each planted abuser crosses its threshold in the replay."""
    config = FloodgateConfig.model_validate(yaml.safe_load(THRESHOLDS))
    mails = hour_of_mail()
    events: Events = sorted([*mails, *hour_of_deliveries(mails)], key=lambda e: e.ts)
    fired = [a for a in replay(config, events) if a.state == "active"]
    kinds = {a.threshold for a in fired}
    assert kinds == {"burst", "all-spam", "inbound-flood", "domain-surge", "bought-list",
                     "pushback", "harvest", "per-line", "unusual"}
    # a rotation through one /64 is one subject; so is the surge's /24
    assert {(a.subject_type.value, a.subject) for a in fired if a.threshold == "per-line"} == {
        ("client_net", "2001:db8:77:1::/64"), ("client_net", "10.4.0.0/24")}
    # 40 in 2 minutes: far above the quiet account's normal, not the steady one's
    [unusual] = [a for a in fired if a.threshold == "unusual"]
    assert (unusual.subject, unusual.enforced) == ("quiet", False)
    assert unusual.evidence is not None and unusual.evidence.baseline is not None
    assert unusual.evidence.baseline < 1 and unusual.evidence.limit_messages == 30
    assert [a.subject for a in fired if a.threshold == "harvest"] == ["198.51.100.50"]
    assert {(a.threshold, a.subject, a.enforced) for a in fired
            if a.threshold in ("bought-list", "pushback")} == {
        ("bought-list", "bought", True), ("pushback", "bought@d5.example", False),
        ("pushback", "pushed@d5.example", False)}  # the clean account's 40 fire nothing
    assert {a.subject for a in fired if a.threshold == "inbound-flood"} == {
        "198.51.100.1", "198.51.100.2", "198.51.100.3"}
    assert not [a for a in fired if a.subject == "newsletter"]
    ladder = [(a.action.value, to_ms(a.expires_at) - to_ms(a.triggered_at),
               a.evidence.escalation.step if a.evidence and a.evidence.escalation else None)
              for a in fired if a.subject == "repeat"]
    assert ladder == [("defer", 300_000, None), ("defer", 900_000, 1), ("block", 1_800_000, 2)]
    same_time = Counter(e.ts for e in mails if e.sender and "@d39." in e.sender)
    assert max(same_time.values()) == 4  # equal timestamps from different accounts
    # the settings: business bursts and the exempt spammer's run fire nothing, the account
    # with a lower limit of its own fires earlier, the flood whose threshold is off nothing
    custom = [a for a in replay(config, events, settings_of(hour_settings()))
              if a.state == "active"]
    gone = {(a.threshold, a.subject) for a in fired} - {(a.threshold, a.subject) for a in custom}
    assert gone == {("burst", "burst0"), ("burst", "burst1"),
                    ("all-spam", "spammer0@d7.example"), ("inbound-flood", "198.51.100.1")}
    [early] = [a for a in custom if a.subject == "burst2"]
    [usual] = [a for a in fired if a.subject == "burst2"]
    assert early.evidence is not None and early.evidence.limit_messages == 20
    assert early.triggered_at < usual.triggered_at
