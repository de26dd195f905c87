"""Faults: the broker frozen (SIGSTOP) for 30 s under a steady policy load. The policy service
keeps answering from the actions it knows, within smtpd's deadline, and the PolicyEvents it
buffered reach Kafka once the broker is back: none lost."""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer

from connectors.kafka.client_config import producer_config
from connectors.kafka.embedded_broker import EmbeddedBroker, free_port
from connectors.kafka.topics import TopicSpec, ensure_topics
from schemas.config import KafkaSettings
from schemas.events import ActionEvent
from tests.figures import Figures
from tests.fixtures.http_probe import scrape, wait_ready
from tests.fixtures.policy_load import steady_load
from tests.fixtures.processes import start_floodgate, stop

pytestmark = pytest.mark.slow
PAUSE_S = 30


def test_policy_service_answers_through_a_frozen_broker(tmp_path: Path, figures: Figures) -> None:
    broker = EmbeddedBroker(tmp_path / "broker.log")
    broker.start()
    process = None
    try:
        settings = KafkaSettings(bootstrap_servers=broker.bootstrap)
        ensure_topics(settings, [TopicSpec("floodgate.actions", 2),
                                 TopicSpec("floodgate.policy-events", 2)])
        now = datetime.now(UTC)
        blocked = ActionEvent(action_id="fault-1", ts=now, subject_type="sasl_username",
                              subject="mallory", action="block", threshold="t", state="active",
                              origin="auto", triggered_at=now, expires_at=now + timedelta(hours=1))
        producer = Producer(producer_config(settings))
        producer.produce("floodgate.actions", value=blocked.model_dump_json().encode(),
                         key=blocked.key.encode())
        assert producer.flush(30) == 0
        port, health = free_port(), free_port()
        config = tmp_path / "floodgate.yaml"
        config.write_text(f"kafka: {{bootstrap_servers: '{broker.bootstrap}'}}\n"
                          f"policy: {{listen: '127.0.0.1:{port}', "
                          f"health_listen: '127.0.0.1:{health}'}}\n")
        process = start_floodgate(["policy-server", "--config", str(config)],
                                  tmp_path / "policy.log")
        wait_ready(health, 60)

        results: list[tuple[float, float, bytes]] = []  # (sent at, seconds, answer)
        done = threading.Event()
        load = threading.Thread(target=steady_load, args=(port, done, results), daemon=True)
        load.start()
        time.sleep(3)
        paused_at = time.monotonic()
        broker.pause()
        time.sleep(PAUSE_S)
        broker.resume()
        resumed_at = time.monotonic()
        time.sleep(5)
        done.set()
        load.join(30)
        during = [r for r in results if paused_at <= r[0] <= resumed_at]
        assert len(during) > PAUSE_S * 50  # the load went on while the broker was frozen
        assert max(seconds for _, seconds, _ in results) < 1.0  # smtpd waits 10 s at most
        for _, _, answer in results:
            user_blocked = answer.startswith(b"action=REJECT")
            assert user_blocked or answer == b"action=DUNNO\n\n"
        assert sum(1 for r in results if r[2].startswith(b"action=REJECT")) == len(results) // 2

        deadline = time.monotonic() + 120  # buffered events reach the broker once it is back
        while time.monotonic() < deadline:
            metrics = scrape(health)
            if metrics["floodgate_policy_events_published_total"] >= len(results):
                break
            time.sleep(1)
        assert metrics["floodgate_policy_events_published_total"] == len(results)
        assert metrics["floodgate_policy_events_dropped_total"] == 0
        assert metrics["floodgate_policy_events_failed_total"] == 0
        figures.add(f"broker frozen (SIGSTOP) {PAUSE_S} s", f"{len(results):,} policy requests, "
                    f"{len(during):,} while frozen", "every PolicyEvent published after the resume",
                    lost=len(results) - int(metrics["floodgate_policy_events_published_total"]),
                    worst_ms=max(s for _, s, _ in results) * 1000)
        print(f"{len(results)} requests, {len(during)} while frozen, slowest "
              f"{max(s for _, s, _ in results) * 1000:.1f} ms")
    finally:
        stop(process, signal.SIGTERM)
        broker.stop()


