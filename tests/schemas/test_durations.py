from datetime import timedelta

import pytest

from schemas.durations import format_duration, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("15m", 900), ("1h30m", 5400), ("2d", 172800), ("1w", 604800),
    ("250ms", 0.25), ("90", 90), ("1h 30m", 5400),
])
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["30x", "", "m", "1.5h", "-5s", "s30"])
def test_reject(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("text", ["30s", "15m", "1h30m", "2d", "1w2d", "1s250ms"])
def test_format_round_trips(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize("value", ["3000000d", "99999999999999999999999w", 1e300, -5, "3651d"])
def test_durations_beyond_ten_years_or_below_zero_are_config_errors(value: object) -> None:
    from pydantic import ValidationError

    from schemas.config import Threshold
    with pytest.raises(ValidationError, match="out of range"):
        Threshold(name="t", key="sender", window="30s", messages=5, action="defer", duration=value)
