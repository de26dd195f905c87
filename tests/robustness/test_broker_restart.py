"""Faults: the broker killed with SIGKILL and started again 10 s later, while Postfix logs
mail and asks the policy service. The broker stores on S3 (a local moto server), so it comes
back with its log, as a Kafka broker would. Meanwhile the policy service answers within its
deadline, and afterwards every logged message is on the mail topic (once, after
de-duplication by event id), the worker's actions equal the brute-force replay's, and every
PolicyEvent was published."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from connectors.kafka.embedded_broker import free_port
from pipeline.replay import replay
from schemas.config import KafkaSettings
from schemas.config_file import load_config
from schemas.events import ActionEvent, MailEvent
from schemas.vocabulary import ActionState
from tests.figures import Figures
from tests.fixtures.http_probe import scrape, wait_ready
from tests.fixtures.object_store import durable_broker, s3_server
from tests.fixtures.policy_load import steady_load
from tests.fixtures.processes import start_floodgate, stop, wait_worker_counting
from tests.fixtures.topic_reader import read_all

pytestmark = pytest.mark.slow
SECONDS_OF_LOG, PER_SECOND = 60, 40  # 40 messages a log second: 10 accounts at 3, 10 at 1
WRITE_S = 30  # the 60 s of log are written in 30 s; the broker dies 8 s in, for 10 s
DOWN_AFTER_S, DOWN_FOR_S = 8, 10


def log_lines(n: int, start: datetime) -> str:
    """Message ``n``: even accounts send 3 a second (90 in 30 s, over the 60 limit), odd ones 1."""
    second, slot = divmod(n, PER_SECOND)
    user = (slot // 3) * 2 if slot < 30 else (slot - 30) * 2 + 1
    stamp = (start + timedelta(seconds=second)).strftime("%b %d %H:%M:%S")
    qid = f"{0xB00000 + n:X}"
    return (f"{stamp} mx1 postfix/submission/smtpd[7]: {qid}: client=c[10.0.0.{user + 1}], "
            f"sasl_method=PLAIN, sasl_username=user{user}\n"
            f"{stamp} mx1 postfix/cleanup[8]: {qid}: message-id=<{n}@example.net>\n"
            f"{stamp} mx1 postfix/qmgr[9]: {qid}: from=<user{user}@example.net>, size=900, "
            "nrcpt=1 (queue active)\n"
            f"{stamp} mx1 postfix/smtp[10]: {qid}: to=<r{n}@far.example>, relay=mx[192.0.2.1]:25, "
            "delay=0.5, delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 ok)\n"
            f"{stamp} mx1 postfix/qmgr[9]: {qid}: removed\n")


def write_log(path: Path, messages: int, seconds: float) -> None:
    start = datetime.now().replace(microsecond=0)
    began = time.monotonic()
    with open(path, "a") as log:
        for n in range(messages):
            log.write(log_lines(n, start))
            log.flush()
            time.sleep(max(0.0, began + (n + 1) * seconds / messages - time.monotonic()))


def config_text(bootstrap: str, tmp_path: Path, policy_port: int, health: int) -> str:
    """Producers not idempotent: Tansu 0.6 on S3 saves a batch's sequence number before the
    batch (tansu-storage dynostore.rs ``produce``), so a kill between the two answers the
    retry DUPLICATE_SEQUENCE_NUMBER, which librdkafka takes as delivered: 5 messages were
    lost so in one CI run. Kafka appends the batch and its producer state together."""
    run = uuid.uuid4().hex[:6]
    return (f"kafka: {{bootstrap_servers: '{bootstrap}', idempotent_producers: false}}\n"
            "networks: {internal: [10.0.0.0/8], local_domains: [example.net]}\n"
            "thresholds:\n"
            "  - {name: burst, key: sasl_username, direction: outbound, window: 30s,\n"
            "     messages: 60, action: defer, duration: 15m}\n"
            f"topics: {{mail_events: mail-{run}, subject_events: subjects-{run},\n"
            f"  actions: actions-{run}, dead_letter: dead-{run}, deliveries: dlv-{run},\n"
            f"  policy_events: policy-{run}}}\n"
            f"worker: {{app_id: worker-{run}, data_dir: '{tmp_path / 'data'}', partitions: 2}}\n"
            f"policy: {{listen: '127.0.0.1:{policy_port}', health_listen: '127.0.0.1:{health}'}}\n")


def test_broker_killed_and_restarted_loses_nothing(tmp_path: Path, figures: Figures) -> None:
    policy_port, health = free_port(), free_port()
    processes = []
    with s3_server(tmp_path / "s3.log") as endpoint:
        broker = durable_broker(endpoint, tmp_path / "broker.log")
        broker.start()
        settings = KafkaSettings(bootstrap_servers=broker.bootstrap)
        config_path = tmp_path / "floodgate.yaml"
        config_path.write_text(config_text(broker.bootstrap, tmp_path, policy_port, health))
        config = load_config(config_path, {})
        log = tmp_path / "mail.log"
        log.write_text("")
        try:
            worker_log = tmp_path / "worker.log"
            processes.append(start_floodgate(["worker", "--config", str(config_path)], worker_log))
            wait_worker_counting(worker_log, processes[-1])
            processes.append(start_floodgate(["policy-server", "--config", str(config_path)],
                                             tmp_path / "policy.log"))
            wait_ready(health, 60)
            processes.append(start_floodgate(["tail", str(log), "--config", str(config_path),
                                              "--checkpoint", str(tmp_path / "pos")],
                                             tmp_path / "tail.log"))
            answers: list[tuple[float, float, bytes]] = []
            done = threading.Event()
            load = threading.Thread(target=steady_load, daemon=True,  # user0 will burst
                                    args=(policy_port, done, answers, (b"alice", b"user0")))
            load.start()
            messages = SECONDS_OF_LOG * PER_SECOND
            writer = threading.Thread(target=write_log, args=(log, messages, WRITE_S))
            writer.start()
            time.sleep(DOWN_AFTER_S)
            broker.kill()
            killed_at = time.monotonic()
            time.sleep(DOWN_FOR_S)
            broker.start()
            back_at = time.monotonic()
            writer.join()

            mail = [MailEvent.model_validate_json(v) for v in read_all(
                settings, config.topics.mail_events, config.worker.partitions, messages, 180)]
            events = {e.event_id: e for e in mail}
            expected = {a.action_id for a in replay(config, sorted(events.values(),
                                                                   key=lambda e: e.ts))
                        if a.state is ActionState.ACTIVE}
            fired = [ActionEvent.model_validate_json(v)
                     for v in read_all(settings, config.topics.actions, 2, len(expected), 300)]
            time.sleep(2)  # the action feed's poll interval and then some
            done.set()
            load.join(30)
            published = _wait_published(health, len(answers))
        finally:
            for process in reversed(processes):
                stop(process)
            broker.stop()
    queue_ids = {e.queue_id for e in events.values()}
    assert queue_ids == {f"{0xB00000 + n:X}" for n in range(messages)}, \
        f"{messages - len(queue_ids)} messages missing from the mail topic"
    assert len(expected) == 10
    active = {a.action_id for a in fired if a.state is ActionState.ACTIVE}
    assert active == expected, f"missing {expected - active}, extra {active - expected}"
    down = [a for a in answers if killed_at <= a[0] <= back_at]
    slowest = max(seconds for _, seconds, _ in answers)
    assert len(down) > DOWN_FOR_S * 50  # the policy load went on while the broker was dead
    assert slowest < 1.0  # smtpd waits 10 s at most
    assert published == len(answers)
    deferred = [a for a in answers if a[2].startswith(b"action=DEFER")]
    assert deferred and all(a[0] > back_at for a in deferred)  # the feed came back with it
    assert all(a[2] == b"action=DUNNO\n\n" for a in answers if a[0] < killed_at)
    figures.add(f"broker killed (SIGKILL), back after {back_at - killed_at:.0f} s",
                f"{messages:,} logged messages, {len(answers):,} policy requests",
                f"the replay's {len(active)} actions; DEFER once it is back; every PolicyEvent "
                "published", lost=messages - len(queue_ids), worst_ms=slowest * 1000)
    print(f"broker down {back_at - killed_at:.1f} s: {messages:,} messages logged, "
          f"{len(mail) - messages} repeats on the topic, {len(events):,} distinct, 0 lost; "
          f"{len(active)} actions as in the replay; {len(answers):,} policy answers "
          f"({len(down):,} while down, {len(deferred):,} deferred after), slowest "
          f"{slowest * 1000:.1f} ms, all published")


def _wait_published(health: int, answered: int, deadline_s: float = 120) -> int:
    deadline = time.monotonic() + deadline_s
    while True:
        metrics = scrape(health)
        done = metrics["floodgate_policy_events_published_total"]
        if done >= answered or time.monotonic() > deadline:
            assert metrics["floodgate_policy_events_dropped_total"] == 0
            assert metrics["floodgate_policy_events_failed_total"] == 0
            return int(done)
        time.sleep(1)
