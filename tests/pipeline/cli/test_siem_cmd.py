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
