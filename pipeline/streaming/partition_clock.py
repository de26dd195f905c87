"""Event time of one partition, carried forward by wall time while no newer event arrives.

Expiries and the sweep of idle subjects are timed by this clock, not by the
wall clock, so that replaying yesterday's events runs yesterday's windows
(the wall clock would call every replayed window idle at once), while a
quiet partition's actions still expire on time: between events the clock
moves at the wall clock's pace from the newest event seen.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAX_AHEAD_MS = 300_000  # an event stamped further ahead of the wall clock moves it only this far
_PACKED = struct.Struct("<qq")


@dataclass
class PartitionClock:
    event_ms: int = 0  # newest event time seen
    wall_ms: int = 0  # wall time when it was seen; 0: nothing seen yet

    @property
    def started(self) -> bool:
        return self.wall_ms > 0

    def now(self, wall_ms: int) -> int:
        return self.event_ms + max(0, wall_ms - self.wall_ms)

    def observe(self, event_ms: int, wall_ms: int) -> None:
        event_ms = min(event_ms, wall_ms + MAX_AHEAD_MS)
        if not self.started or event_ms > self.now(wall_ms):
            self.event_ms, self.wall_ms = event_ms, wall_ms

    def pack(self) -> bytes:
        return _PACKED.pack(self.event_ms, self.wall_ms)

    @classmethod
    def unpack(cls, data: bytes | None) -> PartitionClock:
        if not data or len(data) != _PACKED.size:
            return cls()
        event_ms, wall_ms = _PACKED.unpack(data)
        return cls(event_ms, wall_ms)
