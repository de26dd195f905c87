"""Event-time order of a counting partition: what is held, what is released, and what a restart
from a checkpoint re-reads (no entry applied twice, none lost)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.engine.counting import CountedMail
from pipeline.streaming.event_order import Entry, EventOrder, OrderCheckpoint

A, B = ("mail", 0), ("mail", 1)


def entry(source: tuple[str, int], offset: int, ts: int, subject: str = "sasl_username:u",
          record: int = 0) -> Entry:
    return Entry.carrying(CountedMail(ts, False, 1, "outbound", None), subject, source, offset,
                          offset, record)


def test_entries_wait_for_every_source_then_come_out_in_time_order() -> None:
    order = EventOrder([A, B])
    order.offer(entry(A, 0, 300))
    order.offer(entry(A, 1, 100))
    order.mark(A, 300)
    assert order.release() == []  # B has said nothing yet
    order.mark(B, 200)
    assert [e.ts_ms for e in order.release()] == [100]
    order.offer(entry(B, 0, 250))
    order.mark(B, 400)
    assert [e.ts_ms for e in order.release()] == [250, 300]
    assert order.watermark() == 300


def test_a_late_entry_is_counted_at_once() -> None:
    order = EventOrder([A])
    order.offer(entry(A, 0, 500))
    order.mark(A, 500)
    assert len(order.release()) == 1
    order.offer(entry(A, 1, 100))  # stamped before what was already applied
    assert [e.offset for e in order.release()] == [1]


def test_repeats_of_held_and_applied_entries_are_dropped() -> None:
    order = EventOrder([A])
    order.offer(entry(A, 0, 100))
    order.source_read(A, 0)
    order.offer(entry(A, 0, 100))  # a router re-sending after its crash
    order.mark(A, 100)
    assert len(order.release()) == 1
    order.offer(entry(A, 0, 100))
    assert order.release() == []


def test_too_many_held_entries_are_released_oldest_first() -> None:
    order = EventOrder([A, B], max_held=1_000)
    for n in range(1_005):
        order.offer(entry(A, n, 1_000 + n))
    released = order.release()  # B never sends a mark
    assert [e.offset for e in released] == list(range(5))
    assert order.forced == 5 and order.held == 1_000


def test_checkpoint_round_trips_through_json() -> None:
    checkpoint = OrderCheckpoint((5, "mail", 1, 9, "sender:a@b"), {A: 4, B: 7})
    assert OrderCheckpoint.from_json(checkpoint.to_json()) == checkpoint


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**9), cut=st.integers(1, 60))
def test_a_restart_from_any_checkpoint_applies_every_entry_once(seed: int, cut: int) -> None:
    """Records of two sources arrive interleaved; the partition checkpoints after record ``cut``,
    "crashes", re-reads from the oldest held record and goes on. Applied before the checkpoint
    plus applied after the restart is each entry exactly once, in event-time order."""
    rng = random.Random(seed)
    records = []  # the partition's records: (source, [entries], upto, mark)
    positions = {A: 0, B: 0}
    clocks = {A: 0, B: 0}
    for number in range(60):
        source = rng.choice([A, B])
        entries = []
        for _ in range(rng.randint(0, 3)):
            clocks[source] += rng.randint(0, 50)
            entries.append(entry(source, positions[source], clocks[source],
                                 f"sasl_username:u{rng.randint(0, 3)}", record=number))
            positions[source] += 1
        records.append((source, entries, positions[source] - 1, clocks[source]))

    def feed(order: EventOrder, start: int, stop: int) -> list[Entry]:
        applied = []
        for source, entries, upto, mark in records[start:stop]:
            for e in entries:
                order.offer(e)
            order.source_read(source, upto)
            order.mark(source, mark)
            applied += order.release()
        return applied

    whole = EventOrder([A, B])
    expected = feed(whole, 0, len(records))
    expected += whole.release()
    first = EventOrder([A, B])
    before = feed(first, 0, cut)
    resume = first.oldest_record()
    restarted = EventOrder([A, B], OrderCheckpoint.from_json(first.checkpoint().to_json()))
    after = feed(restarted, cut if resume is None else resume, len(records))
    idents = [(e.source, e.offset, e.subject) for e in before + after]
    assert sorted(idents) == sorted((e.source, e.offset, e.subject) for e in expected)
    assert len(set(idents)) == len(idents)
    times = [e.ts_ms for e in before + after]
    assert times == sorted(times)
