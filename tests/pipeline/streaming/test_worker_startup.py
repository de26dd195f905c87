"""How soon the worker counts: from its start to its first action, and from a restart after
``kill -9`` to the next. Its counting consumer joins alongside Faust's control group, and as a
static group member a restarted worker takes its partitions back at once instead of waiting
for its dead predecessor's session to expire."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from schemas.config import KafkaSettings
from schemas.events import MailEvent
from tests.figures import Figures
from tests.fixtures.topic_reader import read_until
from tests.fixtures.worker_process import Worker, active, produce, write_config
from tests.pipeline.engine.builders import mail

pytestmark = pytest.mark.slow
FIRST_ACTION_S = 20  # the targets, on the embedded broker
AFTER_RESTART_S = 15


def burst(user: str, offset_ms: int) -> list[MailEvent]:
    """70 messages in 14 s: over the example's 60-in-30 s limit."""
    return [mail(offset_ms + i * 200, event_id=f"mx1/{user}-{i}", sasl_username=user,
                 sender=f"{user}@example.net") for i in range(70)]


def send_and_time(kafka_settings: KafkaSettings, topics: dict[str, str], user: str,
                  offset_ms: int, started: float, worker: Worker) -> float:
    """Send a burst; the seconds from ``started`` until its action is in Kafka."""
    events = burst(user, offset_ms)
    produce(kafka_settings, topics["mail"], [e.model_dump_json().encode() for e in events],
            [user] * len(events))
    def acted(values: list[bytes]) -> bool:
        return any(a.key == f"sasl_username:{user}" for a in active(values))
    got = read_until(kafka_settings, topics["actions"], 2, acted, 120)
    assert acted(got), worker.log.read_text(errors="replace")[-3000:]
    return time.monotonic() - started


def test_worker_acts_soon_after_start_and_after_kill_9(kafka_settings: KafkaSettings,
                                                       tmp_path: Path, figures: Figures) -> None:
    config_path, topics, _ = write_config(kafka_settings, tmp_path)
    worker = Worker(config_path, tmp_path / "worker.log")
    try:
        started = time.monotonic()
        worker.start()
        first = send_and_time(kafka_settings, topics, "alice", 0, started, worker)
        time.sleep(3)  # a checkpoint or two, as in steady running
        worker.stop(signal.SIGKILL)
        restarted = time.monotonic()
        worker.start()
        again = send_and_time(kafka_settings, topics, "bob", 60_000, restarted, worker)
    finally:
        worker.stop()
    figures.add("worker start to its first action", f"{first:.1f} s",
                f"target < {FIRST_ACTION_S} s")
    figures.add("worker restart after kill -9 to its next action", f"{again:.1f} s",
                f"target < {AFTER_RESTART_S} s")
    print(f"first action {first:.1f} s after start; {again:.1f} s after a restart")
    assert first < FIRST_ACTION_S and again < AFTER_RESTART_S, (first, again)
