"""One counting partition (of ``subject-events``): its records in, counts and actions out.

It joins the three pieces that hold a partition's state: the event-time
order (``event_order``), the store (``partition_store``) and the counter
(``counter``), and knows the two kinds of record the partition carries:
``SubjectBatch`` (routed mail and marks) and lifts. Kafka stays outside:
the counting loop hands records in and writes checkpoints out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.engine.counting import CountedMail
from pipeline.streaming.counter import SubjectCounter
from pipeline.streaming.event_order import Entry, EventOrder
from pipeline.streaming.partition_store import PartitionStore
from schemas.events import ActionEvent
from schemas.subject_batch import BATCH_KIND, LIFT_KIND, SPAM_FLAG, SubjectBatch

OnError = Callable[[Entry, str], None]


@dataclass
class CountingPartition:
    number: int
    store: PartitionStore
    order: EventOrder
    counter: SubjectCounter
    lift_offset: int = -1  # lifts at or below this offset were applied
    next_offset: int | None = None  # after the last record read
    touched: bool = False  # read anything since the last checkpoint

    def take(self, offset: int, kind: bytes | None, key: bytes, value: bytes) -> bool:
        """One record; True when it was routed mail (``release`` may have work).

        Raises ValueError (or ValidationError) for a record to set aside.
        """
        self.next_offset, self.touched = offset + 1, True
        if kind == BATCH_KIND:
            self._offer(offset, SubjectBatch.model_validate_json(value))
            return True
        if kind == LIFT_KIND:
            if offset > self.lift_offset:
                self.counter.lift(key, ActionEvent.model_validate_json(value))
                self.lift_offset = offset
            return False
        raise ValueError(f"unknown record kind {kind!r:.40}")

    def _offer(self, offset: int, batch: SubjectBatch) -> None:
        source = (batch.source_topic, batch.source_partition)
        order = self.order
        for subject, source_offset, ts_ms, flags, recipients, digest, direction, domain \
                in batch.entries:
            order.offer(Entry(subject, source, source_offset, digest,
                              CountedMail(ts_ms, bool(flags & SPAM_FLAG), recipients, direction,
                                          domain), offset))
        order.source_read(source, batch.upto)
        order.mark(source, batch.mark_ms)

    def release(self, on_error: OnError) -> list[Entry]:
        """Count what the watermark releases; entries that fail go to ``on_error``."""
        count = self.counter.count
        released = self.order.release()
        for entry in released:
            try:
                count(entry)
            except ValueError as exc:
                on_error(entry, str(exc))
        return released

    def marker(self) -> dict[str, Any]:
        """What the changelog's checkpoint marker records for this partition."""
        oldest = self.order.oldest_record()
        return {"v": 1, "resume": oldest if oldest is not None else self.next_offset,
                "lift_offset": self.lift_offset, "order": self.order.checkpoint().to_json()}
