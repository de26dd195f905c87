from array import array

import pytest

from pipeline.engine.subject_state import (
    STATE_VERSION,
    Baseline,
    StateDecodeError,
    SubjectState,
    ThresholdState,
    decode_state,
    encode_state,
)
from pipeline.engine.window import CappedWindow


def _state() -> SubjectState:
    return SubjectState({
        "burst": ThresholdState(now=1_795_780_800_500, active_until=1_795_781_700_500,
                                volume=CappedWindow([1_795_780_800_000, 1_795_780_800_500])),
        "spam": ThresholdState(
            now=1_795_780_800_500,
            volume=CappedWindow([1_795_780_800_100], [3], [7]),
            spams=CappedWindow([1_795_780_800_100], [3]),
            firings=array("q", [1_795_700_000_000, 1_795_780_800_100]),
        ),
        "idle": ThresholdState(),
    })


def test_round_trip_keeps_everything() -> None:
    state = _state()
    assert decode_state(encode_state(state)) == state


def test_version_1_state_is_still_read() -> None:
    # A version-1 record (written before escalation) is a version-2 one without the
    # firings column: what a worker upgraded over a changelog finds in its stores.
    window = CappedWindow([1_795_780_800_000])
    v1 = b"".join([b"\x01\x01\x00", b"\x05burst",
                   (1_795_780_800_000).to_bytes(8, "little"), (0).to_bytes(8, "little"),
                   (1).to_bytes(4, "little"), b"\x03", (1_795_780_800_000).to_bytes(8, "little"),
                   (0).to_bytes(4, "little")])
    state = decode_state(v1)
    assert state == SubjectState({"burst": ThresholdState(now=1_795_780_800_000,
                                                          volume=window)})
    assert encode_state(state)[0] == STATE_VERSION


def test_version_2_state_is_still_read() -> None:
    # Every part written, firings included, no parts byte: what 0.x workers stored.
    v2 = b"".join([b"\x02\x01\x00", b"\x05burst",
                   (1_795_780_800_000).to_bytes(8, "little"), (7).to_bytes(8, "little"),
                   (0).to_bytes(4, "little"), (0).to_bytes(4, "little"),
                   (1).to_bytes(2, "little"), (1_795_780_700_000).to_bytes(8, "little")])
    state = decode_state(v2)
    assert state == SubjectState({"burst": ThresholdState(
        now=1_795_780_800_000, active_until=7, firings=array("q", [1_795_780_700_000]))})
    assert decode_state(encode_state(state)) == state


def test_a_quiet_account_s_baseline_costs_under_64_bytes() -> None:
    learnt = Baseline(mean=0.8333, bucket=498_828, age=4_000, count=3)
    state = SubjectState({"unusual": ThresholdState(baseline=learnt)})
    data = encode_state(state)
    assert len(data) <= 64 and decode_state(data) == state
    busy = SubjectState({"unusual": ThresholdState(
        now=5, active_until=9, volume=CappedWindow([1, 2]), spams=CappedWindow([2]),
        firings=array("q", [3]), baseline=learnt)})
    assert decode_state(encode_state(busy)) == busy


def test_encoding_is_compact() -> None:
    # 60 messages of a "60 in 30 s" threshold: 8 bytes a time, unit weights and no extras elided.
    window = CappedWindow([1_795_780_800_000 + i * 100 for i in range(60)])
    data = encode_state(SubjectState({"burst": ThresholdState(now=1, volume=window)}))
    assert len(data) < 60 * 8 + 64


@pytest.mark.parametrize("damage", [
    lambda b: b[:-1],                 # truncated
    lambda b: b + b"\x00",            # trailing garbage
    lambda b: b"\x09" + b[1:],        # unknown version
    lambda b: b[:3] + b"\xff" + b[4:],  # name length past the end
    lambda b: b"",
])
def test_damaged_bytes_raise_a_clear_error(damage: object) -> None:
    data = encode_state(_state())
    with pytest.raises(StateDecodeError):
        decode_state(damage(data))  # type: ignore[operator]
