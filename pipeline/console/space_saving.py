"""Space-Saving (Metwally, Agrawal and El Abbadi, 2005): the heaviest keys of a stream in
bounded memory.

At most ``capacity`` keys are tracked. A new key, when the table is full, takes
the place of the key with the smallest count and inherits that count as its
error: a tracked key's count is never below its true count and at most
``error`` above it, and ``error`` never exceeds ``total / capacity``. A key
not tracked occurred at most ``floor()`` times. Every key that occurred more
than ``total / capacity`` times is tracked.

Each tracked key also carries a flagged tally (spam), counted since the key
last entered the table: a lower bound of its true flagged count.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass


@dataclass(slots=True)
class Counter:
    count: int  # an upper bound of the key's occurrences
    error: int  # count - error is a lower bound
    flagged: int  # flagged occurrences seen while tracked (a lower bound)


class SpaceSaving:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.total = 0  # occurrences offered, tracked or not
        self.counters: dict[str, Counter] = {}
        # (count, key) for every tracked key, plus stale pairs left by increments: popped
        # lazily, and the heap is rebuilt when stale pairs outnumber live ones.
        self._heap: list[tuple[int, str]] = []

    def add(self, key: str, flagged: bool = False) -> None:
        self.total += 1
        counter = self.counters.get(key)
        if counter is not None:
            counter.count += 1
            counter.flagged += flagged
            self._push(counter.count, key)
            return
        if len(self.counters) < self.capacity:
            self.counters[key] = Counter(1, 0, int(flagged))
            self._push(1, key)
            return
        smallest, victim = self._pop_smallest()
        del self.counters[victim]
        self.counters[key] = Counter(smallest + 1, smallest, int(flagged))
        self._push(smallest + 1, key)

    def floor(self) -> int:
        """The most times an untracked key can have occurred."""
        if len(self.counters) < self.capacity:
            return 0
        return self._peek_smallest()

    def _push(self, count: int, key: str) -> None:
        heapq.heappush(self._heap, (count, key))
        if len(self._heap) > 4 * self.capacity + 64:
            self._heap = [(c.count, k) for k, c in self.counters.items()]
            heapq.heapify(self._heap)

    def _peek_smallest(self) -> int:
        while True:
            count, key = self._heap[0]
            counter = self.counters.get(key)
            if counter is not None and counter.count == count:
                return count
            heapq.heappop(self._heap)  # stale: the key moved on or left

    def _pop_smallest(self) -> tuple[int, str]:
        while True:
            count, key = heapq.heappop(self._heap)
            counter = self.counters.get(key)
            if counter is not None and counter.count == count:
                return count, key
