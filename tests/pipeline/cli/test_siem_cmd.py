"""``floodgate siem`` on the test broker: actions become CEF lines in a file, unreadable
records are skipped with a log line, and the offsets are committed."""

from __future__ import annotations

import signal
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import Producer

from connectors.kafka.client_config import producer_config
from schemas.config import KafkaSettings
from tests.fixtures.processes import start_floodgate, stop
from tests.fixtures.siem_records import action

pytestmark = pytest.mark.slow


def test_siem_writes_cef_lines_for_actions(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    topic = f"actions-{uuid.uuid4().hex[:6]}"
    config = tmp_path / "floodgate.yaml"
    config.write_text(f"kafka: {{bootstrap_servers: '{kafka_settings.bootstrap_servers}'}}\n"
                      f"topics: {{actions: {topic}}}\n")
    producer = Producer(producer_config(kafka_settings))
    for record in (action(), b"{broken", action(action_id="second", subject="bob|x=y")):
        value = record if isinstance(record, bytes) else record.model_dump_json().encode()
        producer.produce(topic, value=value, key=b"k")
    assert producer.flush(30) == 0
    out, log = tmp_path / "siem.cef", tmp_path / "siem.log"
    process = start_floodgate(["siem", "--config", str(config), "--format", "cef",
                               "--to", f"file:{out}"], log)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not out.exists() or
                                               out.read_text().count("\n") < 2):
            time.sleep(0.5)
    finally:
        stop(process, signal.SIGTERM)
    lines = out.read_text().splitlines()
    assert len(lines) == 2, log.read_text()[-2000:]
    assert lines[0].startswith("CEF:0|Floodgate|Floodgate|") and "externalId=a1b2" in lines[0]
    assert "cs3=bob|x\\=y" in lines[1]
    text = log.read_text()
    assert "skipping unreadable record" in text and "2 records written, 1 unreadable" in text


def test_a_new_siem_consumer_starts_where_from_says(kafka_settings: KafkaSettings,
                                                    tmp_path: Path) -> None:
    topic = f"actions-{uuid.uuid4().hex[:6]}"
    config = tmp_path / "floodgate.yaml"
    config.write_text(f"kafka: {{bootstrap_servers: '{kafka_settings.bootstrap_servers}'}}\n"
                      f"topics: {{actions: {topic}}}\n")
    producer = Producer(producer_config(kafka_settings))

    def send(action_id: str) -> None:
        producer.produce(topic, value=action(action_id=action_id).model_dump_json().encode(),
                         key=b"k")
        assert producer.flush(30) == 0

    send("old")
    time.sleep(1.5)
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    time.sleep(0.5)
    send("recent")
    runs = {start: (tmp_path / f"{n}.cef", tmp_path / f"{n}.log")
            for n, start in enumerate(("latest", since))}
    processes = [start_floodgate(["siem", "--config", str(config), "--format", "cef", "--to",
                                  f"file:{out}", "--from", start, "--group", f"g{n}"], log)
                 for n, (start, (out, log)) in enumerate(runs.items())]
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(
                log.exists() and "reading " in log.read_text() for _, log in runs.values()):
            time.sleep(0.5)
        send("new")
        while time.monotonic() < deadline and not all(
                out.exists() and "externalId=new" in out.read_text() for out, _ in runs.values()):
            time.sleep(0.5)
    finally:
        for process in processes:
            stop(process, signal.SIGTERM)
    (latest_out, latest_log), (since_out, _) = runs.values()
    assert "from new records" in latest_log.read_text()
    assert [line.split("externalId=")[1].split()[0]
            for line in latest_out.read_text().splitlines()] == ["new"]
    assert [line.split("externalId=")[1].split()[0]
            for line in since_out.read_text().splitlines()] == ["recent", "new"]


def test_a_siem_interrupted_while_joining_resumes_within_30_s(kafka_settings: KafkaSettings,
                                                               tmp_path: Path) -> None:
    """Ctrl-C during the first join left a member the broker waited for (Kafka up to the
    rebalance timeout, Tansu for ever); static membership gives the restart its place."""
    topic = f"actions-{uuid.uuid4().hex[:6]}"
    config = tmp_path / "floodgate.yaml"
    config.write_text(f"kafka: {{bootstrap_servers: '{kafka_settings.bootstrap_servers}'}}\n"
                      f"topics: {{actions: {topic}}}\n")
    command = ["siem", "--config", str(config), "--format", "cef", "--to"]
    first_log = tmp_path / "first.log"
    first = start_floodgate([*command, f"file:{tmp_path / 'first.cef'}"], first_log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "joining consumer group" not in (
            first_log.read_text() if first_log.exists() else ""):
        time.sleep(0.1)
    time.sleep(1)  # inside the join, before any partition is given
    assert "reading " not in first_log.read_text()
    stop(first, signal.SIGINT)
    assert first.returncode == 0, first_log.read_text()[-2000:]
    producer = Producer(producer_config(kafka_settings))
    producer.produce(topic, value=action(action_id="after").model_dump_json().encode(), key=b"k")
    assert producer.flush(30) == 0
    out, log = tmp_path / "second.cef", tmp_path / "second.log"
    started = time.monotonic()
    second = start_floodgate([*command, f"file:{out}"], log)
    try:
        while time.monotonic() - started < 60 and not (out.exists() and out.read_text()):
            time.sleep(0.2)
        waited = time.monotonic() - started
    finally:
        stop(second, signal.SIGINT)
    assert "externalId=after" in out.read_text(), log.read_text()[-2000:]
    assert waited < 30, f"the restarted siem wrote its first record after {waited:.0f} s"
