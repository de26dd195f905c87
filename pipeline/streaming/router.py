"""The worker's router: source records -> ``SubjectBatch`` records, one per counting partition.

A mail event (or a delivery attempt, when a threshold counts them) counts
under up to one subject per key dimension (account, sender, domain, client
address); each subject's state lives in the
``subject-events`` partition its key hashes to (murmur2, as Kafka's Java
client and aiokafka hash keys, so an operator's lift keyed by the subject
reaches the same partition). The router reduces each message to what
counting needs (``SubjectEntry``) and collects the entries of one cycle by
(counting partition, source partition); ``batches`` turns them into records,
each stamped with its source's mark (see ``schemas/subject_batch.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from connectors.kafka.key_partition import partition_of
from connectors.postfix_policy.counting_source import mail_event_from_policy
from pipeline.engine.counting import CountedMail, unit_id
from pipeline.engine.customisation import Customisation
from pipeline.engine.evaluator import ThresholdEngine
from pipeline.streaming.event_order import Source
from pipeline.streaming.state.stored_state import id_hash
from schemas.direction import DirectionRules
from schemas.events import DeliveryEvent, MailEvent, PolicyEvent
from schemas.mail_facts import MailFacts, read_mail_facts
from schemas.subject_batch import SettingsEntry, SubjectBatch, SubjectEntry
from schemas.subject_settings import SubjectSettings
from schemas.subjects import split_subject_key
from schemas.time_ms import to_ms

MARK_EVERY_MS = 100  # a source's mark alone goes to every counting partition this often at most
RECORD_BYTES = 524_288  # of a SubjectBatch record at most: half Kafka's default limit
_PARTITION_CACHE = 65_536  # hot keys repeat; a bigger cache costs memory (~120 B a key), not time


class SubjectPartitioner:
    """The ``subject-events`` partition of a subject key (murmur2, cached: hot keys repeat)."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._cache: dict[str, int] = {}

    def __call__(self, key: str) -> int:
        partition = self._cache.get(key)
        if partition is None:
            if len(self._cache) >= _PARTITION_CACHE:
                self._cache.clear()
            partition = self._cache[key] = partition_of(key.encode(), self.partitions)
        return partition


@dataclass
class _Progress:
    """How far the router has read one source partition."""

    upto: int = -1  # last offset routed
    mark_ms: int | None = None  # newest event time routed
    caught_up: bool = False  # read to the end, nothing since
    sent_mark: int | None = None
    sent_wall_ms: int = 0


@dataclass
class Router:
    engine: ThresholdEngine
    partitioner: SubjectPartitioner
    # a caught-up mail source's mark trails the wall clock by this much; a settings source's
    # does not: an operator's change is no mail server's late log line, and its partitions,
    # idle almost always, would hold every count back by as much (p50 detection 1.17 s)
    lateness_ms: int
    directions: DirectionRules | None = None  # set: policy events count too
    policy_topic: str | None = None
    delivery_topic: str | None = None  # set: delivery attempts count too
    settings_topic: str | None = None  # subjects' settings, routed with their counts
    _progress: dict[Source, _Progress] = field(default_factory=dict)
    _pending: dict[tuple[int, Source], list[Any]] = field(
        default_factory=lambda: defaultdict(list))
    _settings: dict[tuple[int, Source], list[Any]] = field(
        default_factory=lambda: defaultdict(list))

    def _progress_of(self, source: Source, offset: int) -> _Progress:
        progress = self._progress.get(source)
        if progress is None:
            progress = self._progress[source] = _Progress()
        progress.caught_up = False
        progress.upto = max(progress.upto, offset)
        return progress

    def route_settings(self, source: Source, offset: int, key: bytes | None,
                       value: bytes | None, timestamp_ms: int) -> None:
        """Route one subject-settings record to its subject's counting partition; raises
        ValueError (ValidationError) for a bad one. A record applies from its ``at``; a
        tombstone, which has none, from its Kafka timestamp."""
        progress = self._progress_of(source, offset)
        subject = (key or b"").decode("utf-8", "replace")
        split_subject_key(subject)  # ValueError for a key that is no subject
        record = None
        ts_ms = timestamp_ms
        if value is not None:
            settings = SubjectSettings.model_validate_json(value)
            if settings.subject != subject:
                raise ValueError(f"the record is for {settings.subject[:200]!r}, its key "
                                 f"{subject[:200]!r}")
            ts_ms, record = to_ms(settings.at), Customisation.of(settings).encode().decode()
        ts_ms = max(ts_ms, 0)
        self._advance(progress, ts_ms)
        self._settings[(self.partitioner(subject), source)].append(
            SettingsEntry(subject, offset, ts_ms, record))

    def route(self, source: Source, offset: int, value: bytes | None, key: bytes | None = None,
              timestamp_ms: int = 0) -> None:
        """Route one source record; raises ValueError (ValidationError) for a bad one."""
        if source[0] == self.settings_topic:
            self.route_settings(source, offset, key, value, timestamp_ms)
            return
        value = value or b""
        progress = self._progress_of(source, offset)
        event: MailFacts | MailEvent | DeliveryEvent | None
        if source[0] == self.policy_topic and self.directions is not None:
            request = PolicyEvent.model_validate_json(value)
            self._advance(progress, to_ms(request.ts))  # the source reached it, counted or not
            event = mail_event_from_policy(request, self.directions)
            if event is None:
                return
        elif source[0] == self.delivery_topic:
            event = DeliveryEvent.model_validate_json(value)
        else:
            event = read_mail_facts(value)
        unit = CountedMail.of(event)
        self._advance(progress, unit.ts_ms)
        subjects = self.engine.subject_keys(event, unit)
        if not subjects:
            return
        digest = id_hash(unit_id(event))
        pending, partitioner = self._pending, self.partitioner
        ts_ms, flags, recipients = unit.ts_ms, unit.flags, unit.recipients
        for subject in subjects:
            pending[(partitioner(subject), source)].append(SubjectEntry(
                subject, offset, ts_ms, flags, recipients, digest, unit.direction,
                unit.sender_domain))

    @staticmethod
    def _advance(progress: _Progress, ts_ms: int) -> None:
        if progress.mark_ms is None or ts_ms > progress.mark_ms:
            progress.mark_ms = ts_ms

    def skipped(self, source: Source, offset: int) -> None:
        """A record that was set aside (dead-lettered): routed as far as progress goes."""
        progress = self._progress.setdefault(source, _Progress())
        progress.upto = max(progress.upto, offset)

    def at_end(self, source: Source) -> None:
        """The consumer reached the end of ``source``."""
        self._progress.setdefault(source, _Progress()).caught_up = True

    def forget(self, sources: list[Source]) -> None:
        """Revoked sources: their progress and unsent entries go (the next owner reads them
        again from the committed offset)."""
        gone = set(sources)
        for source in gone:
            self._progress.pop(source, None)
        for pending in (self._pending, self._settings):
            for pair in [pair for pair in pending if pair[1] in gone]:
                del pending[pair]

    def ahead(self, assigned: Iterable[Source], lead_ms: int) -> set[Source]:
        """Of the ``assigned`` sources, those whose mark runs more than ``lead_ms`` ahead of
        the slowest one still being read. While one of them has given no event time yet,
        every source that has is ahead: the broker may serve one partition's backlog whole
        before the next (Tansu does), and what is read ahead is held until the rest comes."""
        marks: dict[Source, int] = {}
        unknown = False
        for source in assigned:
            progress = self._progress.get(source)
            if progress is not None and progress.caught_up:
                continue  # nothing left to read: it holds nobody back
            if progress is None or progress.mark_ms is None:
                unknown = True
            else:
                marks[source] = progress.mark_ms
        if unknown or not marks:
            return set(marks)
        floor = min(marks.values()) + lead_ms
        return {source for source, mark in marks.items() if mark > floor}

    def position(self, source: Source) -> int | None:
        """The next offset to read (what to commit); None when nothing was read."""
        progress = self._progress.get(source)
        return None if progress is None or progress.upto < 0 else progress.upto + 1

    def sources(self) -> list[Source]:
        return list(self._progress)

    def batches(self, wall_ms: int) -> list[Routed]:
        """This cycle's batches, each with its record: every entry, and marks that moved.
        What one source sends one partition in a cycle may take several (``_records``)."""
        out: list[Routed] = []
        for source, progress in self._progress.items():
            mark = progress.mark_ms
            if progress.caught_up:
                live = wall_ms - (0 if source[0] == self.settings_topic else self.lateness_ms)
                mark = live if mark is None else max(mark, live)
            send_marks = mark is not None and mark != progress.sent_mark and (
                wall_ms - progress.sent_wall_ms >= MARK_EVERY_MS)
            for partition in range(self.partitioner.partitions):
                entries = self._pending.pop((partition, source), None)
                settings = self._settings.pop((partition, source), None)
                if entries is None and settings is None and not send_marks:
                    continue
                out += [Routed(partition, batch, record) for batch, record in _records(
                    source, progress.upto, mark, entries or [], settings or [])]
            if send_marks:
                progress.sent_mark, progress.sent_wall_ms = mark, wall_ms
        return out


class Routed(NamedTuple):
    """A batch for counting partition ``partition``, and its record's value."""

    partition: int
    batch: SubjectBatch
    record: bytes


def _records(source: Source, upto: int, mark: int | None, entries: list[Any],
             settings: list[Any]) -> list[tuple[SubjectBatch, bytes]]:
    """One source's entries (or settings: a source carries one kind) for one partition, as
    batches of at most ``RECORD_BYTES`` of JSON: Kafka limits a record's size (1 MB by
    default), and a cycle of 5,000 records of one hot domain, or of settings, can pass it.
    A batch too large is cut in two between two source offsets, never inside one; only the
    last carries the mark and the whole ``upto``, an earlier one the offset before its
    successor's first: every entry up to its ``upto`` is in it or before it, as
    ``event_order`` relies on after a crash between two of them."""
    out: list[tuple[SubjectBatch, bytes]] = []
    for items in [items for items in (entries, settings) if items] or [[]]:
        out += _cut(source, upto, mark, items, items is settings)
    for number in range(len(out) - 1):  # only the last batch says where the source is
        batch, following = out[number][0], out[number + 1][0]
        first = (following.entries or following.settings)[0][1]
        out[number] = _record(source, min(upto, first - 1), None,
                              batch.settings or batch.entries, bool(batch.settings))
    return out


def _cut(source: Source, upto: int, mark: int | None, items: list[Any],
         settings: bool) -> list[tuple[SubjectBatch, bytes]]:
    whole = _record(source, upto, mark, items, settings)
    if len(whole[1]) <= RECORD_BYTES:
        return [whole]
    middle = len(items) // 2
    offset = items[middle][1]
    while middle and items[middle - 1][1] == offset:  # back to the first of its offset
        middle -= 1
    if not middle:  # the first offset's items fill the first half: cut after them
        middle = next((n for n, item in enumerate(items) if item[1] != offset), len(items))
    if middle == len(items):
        return [whole]  # one message's entries: never this large (a record of ~5 subjects)
    return (_cut(source, upto, mark, items[:middle], settings)
            + _cut(source, upto, mark, items[middle:], settings))


def _record(source: Source, upto: int, mark: int | None, items: list[Any],
            settings: bool) -> tuple[SubjectBatch, bytes]:
    # our own output, already valid: no second validation on the hot path
    batch = SubjectBatch.model_construct(
        source_topic=source[0], source_partition=source[1], upto=upto, mark_ms=mark,
        entries=[] if settings else items, settings=items if settings else [])
    return batch, batch.model_dump_json().encode()
