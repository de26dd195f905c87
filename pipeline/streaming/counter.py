"""What the ``count`` agent does with each record of one ``subject-events`` partition.

Three kinds of record arrive, in partition order:

* mail: count it under its subject (the pure engine), remember the actions
  that fire until they end, publish them;
* lift: an operator lifted an action; forget it and restart the subject's
  counting for that threshold, so the burst that caused it does not hit again;
* tick: a timer's record, per partition every ``worker.tick_interval_s``. It publishes the
  ``expired`` state of actions whose end has passed and drops subjects that
  have gone idle, a slice at a time, so the table does not grow forever.

Time for ticks is the partition's clock (``partition_clock``): event time,
carried forward at the wall clock's pace while the partition is quiet.

The state lives in a mapping (the Faust table in the worker, a dict in
tests); ``scan`` reads one partition's keys in order from a start key.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass

from pipeline.engine.actions import expired
from pipeline.engine.clock import to_ms
from pipeline.engine.evaluator import Subject, ThresholdEngine
from pipeline.streaming import stored_state
from pipeline.streaming.partition_clock import PartitionClock
from pipeline.streaming.stored_state import StoredState
from pipeline.streaming.table_layout import (
    CLOCK_KEY,
    EXPIRY_PREFIX,
    FIRST_SUBJECT_KEY,
    expiry_bound,
    expiry_key,
    parse_expiry_key,
)
from schemas.events import ActionEvent, MailEvent
from schemas.vocabulary import ActionState, SubjectType

log = logging.getLogger("floodgate.worker")

EXPIRE_BATCH = 1_000  # due actions handled per tick and partition
SWEEP_BATCH = 500  # subjects looked at per tick and partition (1M subjects in 12 partitions: 3 min a pass)
REPUBLISHED_LIMIT = 100_000

Scan = Callable[[int, bytes], Iterator[tuple[bytes, bytes]]]
Publish = Callable[[ActionEvent], Awaitable[None]]


@dataclass
class TickReport:
    expired: int = 0
    swept: int = 0
    dropped: int = 0


def parse_subject(key: bytes) -> Subject:
    """The subject of a ``type:value`` key; ValueError for anything else."""
    kind, sep, value = key.decode("utf-8", "replace").partition(":")
    if not sep or not value:
        raise ValueError(f"not a subject key: {key[:80]!r}")
    return Subject(SubjectType(kind), value)


class SubjectCounter:
    def __init__(self, engine: ThresholdEngine, states: MutableMapping[bytes, bytes],
                 scan: Scan, publish: Publish, wall_ms: Callable[[], int]) -> None:
        self._engine, self._states, self._scan = engine, states, scan
        self._publish, self._wall_ms = publish, wall_ms
        self._clocks: dict[int, PartitionClock] = {}
        self._sweep_from: dict[int, bytes] = {}
        self._republished: set[bytes] = set()

    async def on_mail(self, partition: int, offset: int, key: bytes, value: bytes) -> None:
        """Count one mail record; raises ValueError (or ValidationError) for a bad one."""
        subject = parse_subject(key)
        mail = MailEvent.model_validate_json(value)
        stored = self._load(key)
        self._clock(partition).observe(to_ms(mail.ts), self._wall_ms())
        if offset <= stored.offset:
            await self._republish(key, stored)  # replayed after a crash: already counted
            return
        fired = [] if stored.seen(mail.event_id) else self._engine.observe(subject, stored.state, mail)
        stored.offset = offset
        for action in fired:
            stored.actions.append(action.model_dump_json().encode())
            self._states[expiry_key(to_ms(action.expires_at), key)] = b"1"
        self._states[key] = stored_state.pack(stored)
        for action in fired:
            await self._publish(action)

    def on_lift(self, offset: int, key: bytes, value: bytes) -> None:
        """Apply an operator's lift; raises ValueError (or ValidationError) for a bad record."""
        parse_subject(key)
        lift = ActionEvent.model_validate_json(value)
        if lift.state is not ActionState.LIFTED:
            raise ValueError(f"not a lift: state {lift.state}")
        stored = self._load(key)
        if offset <= stored.offset:
            return
        if lift.threshold:  # operators' own actions have no threshold to restart
            self._engine.lift(stored.state, lift.threshold)
        stored.actions = [raw for raw in stored.actions
                          if ActionEvent.model_validate_json(raw).action_id != lift.action_id]
        stored.offset = offset
        self._states[key] = stored_state.pack(stored)

    async def on_tick(self, partition: int) -> TickReport:
        report = TickReport()
        clock = self._clock(partition)
        if not clock.started:
            return report  # nothing counted here yet
        now = clock.now(self._wall_ms())
        report.expired = await self._expire(partition, now)
        report.swept, report.dropped = self._sweep(partition, now)
        self._states[CLOCK_KEY] = clock.pack()
        return report

    def _load(self, key: bytes) -> StoredState:
        return stored_state.unpack(self._states.get(key))

    def _clock(self, partition: int) -> PartitionClock:
        clock = self._clocks.get(partition)
        if clock is None:
            # A worker taking the partition over carries on from the clock saved there.
            clock = self._clocks[partition] = PartitionClock.unpack(self._states.get(CLOCK_KEY))
        return clock

    async def _republish(self, key: bytes, stored: StoredState) -> None:
        if key in self._republished or not stored.actions:
            return
        if len(self._republished) >= REPUBLISHED_LIMIT:
            self._republished.clear()
        self._republished.add(key)
        for raw in stored.actions:
            await self._publish(ActionEvent.model_validate_json(raw))

    async def _expire(self, partition: int, now: int) -> int:
        bound = expiry_bound(now)
        due: list[bytes] = []
        for index_key, _ in self._scan(partition, EXPIRY_PREFIX):
            if index_key >= bound or len(due) >= EXPIRE_BATCH:
                break
            due.append(index_key)
        count = 0
        for index_key in due:
            _, key = parse_expiry_key(index_key)
            try:
                count += await self._expire_subject(key, now)
            except ValueError as exc:
                log.error("cannot expire the actions of %r: %s", key[:200], exc)
            del self._states[index_key]
        return count

    async def _expire_subject(self, key: bytes, now: int) -> int:
        stored = self._load(key)
        keep, ended = [], []
        for raw in stored.actions:
            action = ActionEvent.model_validate_json(raw)
            if to_ms(action.expires_at) <= now:
                ended.append(action)
            else:
                keep.append(raw)
        if not ended:
            return 0  # lifted, or already expired by an earlier tick
        stored.actions = keep
        self._states[key] = stored_state.pack(stored)
        for action in ended:
            await self._publish(expired(action))
        return len(ended)

    def _sweep(self, partition: int, now: int) -> tuple[int, int]:
        """Look at the next slice of subjects; drop those that can no longer matter."""
        start = self._sweep_from.get(partition, FIRST_SUBJECT_KEY)
        idle, seen, last = [], 0, None
        for key, value in self._scan(partition, start):
            if seen >= SWEEP_BATCH:
                break
            seen, last = seen + 1, key
            try:
                stored = stored_state.unpack(value)
            except ValueError:
                continue  # reported when its subject is next counted
            if not stored.actions and self._engine.prune(stored.state, now):
                idle.append(key)
        # A short slice reached the end of the partition: start again from the top.
        self._sweep_from[partition] = (last + b"\x00" if last is not None and seen >= SWEEP_BATCH
                                       else FIRST_SUBJECT_KEY)
        for key in idle:
            del self._states[key]
        return seen, len(idle)
