"""Repeats of an event id are recognised within the horizon, and within the limit when set."""

from __future__ import annotations

from pipeline.engine.dedup import RecentEventIds


def test_a_repeat_within_the_horizon_is_not_the_first_time() -> None:
    ids = RecentEventIds(horizon_ms=1_000)
    assert ids.first_time("a", 0)
    assert not ids.first_time("a", 900)
    assert ids.first_time("b", 2_000)  # "a" is now older than the horizon: forgotten
    assert ids.first_time("a", 2_001)
    assert len(ids) == 2


def test_a_limit_keeps_the_newest_ids_whatever_the_rate() -> None:
    ids = RecentEventIds(horizon_ms=3_600_000, limit=3)
    for n in range(5):
        assert ids.first_time(f"e{n}", n)
    assert len(ids) == 3
    assert not ids.first_time("e4", 10) and not ids.first_time("e2", 10)
    assert ids.first_time("e0", 10)  # the oldest went first
