"""The count agent's record handling on a dict-backed table: counting as the replay does,
expiry on the partition clock, lifts, idle subjects swept, republication after a crash."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from pipeline.engine.clock import to_ms
from pipeline.engine.evaluator import ThresholdEngine
from pipeline.replay import replay
from pipeline.streaming import counter as counter_module
from pipeline.streaming.counter import SubjectCounter
from pipeline.streaming.table_layout import EXPIRY_PREFIX, is_subject_key
from schemas.config import FloodgateConfig
from schemas.events import ActionEvent, MailEvent
from schemas.vocabulary import ActionState
from tests.pipeline.engine.builders import T0, config, mail, threshold

WALL_T0 = to_ms(T0)


class Harness:
    def __init__(self, cfg: FloodgateConfig) -> None:
        self.engine = ThresholdEngine(cfg)
        self.table: dict[bytes, bytes] = {}
        self.published: list[ActionEvent] = []
        self.wall = WALL_T0
        self.offset = 0
        self.counter = SubjectCounter(self.engine, self.table, self._scan, self._publish,
                                      lambda: self.wall)

    def _scan(self, partition: int, start: bytes) -> Iterator[tuple[bytes, bytes]]:
        return iter(sorted((k, v) for k, v in self.table.items() if k >= start))

    async def _publish(self, action: ActionEvent) -> None:
        self.published.append(action)

    def feed(self, events: list[MailEvent]) -> None:
        for event in events:
            for subject in self.engine.subjects(event):
                self.offset += 1
                asyncio.run(self.counter.on_mail(0, self.offset, subject.key.encode(),
                                                 event.model_dump_json().encode()))

    def tick(self) -> counter_module.TickReport:
        return asyncio.run(self.counter.on_tick(0))

    def subjects(self) -> list[bytes]:
        return sorted(k for k in self.table if is_subject_key(k))


def burst(user: str, n: int, start_ms: int = 0, every_ms: int = 100) -> list[MailEvent]:
    return [mail(start_ms + i * every_ms, sasl_username=user, sender=f"{user}@example.net")
            for i in range(n)]


CONFIG = config(threshold(name="burst", messages=5, window="10s", duration="1m"))


def test_counts_fire_the_same_actions_as_the_replay() -> None:
    harness = Harness(CONFIG)
    events = sorted(burst("a", 12) + burst("b", 4) + burst("c", 6, 50), key=lambda e: e.ts)
    harness.feed(events)
    expected = [a for a in replay(CONFIG, events) if a.state is ActionState.ACTIVE]
    assert [a.action_id for a in harness.published] == [a.action_id for a in expected]
    assert len(expected) == 2


def test_actions_expire_on_the_partition_clock_once() -> None:
    harness = Harness(CONFIG)
    harness.feed(burst("a", 5))
    fired = harness.published[-1]
    harness.wall += 59_000  # the clock has moved 59 s past the last event: not yet
    assert harness.tick().expired == 0
    harness.wall += 2_000
    assert harness.tick().expired == 1
    last = harness.published[-1]
    assert (last.action_id, last.state, last.ts) == (fired.action_id, ActionState.EXPIRED,
                                                     fired.expires_at)
    assert not any(k.startswith(EXPIRY_PREFIX) for k in harness.table)
    harness.wall += 60_000
    assert harness.tick().expired == 0


def test_replayed_history_does_not_expire_by_the_wall_clock() -> None:
    harness = Harness(CONFIG)
    harness.wall = WALL_T0 + 86_400_000  # a day later, replaying T0's events
    harness.feed(burst("a", 5))
    assert harness.tick().expired == 0  # the action lasts 1 min of event time
    harness.feed(burst("z", 1, start_ms=70_000))  # the replay moves past its end
    assert harness.tick().expired == 1


def test_a_lift_ends_the_action_and_restarts_the_count() -> None:
    harness = Harness(CONFIG)
    harness.feed(burst("a", 5))
    fired = harness.published[-1]
    lift = fired.model_copy(update={"state": ActionState.LIFTED})
    harness.offset += 1
    harness.counter.on_lift(harness.offset, fired.key.encode(), lift.model_dump_json().encode())
    harness.feed(burst("a", 4, start_ms=1_000))  # 4 more inside the window: not 5 since the lift
    assert len(harness.published) == 1
    harness.wall += 120_000
    assert harness.tick().expired == 0  # lifted: no expiry follows


def test_idle_subjects_are_swept_and_busy_ones_kept() -> None:
    harness = Harness(CONFIG)
    harness.feed(burst("quiet", 2) + burst("active", 5))
    harness.wall += 20_000  # past the 10 s window, inside the 1 min action
    harness.tick()
    assert harness.subjects() == [b"sasl_username:active"]
    harness.wall += 60_000
    report = harness.tick()  # expires the action; then nothing holds the subject
    assert (report.expired, report.dropped) == (1, 1)
    assert harness.subjects() == []


def test_the_sweep_moves_through_a_large_partition_in_slices(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(counter_module, "SWEEP_BATCH", 3)
    harness = Harness(CONFIG)
    harness.feed([e for n in range(7) for e in burst(f"u{n}", 1)])
    harness.wall += 20_000
    dropped = [harness.tick().dropped for _ in range(3)]
    assert dropped == [3, 3, 1] and harness.subjects() == []


def test_replayed_records_republish_active_actions_once() -> None:
    harness = Harness(CONFIG)
    events = burst("a", 6)
    harness.feed(events)
    assert len(harness.published) == 1
    key = b"sasl_username:a"
    for offset in (3, 4, 5):  # the tail read again after a crash
        asyncio.run(harness.counter.on_mail(0, offset, key, events[offset].model_dump_json().encode()))
    assert [a.action_id for a in harness.published] == [harness.published[0].action_id] * 2
