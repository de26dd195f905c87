"""The offset guard: once each, in order; skipped offsets reported for fetching."""

from __future__ import annotations

from pipeline.streaming.offset_guard import PROCESS, REPEAT, Admission, OffsetGuard


def test_in_order_records_pass_and_repeats_are_skipped() -> None:
    guard = OffsetGuard()
    assert [guard.check("p0", o, start=5) for o in (5, 6, 6, 7, 5)] == [
        PROCESS, PROCESS, REPEAT, PROCESS, REPEAT]
    assert guard.expected("p0") == 8 and guard.skipped == 0


def test_skipped_offsets_are_reported_once() -> None:
    """What faust-streaming does after recovery: 22..26, then 35.. while 27..34 were dropped."""
    guard = OffsetGuard()
    delivered = [22, 23, 24, 25, 26, 35, 36, 30, 37]
    verdicts = [guard.check("p2", o, start=22) for o in delivered]
    assert verdicts[5] == Admission(True, missing_from=27)
    assert verdicts[:5] == [PROCESS] * 5
    assert verdicts[6:] == [PROCESS, REPEAT, PROCESS]  # 30 came late: it was fetched with the gap
    assert guard.skipped == 8


def test_a_hole_at_the_start_is_found_from_the_committed_offset() -> None:
    guard = OffsetGuard()
    assert guard.check("p0", 12, start=10) == Admission(True, missing_from=10)
    assert guard.check("p0", 13, start=10) is PROCESS


def test_without_a_start_the_first_record_is_the_start() -> None:
    guard = OffsetGuard()
    assert guard.check("p0", 40) is PROCESS
    assert guard.check("p0", 41) is PROCESS


def test_partitions_are_independent_and_can_be_forgotten() -> None:
    guard = OffsetGuard()
    assert guard.check("a", 3, start=3) is PROCESS
    assert guard.check("b", 9, start=9) is PROCESS
    guard.forget(["a"])
    assert guard.expected("a") is None
    assert guard.check("a", 50) is PROCESS  # reassigned: starts afresh
    assert guard.expected("b") == 10
