"""Engine time: integer milliseconds since the epoch, and clocks for the adapters."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


def to_ms(value: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (sub-millisecond part dropped)."""
    delta = value - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def from_ms(value: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=value)


def span_ms(value: timedelta) -> int:
    return round(value.total_seconds() * 1000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    """Wall-clock time, for live adapters (action expiry, idle-state cleanup)."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> None:
        self._now += ms
