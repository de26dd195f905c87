"""Fetch the records Faust's consumer skipped, straight from Kafka (see ``offset_guard``).

A plain confluent-kafka consumer, assigned (no group, nothing committed) to
the one partition, reads ``[start, end)`` and stops at the first record at or
after ``end``; a real hole in the offsets (a transaction marker) is simply not
returned. It runs in a thread so the worker's event loop keeps going.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, TopicPartition

from connectors.kafka.client_config import consumer_config
from schemas.config import KafkaSettings

FETCH_TIMEOUT_S = 60.0


class GapFillError(RuntimeError):
    """The skipped records could not be read in time."""


@dataclass
class SourceRecord:
    """One record of a source topic, whichever consumer read it."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: dict[str, bytes] = field(default_factory=dict)


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode() if value is not None else b""


def _headers(raw: object) -> dict[str, bytes]:
    items = raw.items() if isinstance(raw, dict) else (raw or [])
    return {str(name): _bytes(value) for name, value in items}  # type: ignore[attr-defined]


class GapFiller:
    def __init__(self, settings: KafkaSettings, group_hint: str) -> None:
        self._settings, self._group = settings, f"{group_hint}-gap-filler"
        self._consumer: Consumer | None = None
        self._lock = asyncio.Lock()
        self.filled = 0

    async def fetch(self, topic: str, partition: int, start: int, end: int) -> list[SourceRecord]:
        async with self._lock:
            records = await asyncio.to_thread(self._fetch, topic, partition, start, end)
        self.filled += len(records)
        return records

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()

    def _fetch(self, topic: str, partition: int, start: int, end: int) -> list[SourceRecord]:
        if self._consumer is None:
            self._consumer = Consumer(consumer_config(self._settings, self._group))
        consumer = self._consumer
        consumer.assign([TopicPartition(topic, partition, start)])
        records: list[SourceRecord] = []
        deadline = time.monotonic() + FETCH_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                for message in consumer.consume(min(1_000, max(end - start, 1)), 0.5):
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            continue
                        raise GapFillError(f"{topic}/{partition}: {error}")
                    offset = message.offset()
                    if offset is None:
                        continue
                    if offset >= end:
                        return records
                    records.append(SourceRecord(topic, partition, offset, _bytes(message.key()),
                                                _bytes(message.value()), _headers(message.headers())))
        finally:
            consumer.unassign()
        raise GapFillError(f"{topic}/{partition}: offsets {start}..{end - 1} not read in "
                           f"{FETCH_TIMEOUT_S:.0f} s")
