"""What a counting partition does with its entries, lifts and ticks (no Kafka here).

* entry: count the message under its subject (the pure engine) by the
  subject's settings (class, overrides, exemption: kept in the partition's
  store), remember the actions that fire until they end, publish them; an
  entry that carries new settings replaces the subject's;
* lift: an operator lifted an action; forget it and restart the subject's
  counting for that threshold, so the burst that caused it does not hit again;
* tick: publish the ``expired`` state of actions whose end the partition's
  watermark has passed, and drop subjects that have gone idle, a slice at a
  time, so the store does not grow forever.

Time for ticks is the partition's watermark (``event_order``): no subject is
dropped while one of its messages can still be on its way from a slower
source partition, and a replayed history runs its own windows and expiries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.engine.actions import expired
from pipeline.engine.evaluator import Pruned, Subject, ThresholdEngine, only_learnt
from pipeline.streaming.event_order import Entry
from pipeline.streaming.state import stored_state
from pipeline.streaming.state.partition_store import PartitionStore
from pipeline.streaming.state.table_layout import (
    EXPIRY_PREFIX,
    FIRST_SUBJECT_KEY,
    expiry_bound,
    expiry_key,
    parse_expiry_key,
)
from schemas.events import ActionEvent
from schemas.subjects import split_subject_key
from schemas.time_ms import to_ms
from schemas.vocabulary import ActionState

log = logging.getLogger("floodgate.worker")

EXPIRE_BATCH = 1_000  # due actions handled per tick and partition
SWEEP_BATCH = 500  # subjects looked at per tick and partition (1M subjects, 12 partitions: 3 min)
PARSED_SUBJECTS = 10_000  # parsed keys kept (~300 B each): hot subjects repeat, the rest re-parse

Publish = Callable[[ActionEvent], None]


@dataclass
class TickReport:
    expired: int = 0
    swept: int = 0
    dropped: int = 0


def parse_subject(key: str) -> Subject:
    """The subject of a ``type:value`` key; ValueError for anything else."""
    return Subject(*split_subject_key(key))


class SubjectCounter:
    def __init__(self, engine: ThresholdEngine, store: PartitionStore, publish: Publish) -> None:
        self.engine, self._store, self._publish = engine, store, publish
        self._sweep_from = FIRST_SUBJECT_KEY
        self._subjects: dict[str, Subject] = {}

    def count(self, entry: Entry) -> None:
        """Count one entry; raises ValueError for a bad subject key or damaged stored state."""
        subject = self._subjects.get(entry.subject)
        if subject is None:
            if len(self._subjects) >= PARSED_SUBJECTS:
                self._subjects.clear()
            subject = self._subjects[entry.subject] = parse_subject(entry.subject)
        key = entry.subject.encode()
        if entry.change is not None:
            self._store.set_settings(key, entry.change.encode() if entry.change else None)
            return
        stored = self._store.load(key)
        if stored.seen_hash(entry.event_hash):
            self._store.changed(key)
            return
        fired = self.engine.apply(subject, stored.state, entry, self._store.settings(key))
        for action in fired:
            stored.actions.append(action.model_dump_json().encode())
            self._store.put_raw(expiry_key(to_ms(action.expires_at), key), b"1")
        self._store.changed(key)
        for action in fired:
            self._publish(action)

    def lift(self, key: bytes, lift: ActionEvent) -> None:
        """Apply an operator's lift; raises ValueError for a record that is not one."""
        parse_subject(key.decode("utf-8", "replace"))
        if lift.state is not ActionState.LIFTED:
            raise ValueError(f"not a lift: state {lift.state}")
        stored = self._store.load(key)
        if lift.threshold:  # operators' own actions have no threshold to restart
            self.engine.lift(stored.state, lift.threshold, reset=lift.reset)
        stored.actions = [raw for raw in stored.actions
                          if ActionEvent.model_validate_json(raw).action_id != lift.action_id]
        self._store.changed(key)

    def tick(self, now_ms: int, counted_ms: int | None) -> TickReport:
        """Expire as of ``now_ms`` (the watermark); sweep as of the newest time counted here
        (``counted_ms``), never later: history arriving in bursts, long after its time, must
        not be swept between bursts. Reads the last checkpoint."""
        report = TickReport(expired=self._expire(now_ms))
        if counted_ms is not None:
            report.swept, report.dropped = self._sweep(min(now_ms, counted_ms))
        return report

    def _expire(self, now: int) -> int:
        bound = expiry_bound(now)
        due: list[bytes] = []
        for index_key, _ in self._store.scan(EXPIRY_PREFIX):
            if index_key >= bound or len(due) >= EXPIRE_BATCH:
                break
            due.append(index_key)
        count = 0
        for index_key in due:
            _, key = parse_expiry_key(index_key)
            try:
                count += self._expire_subject(key, now)
            except ValueError as exc:
                log.error("cannot expire the actions of %r: %s", key[:200], exc)
            self._store.put_raw(index_key, None)
        return count

    def _expire_subject(self, key: bytes, now: int) -> int:
        stored = self._store.load(key)
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
        self._store.changed(key)
        for action in ended:
            self._publish(expired(action))
        return len(ended)

    def _sweep(self, now: int) -> tuple[int, int]:
        """Look at the next slice of subjects; drop those that can no longer matter."""
        idle, seen, last = [], 0, None
        for key, value in self._store.scan(self._sweep_from):
            if seen >= SWEEP_BATCH:
                break
            seen, last = seen + 1, key
            try:
                stored = self._store.cached(key) or stored_state.unpack(value)
            except ValueError:
                continue  # reported when its subject is next counted
            if stored.actions:
                continue
            pruned = self.engine.prune(stored.state, now)
            if pruned is Pruned.GONE:
                idle.append(key)
            elif pruned is Pruned.CHANGED:  # cut down to what baselines learnt: store that
                loaded = self._store.load(key)
                self.engine.prune(loaded.state, now)
                if only_learnt(loaded.state):
                    loaded.forget_recent()
                self._store.changed(key)
        # A short slice reached the end of the partition: start again from the top.
        self._sweep_from = (last + b"\x00" if last is not None and seen >= SWEEP_BATCH
                            else FIRST_SUBJECT_KEY)
        for key in idle:
            self._store.delete(key)
        return seen, len(idle)
