"""``floodgate worker`` on the test broker: the same actions as the offline replay, bad records
dead-lettered, and no double counting after kill -9 and restart."""

from __future__ import annotations

import signal
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.kafka.embedded_broker import free_port
from pipeline.replay import replay
from pipeline.streaming.counting_loop import ASSIGNED_LINE
from schemas.config import KafkaSettings
from schemas.config_file import load_config
from schemas.events import ActionEvent, DeadLetter, MailEvent, PolicyEvent, PolicyRequest
from schemas.time_ms import to_ms
from schemas.vocabulary import ActionState
from tests.fixtures.http_probe import wait_ready
from tests.fixtures.topic_reader import read, read_until
from tests.fixtures.worker_process import (
    Worker,
    active,
    produce,
    wait_caught_up,
    wait_next_checkpoint,
    write_config,
)
from tests.pipeline.engine.builders import T0, mail

pytestmark = pytest.mark.slow


def history(offset_ms: int, user: str, count: int, spam: bool = False,
            every_ms: int = 200) -> list[MailEvent]:
    return [mail(offset_ms + i * every_ms, event_id=f"mx1/{user}-{offset_ms}-{i}",
                 sasl_username=user, sender=f"{user}@example.net", spam=spam)
            for i in range(count)]


def first_burst() -> list[MailEvent]:
    events = history(0, "alice", 70) + history(0, "mallory", 12, spam=True, every_ms=1000) \
        + history(0, "carol", 20, every_ms=5000)
    return sorted(events, key=lambda e: e.ts)


def run_first_burst(kafka_settings: KafkaSettings, topics: dict[str, str], worker: Worker,
                    log: Path) -> list[MailEvent]:
    """Start the worker, send the first burst and two bad records; check what comes out."""
    first = first_burst()
    worker.start()
    produce(kafka_settings, topics["mail"], [e.model_dump_json().encode() for e in first]
            + [b"{not json", b'{"event_id": "x"}'],
            [e.sasl_username or "" for e in first] + ["bad", "bad"])
    got = read_until(kafka_settings, topics["actions"], 2, lambda vs: len(active(vs)) >= 2, 180)
    assert len(active(got)) == 2, log.read_text()[-4000:]
    dead = [DeadLetter.model_validate_json(v) for v in read(kafka_settings, topics["dead"], 1, 2, 30)]
    assert sorted(d.error.split(":")[0] for d in dead) == ["not valid JSON", "ts"]
    return first


def same_actions(got: list[bytes], expected: list[ActionEvent]) -> None:
    actions = active(got)
    assert sorted((a.action_id, a.subject, to_ms(a.triggered_at)) for a in actions) == sorted(
        (a.action_id, a.subject, to_ms(a.triggered_at)) for a in expected)


def test_worker_matches_replay_and_dead_letters(kafka_settings: KafkaSettings,
                                                tmp_path: Path) -> None:
    config_path, topics, _ = write_config(kafka_settings, tmp_path)
    worker = Worker(config_path, tmp_path / "worker.log")
    try:
        first = run_first_burst(kafka_settings, topics, worker, tmp_path / "worker.log")
        got = read(kafka_settings, topics["actions"], 2, 10**6, 5)  # nothing more comes
    finally:
        worker.stop()
    expected = [a for a in replay(load_config(config_path, {}), first) if a.state == "active"]
    same_actions(got, expected)


def test_worker_restarted_after_kill_counts_nothing_twice(kafka_settings: KafkaSettings,
                                                          tmp_path: Path) -> None:
    health = free_port()
    config_path, topics, _ = write_config(kafka_settings, tmp_path, health=health)
    log = tmp_path / "worker.log"
    worker = Worker(config_path, log)
    try:
        first = run_first_burst(kafka_settings, topics, worker, log)
        wait_caught_up(health, worker, [topics["mail"]])
        wait_next_checkpoint(health)  # the first burst is in the checkpoint
        worker.stop(signal.SIGKILL)  # crash; the second burst arrives while it is down
        second = history(40_000, "bob", 65)
        repeats = history(0, "alice", 10)  # reported again (say by the policy service): same ids
        produce(kafka_settings, topics["mail"],
                [e.model_dump_json().encode() for e in second + repeats],
                ["bob"] * len(second) + ["alice"] * len(repeats))
        worker.start()
        got = read_until(kafka_settings, topics["actions"], 2, lambda vs: len(active(vs)) >= 3, 300)
        wait_caught_up(health, worker, [topics["mail"]])  # the repeats were read and counted
        wait_next_checkpoint(health)  # and any action they fired is in Kafka
    finally:
        worker.stop()
    expected = [a for a in replay(load_config(config_path, {}), first + second)
                if a.state == "active"]
    same_actions(got, expected)
    fired = active(read(kafka_settings, topics["actions"], 2, 10**6, 10))
    assert len({a.action_id for a in fired}) == 3


def test_two_workers_give_the_same_actions_as_one(kafka_settings: KafkaSettings,
                                                  tmp_path: Path) -> None:
    config_path, topics, _ = write_config(kafka_settings, tmp_path)
    config = load_config(config_path, {})
    events = [e for n in range(8) for e in history(n * 1000, f"user{n}", 61)]
    events.sort(key=lambda e: e.ts)
    workers = []
    for n in range(2):  # same group, each with its own tables, as on two hosts
        other = tmp_path / f"w{n}.yaml"
        other.write_text(config_path.read_text().replace(str(tmp_path / "data"),
                                                         str(tmp_path / f"data{n}")))
        workers.append(Worker(other, tmp_path / f"worker{n}.log"))
    try:
        for worker in workers:
            worker.start()
        produce(kafka_settings, topics["mail"], [e.model_dump_json().encode() for e in events],
                [e.sasl_username or "" for e in events])
        got = read_until(kafka_settings, topics["actions"], 2,
                         lambda values: len({a.action_id for a in active(values)}) >= 8, 300)
    finally:
        for worker in workers:
            worker.stop()
    assert all("subjects-" in line for line in [  # both counted: each had a subjects partition
        next(line for line in (tmp_path / f"worker{n}.log").read_text().splitlines()[::-1]
             if ASSIGNED_LINE in line) for n in range(2)])
    actions = active(got)
    expected = [a for a in replay(config, events) if a.state == "active"]
    assert len(expected) == 8
    assert sorted(a.action_id for a in actions) == sorted(a.action_id for a in expected)


def test_policy_source_counts_once_actions_expire_and_lifts_hold(kafka_settings: KafkaSettings,
                                                                  tmp_path: Path) -> None:
    run, health = uuid.uuid4().hex[:6], free_port()
    topics = {name: f"{name}-{run}" for name in ("mail", "subjects", "actions", "dead", "policy")}
    config_path = tmp_path / "floodgate.yaml"
    config_path.write_text(
        f"kafka: {{bootstrap_servers: '{kafka_settings.bootstrap_servers}'}}\n"
        "networks: {internal: [10.0.0.0/8], local_domains: [example.net]}\n"
        "exempt: {sasl_usernames: [svc]}\n"
        "thresholds:\n"
        "  - {name: short, key: sasl_username, direction: outbound, window: 30s, messages: 8,\n"
        "     action: defer, duration: 15s}\n"
        f"topics: {{mail_events: {topics['mail']}, subject_events: {topics['subjects']},\n"
        f"  actions: {topics['actions']}, dead_letter: {topics['dead']},\n"
        f"  policy_events: {topics['policy']}}}\n"
        f"worker: {{app_id: worker-{run}, data_dir: '{tmp_path / 'data'}', partitions: 2,\n"
        f"  count_policy_events: true, tick_interval_s: 0.5, health_listen: '127.0.0.1:{health}'}}\n")
    config = load_config(config_path, {})
    log = tmp_path / "worker.log"
    worker = Worker(config_path, log)
    try:
        worker.start()
        wait_ready(health, 180, [worker.process] if worker.process else [])  # counting assigned
        now_ms = int(time.time() * 1000)

        def logged(user: str, n: int, **extra: object) -> MailEvent:
            return mail(now_ms - to_ms(T0) + n * 100, event_id=f"mx1/{user}Q{n}", host="mx1",
                        queue_id=f"{user}Q{n}", sasl_username=user, sender=f"{user}@example.net",
                        **extra)

        pat = [logged("pat", n) for n in range(8)]
        lee = [logged("lee", n) for n in range(8)]
        # an exempt account and inbound mail: out of every threshold's reach
        svc = [logged("svc", n) for n in range(12)]
        inbound = [logged("inb", n, direction="inbound") for n in range(12)]
        asked = [PolicyEvent(event_id=f"mx1/policy/{e.queue_id}", ts=e.ts, host="mx1", answer="DUNNO",
                             request=PolicyRequest(protocol_state="END-OF-MESSAGE",
                                                   queue_id=e.queue_id or "", sender=e.sender or "",
                                                   sasl_username="pat", client_address="10.0.0.5",
                                                   recipient_count="1"))
                 for e in pat[:5]]  # the policy service saw the first five too: same ids
        produce(kafka_settings, topics["policy"], [p.model_dump_json().encode() for p in asked],
                ["pat"] * len(asked))
        produce(kafka_settings, topics["mail"],
                [e.model_dump_json().encode() for e in pat + lee + svc + inbound],
                ["pat"] * 8 + ["lee"] * 8 + ["svc"] * 12 + ["inb"] * 12)
        fired = [ActionEvent.model_validate_json(v)
                 for v in read(kafka_settings, topics["actions"], 2, 2, 60)]
        assert len(fired) == 2, log.read_text()[-3000:]
        lifted = next(a for a in fired if a.subject == "lee").model_copy(update={
            "state": ActionState.LIFTED, "ts": datetime.now(UTC), "actor": "test"})
        produce(kafka_settings, topics["actions"], [lifted.model_dump_json().encode()],
                [lifted.key])
        time.sleep(25)  # past both actions' end (15 s)
        got = [ActionEvent.model_validate_json(v)
               for v in read(kafka_settings, topics["actions"], 2, 5, 10)]
    finally:
        worker.stop()
    expected = [a for a in replay(config, sorted(pat + lee + svc + inbound, key=lambda e: e.ts))
                if a.state is ActionState.ACTIVE]
    assert {a.subject for a in expected} == {"pat", "lee"}
    assert sorted(a.action_id for a in fired) == sorted(a.action_id for a in expected)
    states = sorted((a.subject, a.state.value) for a in got)
    assert states == [("lee", "active"), ("lee", "lifted"), ("pat", "active"), ("pat", "expired")]
