"""A counting partition's changelog records: changed keys, markers, and their acknowledgement.

At each checkpoint (``checkpoint.Checkpoint``) the changed keys go out,
then, once Kafka has acknowledged all of them, a marker record (``MARKER_KEY``)
with what the partition needs to resume (see ``event_order``). Everything
before the last marker is therefore complete; records after it belong to a
checkpoint that a crash cut short, which ``recovery`` repairs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Producer

from connectors.kafka.produce import produce_waiting
from pipeline.streaming.state.partition_store import Changes
from pipeline.streaming.state.table_layout import MARKER_KEY

log = logging.getLogger("floodgate.worker")

class ChangelogError(RuntimeError):
    """The changelog could not be written or read back."""


@dataclass
class Delivery:
    """Offsets Kafka acknowledged for produced records, by partition; errors kept to raise."""

    last: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    sent: int = 0  # records produced with this as their report (``produce_record``)
    reported: int = 0

    @property
    def outstanding(self) -> int:
        """Records produced and not acknowledged (nor refused) yet."""
        return self.sent - self.reported

    def __call__(self, error: Any, message: Any) -> None:
        self.reported += 1
        if error is not None:
            self.errors.append(str(error))
        else:
            partition = message.partition()
            self.last[partition] = max(self.last.get(partition, -1), message.offset())

    def check(self) -> None:
        if self.errors:
            raise ChangelogError(f"Kafka refused changelog records: {self.errors[0]}")


def flush(producer: Producer, timeout_s: float = 60.0) -> None:
    if producer.flush(timeout_s) > 0:
        raise ChangelogError(f"Kafka did not acknowledge the worker's records in {timeout_s:.0f} s")


def write_changes(producer: Producer, topic: str, partition: int, changes: Changes,
                  delivery: Delivery) -> None:
    for key, value in changes.items():
        produce_record(producer, topic, partition, key, value, delivery)


def write_marker(producer: Producer, topic: str, partition: int, marker: dict[str, Any],
                 delivery: Delivery) -> None:
    produce_record(producer, topic, partition, MARKER_KEY, json.dumps(marker).encode(), delivery)


def produce_record(producer: Producer, topic: str, partition: int, key: bytes, value: bytes | None,
             delivery: Delivery) -> None:
    produce_waiting(producer, topic, key=key, value=value, partition=partition,
                    on_delivery=delivery)
    delivery.sent += 1
