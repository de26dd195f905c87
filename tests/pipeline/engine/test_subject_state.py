from array import array

import pytest

from pipeline.engine.subject_state import (
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
    assert encode_state(state)[0] == 2


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
