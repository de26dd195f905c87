"""Event-time order for one counting partition, whatever the speed of each source partition.

Entries reach a ``subject-events`` partition from every source partition
(``mail-events``, ``policy-events``), each source in its own order, the
sources interleaved however fast their routers read them. The engine must see
one subject's messages in event time, or a backlog read unevenly would count
differently from the same history replayed (and the idle sweep would drop a
subject whose older messages are still on their way from a slower source).

The method: each source's router stamps its batches with a *mark*, the event
time it has routed up to. The partition's *watermark* is the lowest mark over
all sources; an entry is held until the watermark reaches its time, then
applied in the order ``(ts, source topic, source partition, source offset,
subject)``. An entry that arrives below the watermark (a late one: a live
event stamped long ago, a source whose clock lags) is applied at once.

Crash safety without Kafka transactions (the brokers we test on do not hide
aborted records): the partition checkpoints, with its state, the *frontier*
(the greatest order key applied) and, per source, the offset up to which
that source's batches were read. After a restart the partition re-reads its
topic from the oldest entry still held at the checkpoint; an entry of an
already-read source offset was applied exactly when its key is at or below
the frontier (every held entry is above it, since entries are released in key
order and anything at or below the frontier is released at once). Routers
re-sending after their own crash are recognised the same way.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.engine.counting import CountedMail

Source = tuple[str, int]  # (topic, partition)
OrderKey = tuple[int, str, int, int, str]  # (ts, topic, partition, source offset, subject)


@dataclass(slots=True)
class Entry(CountedMail):
    """One message to count under one subject, and where it came from. The entry is the
    counted mail itself (its first fields are ``CountedMail``'s): a backlog holds hundreds
    of thousands of entries for event-time order, each one object instead of two (409 bytes
    a held entry instead of 449, ``test_counting_partition``; one object fewer for the
    garbage collector to walk). Built in the counting
    partition's hot path from a batch's fields; ``carrying`` builds one from a
    ``CountedMail``."""

    subject: str
    source: Source
    offset: int  # in its source partition
    event_hash: int
    record_offset: int  # of the subject-events record that carried it
    # a settings change instead of mail: the record's JSON, "" for a removal
    change: str | None = None

    @classmethod
    def carrying(cls, mail: CountedMail, subject: str, source: Source, offset: int,
                 event_hash: int, record_offset: int, change: str | None = None) -> Entry:
        return cls(mail.ts_ms, mail.flags, mail.recipients, mail.direction, mail.sender_domain,
                   subject, source, offset, event_hash, record_offset, change)

    @property
    def key(self) -> OrderKey:
        return (self.ts_ms, self.source[0], self.source[1], self.offset, self.subject)


@dataclass
class OrderCheckpoint:
    """What a counting partition persists with its state (see the module docstring)."""

    frontier: OrderKey | None = None
    read: dict[Source, int] = field(default_factory=dict)  # source -> offset read up to

    def to_json(self) -> dict[str, object]:
        return {"frontier": list(self.frontier) if self.frontier else None,
                "read": [[topic, partition, offset]
                         for (topic, partition), offset in sorted(self.read.items())]}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> OrderCheckpoint:
        """Raises ValueError for anything not written by ``to_json``."""
        try:
            raw: Any = data.get("frontier")
            frontier = None
            if raw is not None:
                frontier = (int(raw[0]), str(raw[1]), int(raw[2]), int(raw[3]), str(raw[4]))
            rows: Any = data.get("read") or []
            read = {(str(t), int(p)): int(o) for t, p, o in rows}
        except (TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"damaged order checkpoint: {exc}") from None
        return cls(frontier, read)


def _time(key: OrderKey) -> int:
    return key[0]


class EventOrder:
    """The held entries and the watermark of one counting partition."""

    def __init__(self, sources: Iterable[Source], checkpoint: OrderCheckpoint | None = None,
                 max_held: int = 500_000) -> None:
        checkpoint = checkpoint or OrderCheckpoint()
        self.frontier: OrderKey | None = checkpoint.frontier
        self.read: dict[Source, int] = dict(checkpoint.read)
        self._sources = set(sources)
        self._marks: dict[Source, int] = {}
        # Held entries by key; their keys in order, and those offered since the last release
        # (sorted into the others then: one sort of a nearly sorted list costs far fewer
        # comparisons than a heap's push and pop per entry, and a list of tuples of
        # ints and strings sorts with CPython's specialised comparisons).
        self._held: dict[OrderKey, Entry] = {}
        self._keys: list[OrderKey] = []
        self._new: list[OrderKey] = []
        self._max_held = max_held
        self.forced = 0  # entries released before the watermark because too many were held

    def expect(self, sources: Iterable[Source]) -> None:
        """Sources whose marks the watermark waits for (the source topics' partitions)."""
        self._sources.update(sources)

    def mark(self, source: Source, mark_ms: int | None) -> None:
        self._sources.add(source)
        if mark_ms is not None and mark_ms > self._marks.get(source, -1):
            self._marks[source] = mark_ms

    def watermark(self) -> int | None:
        """Event time up to which entries are applied; None until every source has a mark."""
        floor = self.frontier[0] if self.frontier else None
        if self._sources and all(s in self._marks for s in self._sources):
            lowest = min(self._marks[s] for s in self._sources)
            return lowest if floor is None else max(lowest, floor)
        return floor

    def offer(self, entry: Entry) -> None:
        """Hold a new entry (or one re-read after a restart); drop one already applied or held.
        An entry's key names it: the same source offset and subject are the same event."""
        key = entry.key
        if key in self._held:
            return
        if (entry.offset <= self.read.get(entry.source, -1)  # read before: applied, or held
                and self.frontier is not None and key <= self.frontier):
            return
        self._held[key] = entry
        self._new.append(key)

    def source_read(self, source: Source, upto: int) -> None:
        """Every entry of ``source`` up to offset ``upto`` has been offered."""
        if upto > self.read.get(source, -1):
            self.read[source] = upto

    def release(self) -> list[Entry]:
        """The entries now due, in order; the frontier moves to the last of them."""
        keys = self._keys
        if self._new:
            keys += self._new
            keys.sort()
            self._new = []
        if not keys:
            return []
        watermark = self.watermark()
        due = 0 if watermark is None else bisect_right(keys, watermark, key=_time)
        excess = len(keys) - due - self._max_held
        if excess > 0:  # too many held: the oldest go, and all others of their time
            floor = keys[due + excess - 1][0]
            forced_to = bisect_right(keys, floor, key=_time)
            self.forced += forced_to - due
            due = forced_to
        if not due:
            return []
        held = self._held
        out = [held.pop(key) for key in keys[:due]]
        if self.frontier is None or keys[due - 1] > self.frontier:
            self.frontier = keys[due - 1]
        del keys[:due]
        return out

    @property
    def held(self) -> int:
        return len(self._held)

    def oldest_record(self) -> int | None:
        """The lowest subject-events offset among held entries: where to re-read from."""
        return min((e.record_offset for e in self._held.values()), default=None)

    def checkpoint(self) -> OrderCheckpoint:
        return OrderCheckpoint(self.frontier, dict(self.read))
