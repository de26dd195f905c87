"""The worker's stored subject state: round trip, repeats, and damaged bytes refused."""

from __future__ import annotations

import pytest

from pipeline.engine.subject_state import SubjectState, ThresholdState
from pipeline.streaming.state import stored_state
from pipeline.streaming.state.stored_state import RECENT_IDS


def test_round_trip_keeps_ids_actions_and_state() -> None:
    stored = stored_state.unpack(None)
    assert not stored.actions
    assert not stored.seen("mx1/A1")
    stored.actions = [b'{"action_id": "a"}', b"{}"]
    stored.state = SubjectState({"burst": ThresholdState(now=7, active_until=9)})
    again = stored_state.unpack(stored_state.pack(stored))
    assert again.seen("mx1/A1")
    assert again.actions == [b'{"action_id": "a"}', b"{}"]
    assert again.state.thresholds["burst"].active_until == 9


def test_only_the_newest_ids_are_remembered() -> None:
    stored = stored_state.unpack(None)
    for n in range(RECENT_IDS + 1):
        assert not stored.seen(f"id{n}")
    again = stored_state.unpack(stored_state.pack(stored))
    assert not again.seen("id0")  # pushed out by the newer ones
    assert again.seen(f"id{RECENT_IDS}")
    assert again.seen("id1")
    for n in range(3 * RECENT_IDS):  # in memory too, the newest RECENT_IDS always stay
        stored.seen(f"more{n}")
        assert stored.seen(f"more{n}")
    assert stored.seen(f"more{3 * RECENT_IDS - RECENT_IDS}")


@pytest.mark.parametrize("cut", [1, 4, 9, 17, 28])
def test_damaged_bytes_raise_value_error(cut: int) -> None:
    stored = stored_state.unpack(None)
    stored.seen("x")
    stored.actions = [b"0123456789"]
    data = stored_state.pack(stored)
    with pytest.raises(ValueError):
        stored_state.unpack(data[:cut])


def test_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        stored_state.unpack(b"\x09" + bytes(20))


def test_older_versions_are_read_and_written_back_as_the_current_one() -> None:
    import struct
    from array import array

    from pipeline.engine.subject_state import encode_state

    recent = array("Q", [7, 9])
    state = SubjectState({"burst": ThresholdState(now=5, active_until=8)})
    old = struct.pack("<BqH", 2, 33, 2) + recent.tobytes() + encode_state(state)
    stored = stored_state.unpack(old)
    assert (list(stored.recent), stored.actions) == ([7, 9], [])
    assert stored.state.thresholds["burst"].active_until == 8
    v3 = struct.pack("<BqHH", 3, 33, 2, 1) + recent.tobytes() + struct.pack("<I", 2) + b"{}" \
        + encode_state(state)
    stored = stored_state.unpack(v3)
    assert (list(stored.recent), stored.actions) == ([7, 9], [b"{}"])
    again = stored_state.pack(stored)
    assert again[0] == stored_state.VERSION
    assert stored_state.unpack(again).actions == [b"{}"]
