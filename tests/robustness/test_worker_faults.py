"""Faults: the worker killed with SIGKILL at random moments (mid-stream, during recovery, while
the next batch arrives), three times, then left to finish. The actions equal the brute-force
replay's: none missing, none extra, none from a message counted twice."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from connectors.kafka.embedded_broker import free_port
from pipeline.replay import replay
from schemas.config import KafkaSettings
from schemas.config_file import load_config
from schemas.events import ActionEvent, MailEvent
from tests.figures import Figures
from tests.fixtures.topic_reader import read, read_until
from tests.fixtures.worker_process import (
    Worker,
    active,
    produce,
    wait_caught_up,
    wait_next_checkpoint,
    write_config,
)
from tests.pipeline.engine.builders import mail

pytestmark = pytest.mark.slow
KILLS = 3


def traffic() -> list[list[MailEvent]]:
    """Four batches: 40 accounts, the even ones over the example's 60-in-30 s burst limit."""
    events = [mail(n * 350 + user * 7, event_id=f"mx1/u{user}-{n}", sasl_username=f"u{user}",
                   sender=f"u{user}@example.net")
              for user in range(40) for n in range(70 if user % 2 == 0 else 20)]
    events.sort(key=lambda e: e.ts)
    quarter = len(events) // 4 + 1
    return [events[i:i + quarter] for i in range(0, len(events), quarter)]


def test_worker_killed_at_random_moments_matches_the_replay(kafka_settings: KafkaSettings,
                                                            tmp_path: Path, figures: Figures) -> None:
    health = free_port()
    config_path, topics, _ = write_config(kafka_settings, tmp_path, health=health)
    rng = random.Random(int(time.time()))
    worker = Worker(config_path, tmp_path / "worker.log")
    batches = traffic()
    kills = []
    try:
        worker.start()
        for number, batch in enumerate(batches):
            produce(kafka_settings, topics["mail"], [e.model_dump_json().encode() for e in batch],
                    [e.sasl_username or "" for e in batch])
            if number < KILLS:
                delay = rng.uniform(1, 40)  # startup, recovery, counting: wherever it falls
                time.sleep(delay)
                worker.stop(signal.SIGKILL)
                kills.append(round(delay, 1))
                worker.start()
        events = [e for batch in batches for e in batch]
        expected = {a.action_id for a in replay(load_config(config_path, {}), events)
                    if a.state == "active"}
        read_until(kafka_settings, topics["actions"], 2,  # until all came
                   lambda values: len({a.action_id for a in active(values)}) >= len(expected), 300)
        wait_caught_up(health, worker, [topics["mail"]])
        wait_next_checkpoint(health)  # anything counted twice has fired and is in Kafka
        got = read(kafka_settings, topics["actions"], 2, 10**6, 8)
    finally:
        worker.stop()
    actions = [ActionEvent.model_validate_json(v) for v in got]
    fired = {a.action_id for a in actions if a.state.value == "active"}
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert len(expected) == 20
    assert fired == expected, (f"kills after {kills} s; missing {len(expected - fired)}, "
                               f"extra {len(fired - expected)}\n{log[-3000:]}")
    figures.add(f"worker SIGKILL x{KILLS} at random moments ({', '.join(map(str, kills))} s)",
                f"{len(events):,} mail events in 4 batches",
                f"the replay's {len(expected)} actions, none missing, none extra")
    print(f"killed after {kills} s; {len(expected)} actions as in the replay; "
          f"{len(actions) - len(fired)} repeats and expiries")
