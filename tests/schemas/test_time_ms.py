"""Milliseconds since the epoch, exact where float seconds are not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from schemas.time_ms import from_ms, span_ms, to_ms


def test_the_epoch_and_a_known_moment() -> None:
    assert to_ms(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert to_ms(datetime(2026, 12, 6, 12, 0, 0, 999_999, tzinfo=UTC)) == 1_796_558_400_999


@given(st.integers(min_value=0, max_value=2**42))
def test_milliseconds_survive_the_round_trip(ms: int) -> None:
    assert to_ms(from_ms(ms)) == ms


def test_a_span_rounds_to_the_nearest_millisecond() -> None:
    assert span_ms(timedelta(seconds=1.5)) == 1500
    assert span_ms(timedelta(microseconds=1500)) == 2
