"""An exact sliding window that stores only what its decision needs.

The question a threshold asks is "do the units in (T - W, T] reach N?", where
T is the newest event time seen (it never goes back). Two facts keep the
answer exact with bounded memory:

* an entry at or before T - W can never count again, because T only grows;
* once the newest entries already sum to N, any older entry can only matter
  after those newer ones have left the window, and it is older than them, so
  it will have left first. We may drop it.

So the window holds the newest entries whose weights first reach ``cap``
(at most ``cap`` entries, since weights are >= 1), all inside the window.
Late events (timestamp below T) are inserted in order; a late event older
than the kept entries of a full window is dropped at once, as it should be.

Columns are ``array`` objects so the state codec copies them as raw bytes.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right

TIME_TYPE = "q"  # signed 64-bit milliseconds
VALUE_TYPE = "I"  # unsigned 32-bit weights and extras


class CappedWindow:
    """Timestamped weighted entries, oldest first. Times are integer milliseconds."""

    __slots__ = ("extras", "times", "total", "weights")

    def __init__(self, times: list[int] | array[int] | None = None,
                 weights: list[int] | array[int] | None = None,
                 extras: list[int] | array[int] | None = None) -> None:
        self.times = array(TIME_TYPE, times or ())
        n = len(self.times)
        self.weights = array(VALUE_TYPE, weights) if weights is not None else array(VALUE_TYPE, [1]) * n
        # A caller's small integer carried with each entry (the engine keeps
        # recipient count and spam flag there for evidence).
        self.extras = array(VALUE_TYPE, extras) if extras is not None else array(VALUE_TYPE, [0]) * n
        self.total = sum(self.weights)

    def add(self, ts: int, weight: int, cap: int, extra: int = 0) -> None:
        """Insert an entry (after any with the same time), then drop what ``cap`` makes useless.

        ``weight`` must be >= 1; ``cap`` >= 1 keeps the newest entries summing to it.
        """
        times = self.times
        at = len(times) if not times or times[-1] <= ts else bisect_right(times, ts)
        times.insert(at, ts)
        self.weights.insert(at, weight)
        self.extras.insert(at, extra)
        self.total += weight
        self._trim_to(cap)

    def slide(self, start_exclusive: int) -> None:
        """Forget entries at or before ``start_exclusive``: the window is now (start, ...]."""
        times = self.times
        if not times or times[0] > start_exclusive:
            return
        cut = bisect_right(times, start_exclusive)
        self.total -= sum(self.weights[:cut])
        self._drop_oldest(cut)

    @property
    def unit_weights(self) -> bool:
        """True when every weight is 1 (weights are >= 1, so the sum tells)."""
        return self.total == len(self.weights)

    def _trim_to(self, cap: int) -> None:
        weights = self.weights
        cut = 0
        total = self.total
        while cut < len(weights) and total - weights[cut] >= cap:
            total -= weights[cut]
            cut += 1
        if cut:
            self.total = total
            self._drop_oldest(cut)

    def _drop_oldest(self, count: int) -> None:
        del self.times[:count]
        del self.weights[:count]
        del self.extras[:count]

    def __len__(self) -> int:
        return len(self.times)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, CappedWindow)
                and self.times == other.times and self.weights == other.weights
                and self.extras == other.extras)

    def __repr__(self) -> str:
        entries = list(zip(self.times, self.weights, self.extras, strict=True))
        return f"CappedWindow({entries!r})"
