"""What the counting loop writes to Kafka besides its changelog: routed batches, actions, dead
letters, all through one producer, and what Kafka refused of them (no checkpoint may pass it)."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer

from connectors.kafka.produce import produce_waiting
from pipeline.streaming.event_order import Entry
from pipeline.streaming.metrics import WorkerMetrics
from schemas.config import Topics
from schemas.events import ActionEvent, DeadLetter
from schemas.time_ms import to_ms

log = logging.getLogger("floodgate.worker")


class WorkerOutputs:
    def __init__(self, topics: Topics, metrics: WorkerMetrics) -> None:
        self._topics, self._metrics = topics, metrics
        self._producer: Producer | None = None
        self.undelivered: list[str] = []  # records Kafka refused, since ``bind``

    def bind(self, producer: Producer) -> None:
        """Write through this producer from now on (a new life of the loop's clients)."""
        self._producer, self.undelivered = producer, []

    def on_delivery(self, error: Any, message: Any) -> None:
        if error is not None:
            self.undelivered.append(f"{message.topic()}: {error}")

    def produce(self, topic: str, value: bytes, key: bytes | None = None,
                partition: int | None = None, headers: dict[str, bytes] | None = None,
                timestamp_ms: int | None = None, on_delivery: Any = None) -> None:
        assert self._producer is not None
        extra: dict[str, Any] = {"on_delivery": on_delivery or self.on_delivery}
        if partition is not None:
            extra["partition"] = partition
        if headers:
            extra["headers"] = headers
        if timestamp_ms is not None:
            extra["timestamp"] = timestamp_ms
        produce_waiting(self._producer, topic, value=value, key=key, **extra)

    def publish(self, action: ActionEvent) -> None:
        self._metrics.actions.labels(action.action.value, action.state.value).inc()
        self.produce(self._topics.actions, action.model_dump_json().encode(),
                     key=action.key.encode(), timestamp_ms=to_ms(action.ts))

    def dead_letter(self, topic: str, partition: int, offset: int, error: str, raw: bytes) -> None:
        dead = DeadLetter(ts=datetime.now(UTC), source_topic=topic, partition=partition,
                          offset=offset, error=error[:2000],
                          raw_base64=base64.b64encode(raw).decode())
        self.produce(self._topics.dead_letter, dead.model_dump_json().encode(),
                     key=f"{topic}:{partition}".encode())
        self._metrics.dead_letters.inc()
        log.warning("dead-lettered %s/%d@%d: %s", topic, partition, offset, error[:300])

    def set_aside(self, message: Any, error: str) -> None:
        """A consumed record that cannot be used (a confluent-kafka Message)."""
        self.dead_letter(message.topic(), message.partition(), message.offset(), error,
                         message.value() or b"")

    def set_aside_entry(self, number: int, entry: Entry, error: str) -> None:
        """An entry that cannot be counted, named by the source record it came from (its
        subject-events record may not be stored yet: see ``CountingPartition.route``)."""
        self.dead_letter(entry.source[0], entry.source[1], entry.offset,
                         f"subject {entry.subject[:200]!r} (counting partition {number}): "
                         f"{error}", entry.subject.encode())
