"""A counting partition's record handling on a real RocksDB store: counting as the replay does,
expiry at the watermark, lifts, idle subjects swept, repeats dropped, state kept across a
checkpoint and a reopened store."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.engine.counting import CountedMail
from pipeline.engine.evaluator import ThresholdEngine
from pipeline.replay import replay
from pipeline.streaming import counter as counter_module
from pipeline.streaming.counter import SubjectCounter, TickReport
from pipeline.streaming.event_order import Entry
from pipeline.streaming.state.partition_store import HARD_LIMIT, PartitionStore
from pipeline.streaming.state.store_options import StoreOptions
from pipeline.streaming.state.stored_state import id_hash
from pipeline.streaming.state.table_layout import EXPIRY_PREFIX, is_subject_key
from schemas.config import FloodgateConfig
from schemas.events import ActionEvent, MailEvent
from schemas.time_ms import to_ms
from schemas.vocabulary import ActionState
from tests.pipeline.engine.builders import T0, config, mail, threshold
from tests.pipeline.streaming.state.store_writes import commit_now

START = to_ms(T0)


class Harness:
    def __init__(self, cfg: FloodgateConfig, path: Path) -> None:
        self.engine = ThresholdEngine(cfg)
        self.path = path
        self.store = PartitionStore(path, StoreOptions().to_rocksdict())
        self.published: list[ActionEvent] = []
        self.counter = SubjectCounter(self.engine, self.store, self.published.append)
        self.offset = 0

    def feed(self, events: list[MailEvent]) -> None:
        for event in events:
            for subject in self.engine.subjects(event):
                self.offset += 1
                self.counter.count(Entry.carrying(CountedMail.of(event), subject.key,
                                                  ("mail", 0), self.offset,
                                                  id_hash(event.event_id), 0))

    def checkpoint(self) -> None:
        commit_now(self.store)

    def tick(self, at_ms: int) -> TickReport:
        """As the loop does: a checkpoint, then the tick at the watermark ``START + at_ms``."""
        self.checkpoint()
        report = self.counter.tick(START + at_ms, START + at_ms)
        self.checkpoint()
        return report

    def stored_keys(self) -> list[bytes]:
        return [k for k, _ in self.store.scan(b"")]

    def subjects(self) -> list[bytes]:
        return [k for k in self.stored_keys() if is_subject_key(k)]


def burst(user: str, n: int, start_ms: int = 0, every_ms: int = 100) -> list[MailEvent]:
    return [mail(start_ms + i * every_ms, event_id=f"mx1/{user}-{start_ms}-{i}",
                 sasl_username=user, sender=f"{user}@example.net") for i in range(n)]


CONFIG = config(threshold(name="burst", messages=5, window="10s", duration="1m"))


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(CONFIG, tmp_path / "p0")


def test_counts_fire_the_same_actions_as_the_replay(harness: Harness) -> None:
    events = sorted(burst("a", 12) + burst("b", 4) + burst("c", 6, 50), key=lambda e: e.ts)
    harness.feed(events)
    expected = [a for a in replay(CONFIG, events) if a.state is ActionState.ACTIVE]
    assert [a.action_id for a in harness.published] == [a.action_id for a in expected]
    assert len(expected) == 2


def test_actions_expire_at_the_watermark_once(harness: Harness) -> None:
    harness.feed(burst("a", 5))
    fired = harness.published[-1]
    assert harness.tick(400 + 59_000).expired == 0  # 59 s after the firing: not yet
    assert harness.tick(400 + 60_000).expired == 1
    last = harness.published[-1]
    assert (last.action_id, last.state, last.ts) == (fired.action_id, ActionState.EXPIRED,
                                                     fired.expires_at)
    assert not any(k.startswith(EXPIRY_PREFIX) for k in harness.stored_keys())
    assert harness.tick(200_000).expired == 0


def test_a_lift_ends_the_action_and_restarts_the_count(harness: Harness) -> None:
    harness.feed(burst("a", 5))
    fired = harness.published[-1]
    harness.counter.lift(fired.key.encode(), fired.model_copy(update={"state": ActionState.LIFTED}))
    harness.feed(burst("a", 4, start_ms=1_000))  # 4 more inside the window: not 5 since the lift
    assert len(harness.published) == 1
    assert harness.tick(120_000).expired == 0  # lifted: no expiry follows
    with pytest.raises(ValueError, match="not a lift"):
        harness.counter.lift(fired.key.encode(), fired)


@pytest.mark.parametrize("reset", [False, True])
def test_a_lift_with_reset_restarts_the_escalation_ladder(tmp_path: Path, reset: bool) -> None:
    ladder = config(threshold(name="burst", messages=5, window="10s", duration="1m", escalate=[
        {"after": 2, "within": "1h", "action": "block", "duration": "1h"}]))
    harness = Harness(ladder, tmp_path / "p0")
    harness.feed(burst("a", 5))
    fired = harness.published[-1]
    harness.counter.lift(fired.key.encode(), fired.model_copy(
        update={"state": ActionState.LIFTED, "reset": reset}))
    harness.checkpoint()  # through the stored bytes, as a restarted worker would read them
    harness.feed(burst("a", 5, start_ms=20_000))
    again = harness.published[-1]
    assert again.action_id != fired.action_id
    assert again.action.value == ("defer" if reset else "block")


def test_idle_subjects_are_swept_and_busy_ones_kept(harness: Harness) -> None:
    harness.feed(burst("quiet", 2) + burst("active", 5))
    harness.tick(20_000)  # past the 10 s window, inside the 1 min action
    assert harness.subjects() == [b"sasl_username:active"]
    report = harness.tick(80_000)  # expires the action; the sweep drops the subject next tick
    report.dropped += harness.tick(80_000).dropped
    assert (report.expired, report.dropped) == (1, 1)
    assert harness.subjects() == []


def test_history_counted_in_bursts_is_not_swept_by_the_wall_clock(harness: Harness) -> None:
    """Old mail arriving in bursts: the watermark is the wall clock, the newest time counted is
    the history's; between bursts the subject's window must survive."""
    harness.feed(burst("a", 3))
    harness.checkpoint()
    report = harness.counter.tick(START + 86_400_000, START + 200)  # a day later, by the wall
    harness.checkpoint()
    assert report.dropped == 0
    harness.feed(burst("a", 2, start_ms=300))  # the next burst of the same history
    assert len(harness.published) == 1


def test_the_sweep_moves_through_a_large_partition_in_slices(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counter_module, "SWEEP_BATCH", 3)
    harness.feed([e for n in range(7) for e in burst(f"u{n}", 1)])
    dropped = [harness.tick(20_000).dropped for _ in range(3)]
    assert dropped == [3, 3, 1] and harness.subjects() == []


def test_a_repeated_event_id_counts_once(harness: Harness) -> None:
    events = burst("a", 4)
    harness.feed(events + events[:2])  # the policy service reported two of them too
    assert harness.published == []
    harness.feed(burst("a", 1, start_ms=500))
    assert len(harness.published) == 1


def test_state_survives_a_checkpoint_and_a_reopened_store(harness: Harness) -> None:
    harness.feed(burst("a", 4))
    harness.checkpoint()
    harness.store.close()
    again = Harness(CONFIG, harness.path)
    again.feed(burst("a", 1, start_ms=500))  # the fifth inside the window
    assert len(again.published) == 1
    again.feed(burst("a", 4))  # the first four again: already counted
    assert len(again.published) == 1


def test_a_cache_far_smaller_than_the_subjects_between_checkpoints_counts_the_same(
        tmp_path: Path) -> None:
    """Changed subjects evicted before the checkpoint are kept encoded: counted on, swept,
    written and reloaded as if they had stayed decoded."""
    events = [e for n in range(300) for e in burst(f"u{n}", 3 + n % 4, start_ms=n * 7)]
    events.sort(key=lambda e: e.ts)
    roomy, tight = Harness(CONFIG, tmp_path / "roomy"), Harness(CONFIG, tmp_path / "tight")
    tight.store = PartitionStore(tmp_path / "tight-small", StoreOptions().to_rocksdict(),
                                 cache_limit=10)
    tight.counter = SubjectCounter(tight.engine, tight.store, tight.published.append)
    for harness in (roomy, tight):
        harness.feed(events[: len(events) // 2])
        harness.feed(events[len(events) // 2:])  # evicted subjects come back, changed
        assert len(harness.store._cache) <= HARD_LIMIT * harness.store._cache_limit
    assert [a.action_id for a in tight.published] == [a.action_id for a in roomy.published]
    assert len(roomy.published) == 150  # users with 5 or more messages in the window
    assert commit_now(tight.store) == commit_now(roomy.store)
    assert [(k, v) for k, v in tight.store.scan(b"")] == [(k, v) for k, v in roomy.store.scan(b"")]


def _change(harness: Harness, key: str, at_ms: int, record: bytes | None) -> None:
    harness.offset += 1
    harness.counter.count(Entry.carrying(CountedMail(START + at_ms, 0, 1, "", None), key,
                                         ("floodgate.subject-settings", 0), harness.offset, 0,
                                         0, record.decode() if record else ""))


def _record(key: str, **fields: object) -> bytes:
    """As the router sends it on: what counting needs of a settings record."""
    from pipeline.engine.customisation import Customisation
    from schemas.subject_settings import SubjectSettings
    return Customisation.of(SubjectSettings(subject=key, actor="op", reason="test", at=T0,
                                            **fields)).encode()  # type: ignore[arg-type]


CLASSES = config(threshold(name="burst", messages=5, window="10s", duration="1m",
                           per_class={"business": {"messages": 50}}),
                 classes={"default": "standard", "names": ["standard", "business"]})


def test_settings_count_from_the_next_entry_and_survive_a_reopened_store(tmp_path: Path) -> None:
    harness = Harness(CLASSES, tmp_path / "p0")
    key = "sasl_username:a"
    _change(harness, key, 0, _record(key, subject_class="business"))
    harness.feed(burst("a", 12))
    assert harness.published == []  # 12 < 50 for the business class
    harness.checkpoint()
    harness.store.close()
    reopened = Harness(CLASSES, tmp_path / "p0")
    assert reopened.store.settings(key.encode()) is not None
    reopened.feed(burst("a", 30, start_ms=2_000))
    assert reopened.published == []  # still business after the reopen
    _change(reopened, key, 6_000, None)  # removed: the default class again
    reopened.feed(burst("a", 1, start_ms=6_500))
    [action] = reopened.published
    assert action.evidence is not None and action.evidence.limit_messages == 5
    assert action.evidence.messages >= 5  # the window kept counting meanwhile


def test_an_exempt_subject_is_not_counted_and_an_override_replaces_its_numbers(
        tmp_path: Path) -> None:
    harness = Harness(CLASSES, tmp_path / "p0")
    _change(harness, "sasl_username:a", 0, _record("sasl_username:a", exempt=True))
    _change(harness, "sasl_username:b", 0, _record("sasl_username:b",
                                                    overrides={"burst": {"messages": 2}}))
    harness.feed(burst("a", 20) + burst("b", 2))
    assert [(a.subject, a.evidence.limit_messages if a.evidence else None)
            for a in harness.published] == [("b", 2)]


def test_an_idle_account_keeps_only_its_baseline_in_the_store(tmp_path: Path) -> None:
    learning = config(threshold(name="unusual", window="1h", messages=400,
                                baseline={"factor": 10, "min_messages": 20, "learn": "14d"}))
    harness = Harness(learning, tmp_path / "p0")
    hour = 3_600_000
    harness.feed([mail(h * hour + n * 60_000, sasl_username="quiet")
                  for h in range(15 * 24) for n in range(3)])  # 3 an hour for 15 days
    key = b"sasl_username:quiet"
    harness.checkpoint()
    assert len(harness.store.get_raw(key) or b"") > 512  # recent event ids, windows
    harness.tick(15 * 24 * hour + 2 * hour)  # two hours later: the windows are idle
    harness.tick(15 * 24 * hour + 2 * hour)
    stored = harness.store.get_raw(key)
    assert stored is not None and len(stored) <= 64  # what it learnt, nothing else
    learnt = harness.engine.subjects(mail(0, sasl_username="quiet"))  # still counted by it
    assert learnt and harness.subjects() == [key]
    # its normal still applies (3 an hour, and two empty hours since): 30 is ten times it
    harness.feed([mail(15 * 24 * hour + 3 * hour + n * 1_000, sasl_username="quiet",
                       event_id=f"late/{n}") for n in range(31)])
    [fired] = harness.published
    assert fired.evidence is not None and fired.evidence.baseline is not None
    assert 2.9 < fired.evidence.baseline < 3 and fired.evidence.limit_messages == 30
