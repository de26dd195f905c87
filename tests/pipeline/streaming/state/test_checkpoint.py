"""A checkpoint writes changes, then markers, then RocksDB, then the offsets, each step only
after Kafka acknowledged the one before; a refused record stops it before anything is kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from pipeline.engine.evaluator import ThresholdEngine
from pipeline.streaming.counter import SubjectCounter
from pipeline.streaming.counting_partition import CountingPartition
from pipeline.streaming.event_order import EventOrder
from pipeline.streaming.state import stored_state
from pipeline.streaming.state.changelog import ChangelogError
from pipeline.streaming.state.checkpoint import Checkpoint
from pipeline.streaming.state.partition_store import PartitionStore
from pipeline.streaming.state.store_options import StoreOptions
from pipeline.streaming.state.table_layout import MARKER_KEY
from schemas.subject_batch import BATCH_KIND, SubjectBatch, SubjectEntry
from tests.pipeline.engine.builders import config, threshold


class Message:
    def __init__(self, partition: int, offset: int) -> None:
        self._at = (partition, offset)

    def partition(self) -> int:
        return self._at[0]

    def offset(self) -> int:
        return self._at[1]


class Changelog:
    """A producer that keeps records in memory; ``flush`` acknowledges (or refuses) them."""

    def __init__(self, refuse: bool = False) -> None:
        self.records: list[tuple[int, bytes, bytes | None]] = []
        self.unacked: list[tuple[Any, Message]] = []
        self.refuse = refuse
        self.events: list[str] = []

    def produce(self, topic: str, key: bytes, value: bytes | None, partition: int,
                on_delivery: Any) -> None:
        self.records.append((partition, key, value))
        self.unacked.append((on_delivery, Message(partition, len(self.records) - 1)))

    def poll(self, timeout: float = 0) -> int:
        return 0

    def ack(self) -> None:
        """Kafka's acknowledgements arrive (served by ``poll`` in the counting loop)."""
        for report, message in self.unacked:
            report(None, message)
        self.unacked = []

    def flush(self, timeout: float = 0) -> int:
        for report, message in self.unacked:
            report("refused" if self.refuse else None, message)
        self.events.append(f"flush {len(self.unacked)}")
        self.unacked = []
        return 0


class Committer:
    def __init__(self, log: list[str]) -> None:
        self.committed: list[TopicPartition] = []
        self._log = log

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self._log.append("commit async" if asynchronous else "commit")
        self.committed = offsets


def busy_partition(path: Path) -> CountingPartition:
    store = PartitionStore(path, StoreOptions().to_rocksdict())
    order = EventOrder([("mail", 0)])
    part = CountingPartition(0, store, order, SubjectCounter(
        ThresholdEngine(config(threshold())), store, lambda action: None))
    batch = SubjectBatch(source_topic="mail", source_partition=0, upto=1, mark_ms=10_000_000,
                         entries=[SubjectEntry("sasl_username:alice", n, 1_000_000 + n, 0, 1, n,
                                               "outbound", "example.net") for n in range(2)])
    part.take(7, BATCH_KIND, b"", batch.model_dump_json().encode())
    part.release(lambda entry, error: pytest.fail(error))
    return part


def whole_checkpoint(*args: Any) -> None:
    """A checkpoint begun and finished at once, as a revocation writes one."""
    Checkpoint.begin(*args).finish()


def count_more(part: CountingPartition, offset: int) -> None:
    batch = SubjectBatch(source_topic="mail", source_partition=0, upto=offset, mark_ms=10_000_000,
                         entries=[SubjectEntry("sasl_username:alice", offset, 1_000_000 + offset,
                                               0, 1, offset, "outbound", "example.net")])
    part.take(7 + offset, BATCH_KIND, b"", batch.model_dump_json().encode())
    part.release(lambda entry, error: pytest.fail(error))


def test_counting_goes_on_while_a_checkpoint_is_written(tmp_path: Path) -> None:
    """Begun at once, then carried on a slice at a time as Kafka acknowledges: what it
    writes is the state at its beginning, and what was counted meanwhile is the next one's."""
    part = busy_partition(tmp_path / "p0")
    alice = b"sasl_username:alice"
    at_begin = stored_state.pack(part.store.load(alice))
    producer = Changelog()
    consumer = Committer(producer.events)
    checkpoint = Checkpoint.begin(producer, consumer, "changelog", "subjects", [part],
                                  [("mail", 0, 2)])
    assert not checkpoint.advance(1.0)  # the changes sent: their acknowledgement awaited
    assert producer.records and all(key != MARKER_KEY for _, key, _ in producer.records)
    count_more(part, 2)  # counted while the checkpoint is written
    assert not checkpoint.advance(1.0) and consumer.committed == []
    producer.ack()
    assert not checkpoint.advance(1.0)  # the markers sent
    assert producer.records[-1][1] == MARKER_KEY and part.store.meta() == {}
    producer.ack()
    assert checkpoint.advance(1.0) and checkpoint.complete
    assert producer.events == ["commit async"] and consumer.committed
    assert part.store.get_raw(alice) == at_begin  # the state at the beginning
    now = stored_state.pack(part.store.load(alice))
    assert now != at_begin and part.touched and part.store.pending
    whole_checkpoint(producer, consumer, "changelog", "subjects", [part], [])
    assert part.store.get_raw(alice) == now


def test_changes_then_markers_then_rocksdb_then_offsets(tmp_path: Path) -> None:
    part = busy_partition(tmp_path / "p0")
    producer = Changelog()
    consumer = Committer(producer.events)
    whole_checkpoint(producer, consumer, "changelog", "subjects", [part],
                     [("mail", 0, 2)])
    keys = [key for _, key, _ in producer.records]
    assert keys[-1] == MARKER_KEY and b"sasl_username:alice" in keys[:-1]
    assert producer.events == [f"flush {len(keys) - 1}", "flush 1", "commit"]  # markers after
    marker = json.loads(producer.records[-1][2] or b"")
    assert part.store.meta() == {"changelog_next": len(keys), "marker": marker}
    assert not part.touched and not part.store.pending
    assert [(tp.topic, tp.partition, tp.offset) for tp in consumer.committed] == [
        ("subjects", 0, marker["resume"]), ("mail", 0, 2)]


def test_a_refused_record_keeps_nothing_of_the_checkpoint(tmp_path: Path) -> None:
    part = busy_partition(tmp_path / "p0")
    producer = Changelog(refuse=True)
    consumer = Committer(producer.events)
    with pytest.raises(ChangelogError, match="refused"):
        whole_checkpoint(producer, consumer, "changelog", "subjects", [part],
                         [("mail", 0, 2)])
    assert part.store.meta() == {} and consumer.committed == []
    assert part.store.get_raw(b"sasl_username:alice") is None  # nothing of it in RocksDB


def test_an_idle_partition_writes_nothing_and_sources_still_commit(tmp_path: Path) -> None:
    part = busy_partition(tmp_path / "p0")
    whole_checkpoint(Changelog(), Committer([]), "changelog", "subjects", [part],
                     [])
    producer = Changelog()
    consumer = Committer(producer.events)
    whole_checkpoint(producer, consumer, "changelog", "subjects", [part],
                     [("mail", 0, 5)])
    assert producer.records == []
    assert [(tp.topic, tp.offset) for tp in consumer.committed] == [("mail", 5)]
