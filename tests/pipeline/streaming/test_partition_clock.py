"""The partition clock: event time when events come, wall-time pace between them."""

from __future__ import annotations

from pipeline.streaming.partition_clock import MAX_AHEAD_MS, PartitionClock


def test_replayed_history_keeps_its_own_time() -> None:
    clock = PartitionClock()
    assert not clock.started
    wall = 1_800_000_000_000
    for n in range(100):  # a day-old hour replayed in 100 ms of wall time
        clock.observe(wall - 86_400_000 + n * 36_000, wall + n)
    assert clock.now(wall + 100) == wall - 86_400_000 + 99 * 36_000 + 1


def test_a_quiet_partition_moves_with_the_wall_clock() -> None:
    clock = PartitionClock()
    clock.observe(5_000, 1_000_000)
    assert clock.now(1_030_000) == 35_000
    clock.observe(4_000, 1_030_000)  # a late event does not move it back
    assert clock.now(1_030_000) == 35_000


def test_an_event_from_the_future_moves_it_only_so_far() -> None:
    clock = PartitionClock()
    clock.observe(10**13, 1_000_000)
    assert clock.now(1_000_000) == 1_000_000 + MAX_AHEAD_MS


def test_pack_round_trip_and_damaged_bytes() -> None:
    clock = PartitionClock(123, 456)
    assert PartitionClock.unpack(clock.pack()) == clock
    assert not PartitionClock.unpack(b"xx").started
    assert not PartitionClock.unpack(None).started
