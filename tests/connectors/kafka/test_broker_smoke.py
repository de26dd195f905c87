"""The proven base: confluent-kafka and a Faust app with a RocksDB table on the test broker (the
worker now counts outside Faust's tables; this shows the Faust runtime and its group on Tansu)."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Consumer, Producer

from connectors.kafka.client_config import consumer_config, producer_config
from connectors.kafka.topics import TopicSpec, ensure_topics
from schemas.config import KafkaSettings
from tests.fixtures.processes import start, stop

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]
GROUP_JOIN_S = 120  # a new group's first join on Tansu can take ~30 s


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _consume(
    settings: KafkaSettings, topic: str, want: int, deadline_s: float
) -> list[tuple[int, bytes, bytes]]:
    consumer = Consumer(consumer_config(settings, _unique("reader")))
    consumer.subscribe([topic])
    got: list[tuple[int, bytes, bytes]] = []
    deadline = time.monotonic() + deadline_s
    try:
        while len(got) < want and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            got.append((message.partition(), message.key(), message.value()))
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return got


def test_confluent_group_round_trip_lands_keys_where_aiokafka_would(
    kafka_settings: KafkaSettings,
) -> None:
    topic = _unique("smoke")
    ensure_topics(kafka_settings, [TopicSpec(topic, partitions=3)])
    producer = Producer(producer_config(kafka_settings))
    keys = [f"sasl_username:user{i}".encode() for i in range(12)]
    for key in keys:
        producer.produce(topic, key=key, value=b"v:" + key)
    assert producer.flush(15) == 0

    got = _consume(kafka_settings, topic, len(keys), GROUP_JOIN_S)

    assert sorted(k for _, k, _ in got) == sorted(keys)
    assert all(v == b"v:" + k for _, k, v in got)
    aiokafka_partition = DefaultPartitioner()
    for partition, key, _ in got:  # murmur2_random: same partition as Java and aiokafka
        assert partition == aiokafka_partition(key, [0, 1, 2], [0, 1, 2])


@pytest.fixture
def faust_worker(kafka_settings: KafkaSettings, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = dict(os.environ,
               SMOKE_APP_ID=_unique("smokeapp"), SMOKE_BOOTSTRAP=str(kafka_settings.bootstrap_servers),
               SMOKE_DATADIR=str(tmp_path / "data"), SMOKE_IN=_unique("in"), SMOKE_OUT=_unique("out"))
    ensure_topics(kafka_settings, [TopicSpec(env["SMOKE_IN"], 2), TopicSpec(env["SMOKE_OUT"], 2)])
    # `worker` turns the web server on (0.0.0.0:6066) unless told not to.
    process = start([sys.executable, "-m", "tests.fixtures.faust_smoke_app", "worker",
                     "--without-web", "-l", "info"], tmp_path / "worker.log", env)
    try:
        yield env
    finally:
        stop(process)


def test_faust_app_counts_in_a_rocksdb_table(
    kafka_settings: KafkaSettings, faust_worker: dict[str, str]
) -> None:
    producer = Producer(producer_config(kafka_settings))
    sent = {f"k{i}": i + 1 for i in range(4)}  # k0 once, k1 twice, ...
    for key, times in sent.items():
        for _ in range(times):
            producer.produce(faust_worker["SMOKE_IN"], key=key.encode(), value=b"x")
    assert producer.flush(15) == 0

    got = _consume(kafka_settings, faust_worker["SMOKE_OUT"], sum(sent.values()), 2 * GROUP_JOIN_S)

    highest: dict[str, int] = {}
    for _, key, value in got:
        highest[key.decode()] = max(highest.get(key.decode(), 0), int(value))
    assert highest == sent
    tables = Path(faust_worker["SMOKE_DATADIR"]) / "v1" / "tables"
    assert sorted(p.name for p in tables.glob("counts-*.db")) == ["counts-0.db", "counts-1.db"]
