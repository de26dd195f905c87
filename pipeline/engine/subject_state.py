"""What the engine remembers about one subject, and its compact byte form.

One subject (a SASL user, a sender, a domain or an IP) has one state holding a
small record per threshold keyed on its type: one RocksDB get and one put per
event and key dimension.

Byte layout, version 3, little-endian::

    u8 version | u16 thresholds | per threshold:
      u8 name length | name (UTF-8) | u8 parts
      | if parts&1: i64 now | i64 active_until
      | if parts&2: volume | spams
      | if parts&4: u16 f | f x i64 firing times
      | if parts&8: f64 mean | i64 bucket | u32 age | u32 count   (a baseline)
    window: u32 n | if n: u8 flags | n x i64 times
            | n x u32 weights unless flags&1 (all 1) | n x u32 extras unless flags&2 (all 0)

A part left out is empty (zero times, no entries): a quiet account's baseline alone costs
29 bytes and its name. Versions 1 (no firing times) and 2 (every part, no baseline) are
still read.

Columns are copied as raw arrays (no per-entry Python work), so a full window
of a "60 in 30 s" threshold costs about 1 KiB and microseconds to read or write.
"""

from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass, field

from pipeline.engine.window import TIME_TYPE, VALUE_TYPE, CappedWindow

_SWAP = sys.byteorder != "little"  # the stored form is little-endian everywhere

STATE_VERSION = 3
_READABLE = (1, 2, 3)
_HEAD = struct.Struct("<BH")
_BASELINE = struct.Struct("<dqII")
_TIMES, _WINDOWS, _FIRED, _LEARNT = 1, 2, 4, 8  # the parts of a version 3 record
MAX_AGE = 2**32 - 1
_THRESHOLD = struct.Struct("<qq")
_COUNT = struct.Struct("<I")
_FIRINGS = struct.Struct("<H")
_FLAGS = struct.Struct("<B")
_UNIT_WEIGHTS = 1
_NO_EXTRAS = 2


class StateDecodeError(ValueError):
    """Stored state bytes are damaged or from an unknown version."""


@dataclass(slots=True)
class Baseline:
    """What a baseline threshold learnt of one subject (``evaluator``: the formula)."""

    mean: float = 0.0  # the weighted mean of the closed buckets' units
    bucket: int = 0  # the newest bucket (event time // window) with a unit
    age: int = 0  # buckets from the first unit's to ``bucket`` (at most MAX_AGE)
    count: int = 0  # units in ``bucket`` so far


@dataclass
class ThresholdState:
    now: int = 0  # newest counted event time (ms); windows end here
    active_until: int = 0  # while now < active_until the threshold does not fire again
    volume: CappedWindow = field(default_factory=CappedWindow)
    spams: CappedWindow = field(default_factory=CappedWindow)
    # when the threshold fired for this subject, oldest first: only the newest that an
    # escalation step can still count (see ``evaluator``), none without steps
    firings: array[int] = field(default_factory=lambda: array(TIME_TYPE))
    baseline: Baseline | None = None  # a baseline threshold's

    def is_idle(self, now_ms: int, window_ms: int, history_ms: int = 0) -> bool:
        """True when nothing here can matter after ``now_ms``: safe to forget. ``history_ms``:
        how long a firing counts for escalation."""
        newest = [t for t in (self.volume.newest(), self.spams.newest()) if t is not None]
        if self.firings and self.firings[-1] > now_ms - history_ms:
            return False
        return now_ms >= self.active_until and (not newest or max(newest) <= now_ms - window_ms)


@dataclass
class SubjectState:
    thresholds: dict[str, ThresholdState] = field(default_factory=dict)


def encode_state(state: SubjectState) -> bytes:
    parts = [_HEAD.pack(STATE_VERSION, len(state.thresholds))]
    for name, record in state.thresholds.items():
        raw = name.encode()
        volume, spams = len(record.volume), len(record.spams)
        present = ((_TIMES if record.now or record.active_until else 0)
                   | (_WINDOWS if volume or spams else 0)
                   | (_FIRED if record.firings else 0)
                   | (_LEARNT if record.baseline is not None else 0))
        parts.append(bytes([len(raw)]) + raw + bytes([present]))
        if present & _TIMES:
            parts.append(_THRESHOLD.pack(record.now, record.active_until))
        if present & _WINDOWS:
            _encode_window(record.volume, volume, parts)
            _encode_window(record.spams, spams, parts)
        if present & _FIRED:
            parts.append(_FIRINGS.pack(len(record.firings)))
            parts.append(_raw(record.firings))
        if record.baseline is not None:
            learnt = record.baseline
            parts.append(_BASELINE.pack(learnt.mean, learnt.bucket, learnt.age, learnt.count))
    return b"".join(parts)


def _encode_window(window: CappedWindow, n: int, parts: list[bytes]) -> None:
    parts.append(_COUNT.pack(n))
    if not n:
        return
    unit = window.unit_weights
    extras = window.extras
    no_extras = extras.count(0) == n
    parts.append(_FLAGS.pack((_UNIT_WEIGHTS if unit else 0) | (_NO_EXTRAS if no_extras else 0)))
    columns = [window.times]
    if not unit:
        columns.append(window.weights)
    if not no_extras:
        columns.append(extras)
    for column in columns:
        parts.append(_raw(column))


def _raw(column: array[int]) -> bytes:
    if _SWAP:
        column = array(column.typecode, column)
        column.byteswap()
    return column.tobytes()


def _column(typecode: str, data: bytes, offset: int, n: int) -> tuple[array[int], int]:
    column = array(typecode)
    end = offset + n * column.itemsize
    if end > len(data):
        raise StateDecodeError(f"window of {n} entries is longer than the data")
    column.frombytes(data[offset:end])
    if _SWAP:
        column.byteswap()
    return column, end


def decode_state(data: bytes) -> SubjectState:
    """The state encoded in ``data``; raises StateDecodeError when it cannot be read."""
    try:
        version, count = _HEAD.unpack_from(data, 0)
        if version not in _READABLE:
            raise StateDecodeError(f"unknown state version {version}")
        offset = _HEAD.size
        state = SubjectState()
        for _ in range(count):
            size = data[offset]
            name = data[offset + 1: offset + 1 + size].decode()
            offset += 1 + size
            present = _TIMES | _WINDOWS | (_FIRED if version == 2 else 0)
            if version >= 3:
                present = data[offset]
                offset += 1
            now = active_until = 0
            if present & _TIMES:
                now, active_until = _THRESHOLD.unpack_from(data, offset)
                offset += _THRESHOLD.size
            if present & _WINDOWS:
                volume, offset = _decode_window(data, offset)
                spams, offset = _decode_window(data, offset)
            else:
                volume, spams = CappedWindow(), CappedWindow()
            firings = array(TIME_TYPE)
            if present & _FIRED:
                (n,) = _FIRINGS.unpack_from(data, offset)
                firings, offset = _column(TIME_TYPE, data, offset + _FIRINGS.size, n)
            baseline = None
            if present & _LEARNT:
                baseline = Baseline(*_BASELINE.unpack_from(data, offset))
                offset += _BASELINE.size
            state.thresholds[name] = ThresholdState(now, active_until, volume, spams, firings,
                                                    baseline)
        if offset != len(data):
            raise StateDecodeError(f"{len(data) - offset} bytes left over")
        return state
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise StateDecodeError(f"damaged state: {exc}") from None


def _decode_window(data: bytes, offset: int) -> tuple[CappedWindow, int]:
    (n,) = _COUNT.unpack_from(data, offset)
    offset += _COUNT.size
    if not n:
        return CappedWindow(), offset
    (flags,) = _FLAGS.unpack_from(data, offset)
    offset += _FLAGS.size
    times, offset = _column(TIME_TYPE, data, offset, n)
    weights = extras = None
    if not flags & _UNIT_WEIGHTS:
        weights, offset = _column(VALUE_TYPE, data, offset, n)
    if not flags & _NO_EXTRAS:
        extras, offset = _column(VALUE_TYPE, data, offset, n)
    return CappedWindow(times, weights, extras), offset
