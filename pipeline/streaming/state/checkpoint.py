"""A checkpoint of the counting partitions: changes to the changelog, then markers, then the
local RocksDB, then the offsets commit. Each step starts only once Kafka acknowledged the one
before it, so a crash at any point leaves a state ``recovery`` can restore exactly."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Producer, TopicPartition

from pipeline.streaming.counting_partition import CountingPartition
from pipeline.streaming.state import changelog

log = logging.getLogger("floodgate.worker")


def write_checkpoint(producer: Producer, consumer: Any, changelog_topic: str, subject_topic: str,
                     partitions: Iterable[CountingPartition],
                     source_positions: Iterable[tuple[str, int, int]]) -> None:
    """Checkpoint every partition touched since the last one; then commit the counting
    topic's resume offsets and the sources' ``(topic, partition, next offset)``.

    ``consumer``: confluent-kafka's. Raises ``ChangelogError`` when Kafka refused a record
    (nothing of this checkpoint is then committed).
    """
    busy = [p for p in partitions if p.touched or p.store.pending]
    delivery = changelog.Delivery()
    changes = {}
    for partition in busy:
        changes[partition.number] = partition.store.changes()
        changelog.write_changes(producer, changelog_topic, partition.number,
                                changes[partition.number], delivery)
    changelog.flush(producer)
    markers = {}
    for partition in busy:
        markers[partition.number] = partition.marker()
        changelog.write_marker(producer, changelog_topic, partition.number,
                               markers[partition.number], delivery)
    changelog.flush(producer)
    delivery.check()
    commits = []
    for partition in busy:
        partition.store.write(changes[partition.number], {
            "changelog_next": delivery.last[partition.number] + 1,
            "marker": markers[partition.number]})
        partition.touched = False
        resume = markers[partition.number]["resume"]
        if resume is not None:
            commits.append(TopicPartition(subject_topic, partition.number, resume))
    commits += [TopicPartition(topic, number, position)
                for topic, number, position in source_positions]
    if commits:
        try:
            consumer.commit(offsets=commits, asynchronous=False)
        except Exception as exc:  # a rebalance under way: the next checkpoint commits
            log.warning("offset commit failed: %s", exc)
