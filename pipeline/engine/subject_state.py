"""What the engine remembers about one subject, and its compact byte form.

One subject (a SASL user, a sender, a domain or an IP) has one state holding a
small record per threshold keyed on its type: one RocksDB get and one put per
event and key dimension.

Byte layout, version 1, little-endian::

    u8 version | u16 thresholds | per threshold:
      u8 name length | name (UTF-8) | i64 now | i64 active_until | volume | spams
    window: u32 n | if n: i64 base | u8 flags | n x u32 (time - base)
            | n x u32 weights unless flags&1 (all 1) | n x u32 extras unless flags&2 (all 0)

A window's entries span at most its length (<= 30 days), so 32-bit offsets in
milliseconds suffice; a threshold with a 60-message limit costs about 500 bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pipeline.engine.window import CappedWindow

STATE_VERSION = 1
_HEAD = struct.Struct("<BH")
_THRESHOLD = struct.Struct("<qq")
_COUNT = struct.Struct("<I")
_BASE = struct.Struct("<qB")
_UNIT_WEIGHTS = 1
_NO_EXTRAS = 2


class StateDecodeError(ValueError):
    """Stored state bytes are damaged or from an unknown version."""


@dataclass
class ThresholdState:
    now: int = 0  # newest counted event time (ms); windows end here
    active_until: int = 0  # while now < active_until the threshold does not fire again
    volume: CappedWindow = field(default_factory=CappedWindow)
    spams: CappedWindow = field(default_factory=CappedWindow)

    def is_idle(self, now_ms: int, window_ms: int) -> bool:
        """True when nothing here can matter after ``now_ms``: safe to forget."""
        return now_ms >= self.active_until and (
            not (self.volume.times or self.spams.times)
            or max(self.volume.times[-1:] + self.spams.times[-1:]) <= now_ms - window_ms
        )


@dataclass
class SubjectState:
    thresholds: dict[str, ThresholdState] = field(default_factory=dict)


def encode_state(state: SubjectState) -> bytes:
    parts = [_HEAD.pack(STATE_VERSION, len(state.thresholds))]
    for name, record in state.thresholds.items():
        raw = name.encode()
        parts.append(bytes([len(raw)]) + raw)
        parts.append(_THRESHOLD.pack(record.now, record.active_until))
        _encode_window(record.volume, parts)
        _encode_window(record.spams, parts)
    return b"".join(parts)


def _encode_window(window: CappedWindow, parts: list[bytes]) -> None:
    n = len(window.times)
    parts.append(_COUNT.pack(n))
    if not n:
        return
    base = window.times[0]
    unit = all(w == 1 for w in window.weights)
    no_extras = not any(window.extras)
    parts.append(_BASE.pack(base, (_UNIT_WEIGHTS if unit else 0) | (_NO_EXTRAS if no_extras else 0)))
    column = struct.Struct(f"<{n}I")
    parts.append(column.pack(*(t - base for t in window.times)))
    if not unit:
        parts.append(column.pack(*window.weights))
    if not no_extras:
        parts.append(column.pack(*window.extras))


def decode_state(data: bytes) -> SubjectState:
    """The state encoded in ``data``; raises StateDecodeError when it cannot be read."""
    try:
        version, count = _HEAD.unpack_from(data, 0)
        if version != STATE_VERSION:
            raise StateDecodeError(f"unknown state version {version}")
        offset = _HEAD.size
        state = SubjectState()
        for _ in range(count):
            size = data[offset]
            name = data[offset + 1: offset + 1 + size].decode()
            offset += 1 + size
            now, active_until = _THRESHOLD.unpack_from(data, offset)
            offset += _THRESHOLD.size
            volume, offset = _decode_window(data, offset)
            spams, offset = _decode_window(data, offset)
            state.thresholds[name] = ThresholdState(now, active_until, volume, spams)
        if offset != len(data):
            raise StateDecodeError(f"{len(data) - offset} bytes left over")
        return state
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise StateDecodeError(f"damaged state: {exc}") from None


def _decode_window(data: bytes, offset: int) -> tuple[CappedWindow, int]:
    (n,) = _COUNT.unpack_from(data, offset)
    offset += _COUNT.size
    if n * 4 > len(data) - offset:
        raise StateDecodeError(f"window of {n} entries is longer than the data")
    if not n:
        return CappedWindow(), offset
    base, flags = _BASE.unpack_from(data, offset)
    offset += _BASE.size
    column = struct.Struct(f"<{n}I")
    times = [base + t for t in column.unpack_from(data, offset)]
    offset += column.size
    weights = None
    if not flags & _UNIT_WEIGHTS:
        weights = list(column.unpack_from(data, offset))
        offset += column.size
    extras = None
    if not flags & _NO_EXTRAS:
        extras = list(column.unpack_from(data, offset))
        offset += column.size
    return CappedWindow(times, weights, extras), offset
