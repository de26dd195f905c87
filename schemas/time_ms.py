"""Engine time: integer milliseconds since the epoch.

The engine never reads a clock: event times and ``now_ms`` arguments carry
time in, so replay, tests and live adapters drive it alike; adapters read the
wall clock with ``wall_ms``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


def to_ms(value: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (sub-millisecond part dropped)."""
    delta = value - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def from_ms(value: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=value)


def wall_ms() -> int:
    """The wall clock now, in milliseconds since the epoch (for adapters, never the engine)."""
    return time.time_ns() // 1_000_000


def span_ms(value: timedelta) -> int:
    return round(value.total_seconds() * 1000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
