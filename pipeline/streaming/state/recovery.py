"""Restore a counting partition from its changelog when it is assigned.

1. write a fence record and learn its offset: the log's end, exactly, without
   trusting the broker's reported end offsets;
2. read from the offset the local database is restored up to, to the fence,
   noting the last marker and the keys written after it;
3. apply the records up to the last marker to the local database (read again
   from Kafka if there were too many to hold), with the marker as metadata;
4. repair the cut-short checkpoint: write each of its keys again with the
   value as of the marker (or a tombstone), then a new marker, so that no
   later restore applies a half-written checkpoint.

A local database that claims more than the log holds (a rebuilt broker or
topic) is wiped and restored from the start.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from pipeline.streaming.state.changelog import (
    ChangelogError,
    Delivery,
    flush,
    produce_record,
    write_changes,
    write_marker,
)
from pipeline.streaming.state.partition_store import PartitionStore
from pipeline.streaming.state.table_layout import FENCE_KEY, MARKER_KEY

log = logging.getLogger("floodgate.worker")

HELD_RECORDS = 200_000  # records held between the two reads; more: the log is read twice
READ_TIMEOUT_S = 120.0  # no progress for this long while restoring: give up (the worker restarts)


def restore(store: PartitionStore, producer: Producer, consumer_settings: dict[str, Any],
            topic: str, partition: int) -> dict[str, Any]:
    """Bring ``store`` up to the changelog's last marker; return that marker (``{}``: none)."""
    began = time.monotonic()
    fence = _fence(producer, topic, partition)
    meta = store.meta()
    start = int(meta.get("changelog_next", 0))
    if start > fence:
        log.warning("%s/%d: the local store is ahead of its changelog (%d > %d): a new broker "
                    "or topic; rebuilding it from the changelog", topic, partition, start, fence)
        store.wipe()
        meta, start = {}, 0
    marker: dict[str, Any] = meta.get("marker") or {}
    scan = _scan(consumer_settings, topic, partition, start, fence)
    if scan.last_marker is None:
        tail_from = start
    else:
        records = scan.held if scan.held is not None else _read_complete(
            consumer_settings, topic, partition, start, scan.last_marker)
        for chunk in range(0, len(records), 10_000):
            store.write_restored(records[chunk:chunk + 10_000])
        marker = scan.marker
        tail_from = scan.last_marker + 1
    changelog_next = tail_from
    if scan.tail:
        log.warning("%s/%d: a checkpoint was cut short (%d keys after offset %d); writing them "
                    "again as of the last complete one", topic, partition, len(scan.tail),
                    tail_from)
        delivery = Delivery()
        write_changes(producer, topic, partition,
                      {key: store.get_raw(key) for key in scan.tail}, delivery)
        flush(producer)
        write_marker(producer, topic, partition, marker, delivery)
        flush(producer)
        delivery.check()
        changelog_next = delivery.last[partition] + 1
    store.write({}, {"changelog_next": changelog_next, "marker": marker})
    if fence - start > 1000:
        log.info("%s/%d: restored %d changelog records in %.1f s", topic, partition,
                 fence - start, time.monotonic() - began)
    return marker


def _fence(producer: Producer, topic: str, partition: int) -> int:
    delivery = Delivery()
    produce_record(producer, topic, partition, FENCE_KEY, uuid.uuid4().bytes, delivery)
    flush(producer)
    delivery.check()
    return delivery.last[partition]


@dataclass
class _Scan:
    last_marker: int | None = None
    marker: dict[str, Any] = field(default_factory=dict)
    held: list[tuple[bytes, bytes | None]] | None = field(default_factory=list)  # up to the marker
    tail: set[bytes] = field(default_factory=set)  # keys written after the last marker


def _scan(settings: dict[str, Any], topic: str, partition: int, start: int, fence: int) -> _Scan:
    scan = _Scan()
    since_marker: list[tuple[bytes, bytes | None]] = []
    for offset, key, value in _read(settings, topic, partition, start, fence):
        if key == MARKER_KEY:
            try:
                scan.marker = json.loads(value or b"{}")
            except ValueError as exc:
                raise ChangelogError(f"{topic}/{partition}@{offset}: damaged marker: {exc}") from None
            scan.last_marker = offset
            if scan.held is not None:
                scan.held += since_marker
                if len(scan.held) > HELD_RECORDS:
                    scan.held = None
            since_marker, scan.tail = [], set()
        elif key != FENCE_KEY:
            since_marker.append((key, value))
            scan.tail.add(key)
    return scan


def _read_complete(settings: dict[str, Any], topic: str, partition: int, start: int,
                   last_marker: int) -> list[tuple[bytes, bytes | None]]:
    return [(key, value) for offset, key, value
            in _read(settings, topic, partition, start, last_marker)
            if key not in (MARKER_KEY, FENCE_KEY)]


def _read(settings: dict[str, Any], topic: str, partition: int, start: int,
          end: int) -> Iterator[tuple[int, bytes, bytes | None]]:
    """Records at offsets ``start`` to ``end`` (inclusive; ``end`` exists: it was acknowledged)."""
    if start > end:
        return
    consumer = Consumer(settings)
    try:
        consumer.assign([TopicPartition(topic, partition, start)])
        last_progress = time.monotonic()
        while True:
            messages = consumer.consume(10_000, 0.5)
            for message in messages:
                offset = message.offset()
                if message.error() or offset is None:
                    continue
                if offset > end:
                    return
                yield offset, message.key() or b"", message.value()
                if offset == end:
                    return
            if messages:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > READ_TIMEOUT_S:
                raise ChangelogError(f"{topic}/{partition}: no records for {READ_TIMEOUT_S:.0f} s "
                                     f"while restoring offsets {start}..{end}")
    finally:
        consumer.close()
