"""Changelog restore on the test broker: a store comes back as of the last complete checkpoint,
a checkpoint cut short by a crash is repaired, and a store ahead of its log is rebuilt."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from connectors.kafka.client_config import consumer_config, producer_config
from connectors.kafka.topics import TopicSpec, ensure_topics
from pipeline.streaming.state import changelog, recovery
from pipeline.streaming.state.partition_store import PartitionStore
from pipeline.streaming.state.store_options import StoreOptions
from schemas.config import KafkaSettings

pytestmark = pytest.mark.slow


@pytest.fixture
def topic(kafka_settings: KafkaSettings) -> str:
    name = f"changelog-{uuid.uuid4().hex[:6]}"
    ensure_topics(kafka_settings, [TopicSpec(name, 2)])
    return name


def checkpoint(producer: Producer, topic: str, store: PartitionStore,
               changes: dict[bytes, bytes | None], marker: dict[str, object]) -> None:
    """What the counting loop does: changes, marker, then the local write."""
    delivery = changelog.Delivery()
    changelog.write_changes(producer, topic, 1, changes, delivery)
    changelog.flush(producer)
    changelog.write_marker(producer, topic, 1, marker, delivery)
    changelog.flush(producer)
    delivery.check()
    store.write(changes, {"changelog_next": delivery.last[1] + 1, "marker": marker})


def test_restore_stops_at_the_last_marker_and_repairs_what_follows(
        kafka_settings: KafkaSettings, topic: str, tmp_path: Path) -> None:
    producer = Producer(producer_config(kafka_settings))
    settings = consumer_config(kafka_settings, "restore-test")
    options = StoreOptions().to_rocksdict()
    first = PartitionStore(tmp_path / "a", options)
    checkpoint(producer, topic, first, {b"sender:a": b"1", b"sender:b": b"1"}, {"resume": 10})
    checkpoint(producer, topic, first, {b"sender:a": b"2", b"sender:b": None}, {"resume": 20})
    # a crash in the middle of the next checkpoint: changes sent, no marker, nothing local
    delivery = changelog.Delivery()
    changelog.write_changes(producer, topic, 1, {b"sender:a": b"3", b"sender:c": b"3"}, delivery)
    changelog.flush(producer)
    first.close()

    # another worker takes the partition over with an empty store
    other = PartitionStore(tmp_path / "b", options)
    marker = recovery.restore(other, producer, settings, topic, 1)
    assert marker == {"resume": 20}
    assert [(k, v) for k, v in other.scan(b"\x01")] == [(b"sender:a", b"2")]

    # the cut-short checkpoint was written again as of the marker: a later restore agrees
    again = PartitionStore(tmp_path / "c", options)
    assert recovery.restore(again, producer, settings, topic, 1) == {"resume": 20}
    assert [(k, v) for k, v in again.scan(b"\x01")] == [(b"sender:a", b"2")]

    # the first worker's own store, reopened, catches up the same way
    reopened = PartitionStore(tmp_path / "a", options)
    assert recovery.restore(reopened, producer, settings, topic, 1) == {"resume": 20}
    assert [(k, v) for k, v in reopened.scan(b"\x01")] == [(b"sender:a", b"2")]


def test_a_store_ahead_of_its_changelog_is_rebuilt(
        kafka_settings: KafkaSettings, topic: str, tmp_path: Path) -> None:
    producer = Producer(producer_config(kafka_settings))
    store = PartitionStore(tmp_path / "s", StoreOptions().to_rocksdict())
    store.write({b"sender:stale": b"x"}, {"changelog_next": 10**9, "marker": {"resume": 99}})
    marker = recovery.restore(store, producer, consumer_config(kafka_settings, "r"), topic, 0)
    assert marker == {}
    assert list(store.scan(b"\x01")) == []
