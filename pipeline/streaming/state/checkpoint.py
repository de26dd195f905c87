"""A checkpoint of the counting partitions: changes to the changelog, then markers, then the
local RocksDB, then the offsets commit. Each step starts only once Kafka acknowledged the one
before it, so a crash at any point leaves a state ``recovery`` can restore exactly.

A checkpoint is taken at one instant (``Checkpoint.begin``: each partition's changes frozen
with its marker, ``PartitionStore.freeze``) and written while counting goes on: the counting
loop hands it a few milliseconds a cycle (``advance``) instead of stopping for all of it.
Encoding a second's changed subjects (thousands) and waiting for Kafka's acknowledgements
took 50-150 ms at 5,000 events/s, and every action about to fire waited that long.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Producer, TopicPartition

from pipeline.streaming.counting_partition import CountingPartition
from pipeline.streaming.state import changelog
from pipeline.streaming.state.partition_store import Snapshot

log = logging.getLogger("floodgate.worker")

SLICE = 128  # changes encoded and sent between two looks at the clock


@dataclass
class _Part:
    partition: CountingPartition
    snapshot: Snapshot
    marker: dict[str, Any]


class Checkpoint:
    """One checkpoint of the partitions that changed, from ``begin`` until ``advance`` (or
    ``finish``) says it is complete. ``consumer``: confluent-kafka's. Raises
    ``ChangelogError`` when Kafka refused a record: nothing of the checkpoint is committed,
    and the counting loop starts again from the last complete one."""

    def __init__(self, producer: Producer, consumer: Any, changelog_topic: str,
                 subject_topic: str, parts: list[_Part],
                 source_positions: list[tuple[str, int, int]]) -> None:
        self._producer, self._consumer = producer, consumer
        self._changelog, self._subject_topic = changelog_topic, subject_topic
        self._parts, self._positions = parts, source_positions
        self._delivery = changelog.Delivery()
        self._step: Callable[[bool], bool] = self._send_changes
        self.busy_s = 0.0  # time spent in it, for the checkpoint metric

    @classmethod
    def begin(cls, producer: Producer, consumer: Any, changelog_topic: str, subject_topic: str,
              partitions: Iterable[CountingPartition],
              source_positions: Iterable[tuple[str, int, int]]) -> Checkpoint:
        """Freeze every partition touched since the last checkpoint, with its marker; the
        sources' ``(topic, partition, next offset)`` are committed with it."""
        parts = []
        for partition in partitions:
            if partition.touched or partition.store.pending:
                parts.append(_Part(partition, partition.store.freeze(), partition.marker()))
                partition.touched = False
        return cls(producer, consumer, changelog_topic, subject_topic, parts,
                   list(source_positions))

    def advance(self, budget_s: float) -> bool:
        """Carry it on for about ``budget_s`` without waiting for Kafka; True once complete.
        Kafka's acknowledgements arrive through the producer's ``poll``."""
        began = time.perf_counter()
        deadline = began + budget_s
        try:
            while self._step(False):
                if time.perf_counter() >= deadline:
                    return False
            return self.complete
        finally:
            self.busy_s += time.perf_counter() - began

    def finish(self) -> None:
        """Complete it now, waiting for Kafka where it must."""
        began = time.perf_counter()
        try:
            while not self.complete:
                self._step(True)
        finally:
            self.busy_s += time.perf_counter() - began

    def forget(self, numbers: set[int], sources: set[tuple[str, int]]) -> None:
        """Partitions lost to the group: their part is not written, their offsets not
        committed (the next owner restores from the last complete checkpoint)."""
        self._parts = [p for p in self._parts if p.partition.number not in numbers]
        self._positions = [p for p in self._positions if (p[0], p[1]) not in sources]

    # -- the steps: each returns whether it moved on (False: waiting for Kafka) -----------
    def _send_changes(self, wait: bool) -> bool:
        for part in self._parts:
            if not part.snapshot.all_sent:
                for key, value in part.snapshot.next_changes(SLICE):
                    changelog.produce_record(self._producer, self._changelog,
                                             part.partition.number, key, value, self._delivery)
                return True
        self._step = self._send_markers
        return True

    def _acknowledged(self, wait: bool) -> bool:
        if wait:
            changelog.flush(self._producer)
        elif self._delivery.outstanding:
            return False
        self._delivery.check()
        return True

    def _send_markers(self, wait: bool) -> bool:
        if not self._acknowledged(wait):
            return False
        for part in self._parts:
            changelog.write_marker(self._producer, self._changelog, part.partition.number,
                                   part.marker, self._delivery)
        self._step = self._write
        return True

    def _write(self, wait: bool) -> bool:
        if not self._acknowledged(wait):
            return False
        commits = []
        for part in self._parts:
            number = part.partition.number
            part.partition.store.commit(part.snapshot, {
                "changelog_next": self._delivery.last[number] + 1, "marker": part.marker})
            resume = part.marker["resume"]
            if resume is not None:
                commits.append(TopicPartition(self._subject_topic, number, resume))
        commits += [TopicPartition(topic, number, position)
                    for topic, number, position in self._positions]
        if commits:
            try:  # asynchronous when counting goes on: a lost commit is redone by the next
                self._consumer.commit(offsets=commits, asynchronous=not wait)
            except Exception as exc:  # a rebalance under way: the next checkpoint commits
                log.warning("offset commit failed: %s", exc)
        self._step = self._done
        return True

    def _done(self, wait: bool) -> bool:
        return False

    @property
    def encoding(self) -> bool:
        """Changes are still to encode and send (else it waits for Kafka, or is complete)."""
        return self._step == self._send_changes

    @property
    def complete(self) -> bool:
        return self._step == self._done  # bound methods: equal, never the same object

