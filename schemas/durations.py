"""Durations as operators write them in YAML: ``30s``, ``15m``, ``1h30m``, ``2d``.

A duration is validated into a ``datetime.timedelta`` and written back in the
same compact form, so configs round-trip and JSON Schemas show a string
pattern rather than an ISO 8601 period nobody writes by hand.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"(?:\d+(?:ms|s|m|h|d|w))+")
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d|w))+$"
MAX_DURATION = timedelta(days=3650)


def parse_duration(text: str) -> timedelta:
    """Parse ``1h30m``-style text; bare numbers are seconds. Raises ValueError."""
    compact = text.strip().replace(" ", "")
    if compact.isdigit():
        return timedelta(seconds=int(compact))
    if not _WHOLE.fullmatch(compact):
        raise ValueError(text)
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(compact))
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest ``1h30m``-style text for a duration (milliseconds kept)."""
    ms = round(value.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    parts = []
    for unit, size_ms in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000),
                          ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size_ms)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _validate(value: Any) -> timedelta:
    """A duration from 0 to MAX_DURATION; anything else is a clear error, never an overflow
    later (an action that ends in the year 10000 cannot be written as a date)."""
    try:
        result = _as_timedelta(value)
    except OverflowError:
        result = None  # beyond what a timedelta holds: out of range too
    if result is None or not timedelta(0) <= result <= MAX_DURATION:
        raise PydanticCustomError(
            "duration", '"{value}" is out of range: a duration is from 0 to 3650d (10 years)',
            {"value": value})
    return result


def _as_timedelta(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):  # bool is an int: refuse `window: yes`
        raise PydanticCustomError("duration", '"{value}" is not a duration', {"value": value})
    try:
        if isinstance(value, int | float):
            return timedelta(seconds=value)
        if isinstance(value, str):
            return parse_duration(value)
    except ValueError:
        pass
    raise PydanticCustomError(
        "duration",
        '"{value}" is not a duration (write it like 30s, 15m, 1h30m or 2d)',
        {"value": value},
    )


Duration = Annotated[
    timedelta,
    BeforeValidator(_validate),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN,
                    "description": "A duration such as 30s, 15m, 1h30m or 2d"}),
]
