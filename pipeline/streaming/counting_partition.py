"""One counting partition (of ``subject-events``): its records in, counts and actions out.

It joins the three pieces that hold a partition's state: the event-time
order (``event_order``), the store (``partition_store``) and the counter
(``counter``), and knows the two kinds of record the partition carries:
``SubjectBatch`` (routed mail and marks) and lifts. Kafka stays outside:
the counting loop hands records in and writes checkpoints out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.streaming.counter import SubjectCounter
from pipeline.streaming.event_order import Entry, EventOrder, Source
from pipeline.streaming.state.partition_store import PartitionStore
from schemas.events import ActionEvent
from schemas.subject_batch import BATCH_KIND, LIFT_KIND, SubjectBatch

OnError = Callable[[Entry, str], None]
PENDING = -1  # record offset of an entry taken from this worker's router before Kafka had it


@dataclass
class CountingPartition:
    number: int
    store: PartitionStore
    order: EventOrder
    counter: SubjectCounter
    lift_offset: int = -1  # lifts at or below this offset were applied
    next_offset: int | None = None  # after the last record read
    touched: bool = False  # read anything since the last checkpoint
    next_tick: float = 0.0  # when its expiries and sweep are next due (monotonic seconds)
    # tags (``ROUTED_HEADER``) of batches taken from this worker's router (``route``):
    # skipped unparsed when Kafka gives them back
    _taken_early: set[bytes] = field(default_factory=set)
    # per source: the tag of the last batch this worker sent through Kafka, not read back
    # yet, and the sources whose batches may be taken early (see ``route``)
    _awaited: dict[Source, bytes] = field(default_factory=dict)
    _in_step: set[Source] = field(default_factory=set)

    def take(self, offset: int, kind: bytes | None, key: bytes, value: bytes,
             routed: bytes | None = None) -> bool:
        """One record; True when it was routed mail (``release`` may have work).

        Raises ValueError (or ValidationError) for a record to set aside.
        """
        self.next_offset, self.touched = offset + 1, True
        if kind == BATCH_KIND:
            if routed is not None and routed in self._taken_early:
                self._taken_early.discard(routed)
                return False
            batch = SubjectBatch.model_validate_json(value)
            self._offer(offset, batch)
            source = (batch.source_topic, batch.source_partition)
            if routed is not None and self._awaited.get(source) == routed:
                del self._awaited[source]  # all of the source before it has been read too
                self._in_step.add(source)
            return True
        if kind == LIFT_KIND:
            if offset > self.lift_offset:
                self.counter.lift(key, ActionEvent.model_validate_json(value))
                self.lift_offset = offset
            return False
        raise ValueError(f"unknown record kind {kind!r:.40}")

    # -- batches taken early --------------------------------------------------------------
    # The event order takes one source's entries in offset order (``event_order``): an
    # entry of an offset already read counts as applied once the frontier has passed it.
    # A batch taken early overtakes whatever of its source is still on its way through
    # Kafka (this worker's own batches sent that way, a former router's last ones), so a
    # source's batches are taken early only once the partition has read back the last
    # batch this worker sent it through Kafka: everything of that source before it in the
    # partition's log has been read by then.

    def route(self, batch: SubjectBatch, routed: bytes, live: bool) -> list[Entry] | None:
        """A batch of this worker's router (tagged ``routed``), on its way to this partition:
        taken at once when ``live`` and its source allows it (its entries returned), else
        left to arrive through Kafka (None).

        A batch taken at once skips the round trip through Kafka: on live traffic that round
        trip was most of the detection time. Its entries' record offset is ``PENDING``
        until ``routed_delivered``; the checkpoint waits for every delivery, so a marker
        never names a pending one. The copy Kafka gives back is skipped by its tag."""
        source = (batch.source_topic, batch.source_partition)
        if not (live and source in self._in_step):  # the source waits for this one to come back
            self._awaited[source] = routed
            self._in_step.discard(source)
            return None
        self.touched = True
        self._taken_early.add(routed)
        return self._offer(PENDING, batch)

    def forget_source(self, source: Source) -> None:
        """The source went to another router: its batches reach this partition from Kafka."""
        self._awaited.pop(source, None)
        self._in_step.discard(source)

    @staticmethod
    def routed_delivered(offset: int, entries: list[Entry]) -> None:
        """Kafka stored the batch ``entries`` came in at ``offset``."""
        for entry in entries:
            entry.record_offset = offset

    def _offer(self, offset: int, batch: SubjectBatch) -> list[Entry]:
        source = (batch.source_topic, batch.source_partition)
        order = self.order
        # Entry's fields: the CountedMail's (ts_ms, flags, recipients, direction, domain), then
        # subject, source, source offset, event hash, record offset (and a settings change)
        entries = [Entry(ts_ms, flags, recipients, direction, domain, subject, source,
                         source_offset, digest, offset)
                   for subject, source_offset, ts_ms, flags, recipients, digest, direction,
                   domain in batch.entries]
        entries += [Entry(ts_ms, 0, 1, "", None, subject, source, source_offset, 0, offset,
                          record or "")
                    for subject, source_offset, ts_ms, record in batch.settings]
        for entry in entries:
            order.offer(entry)
        order.source_read(source, batch.upto)
        order.mark(source, batch.mark_ms)
        return entries

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
