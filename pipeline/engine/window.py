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
Dropping the oldest entries only moves a head index; the dead prefix is cut
off once it is as long as the live part. A full "20,000 in 5 minutes" window
then costs O(1) per event instead of moving 20,000 entries each time.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right

TIME_TYPE = "q"  # signed 64-bit milliseconds
VALUE_TYPE = "I"  # unsigned 32-bit weights and extras
_COMPACT_AT = 64  # dead entries tolerated before the first cut


class CappedWindow:
    """Timestamped weighted entries, oldest first. Times are integer milliseconds."""

    __slots__ = ("_extras", "_head", "_times", "_weights", "total")

    def __init__(self, times: list[int] | array[int] | None = None,
                 weights: list[int] | array[int] | None = None,
                 extras: list[int] | array[int] | None = None) -> None:
        self._head = 0
        if not times:  # the common case: a new subject's window
            self._times, self._weights, self._extras = (
                array(TIME_TYPE), array(VALUE_TYPE), array(VALUE_TYPE))
            self.total = 0
            return
        self._times = array(TIME_TYPE, times)
        n = len(self._times)
        self._weights = (array(VALUE_TYPE, weights) if weights is not None
                         else array(VALUE_TYPE, [1]) * n)
        # A caller's small integer carried with each entry (the engine keeps
        # recipient count and spam flag there for evidence).
        self._extras = (array(VALUE_TYPE, extras) if extras is not None
                        else array(VALUE_TYPE, [0]) * n)
        self.total = sum(self._weights)

    @property
    def times(self) -> array[int]:
        """The live entries' times (a copy)."""
        return self._times[self._head:]

    @property
    def weights(self) -> array[int]:
        return self._weights[self._head:]

    @property
    def extras(self) -> array[int]:
        return self._extras[self._head:]

    def newest(self) -> int | None:
        """The newest entry's time; None when empty."""
        return self._times[-1] if len(self._times) > self._head else None

    def add(self, ts: int, weight: int, cap: int, extra: int = 0) -> None:
        """Insert an entry (after any with the same time), then drop what ``cap`` makes useless.

        ``weight`` must be >= 1; ``cap`` >= 1 keeps the newest entries summing to it.
        """
        times = self._times
        if len(times) == self._head or times[-1] <= ts:
            times.append(ts)
            self._weights.append(weight)
            self._extras.append(extra)
        else:
            at = bisect_right(times, ts, self._head)
            times.insert(at, ts)
            self._weights.insert(at, weight)
            self._extras.insert(at, extra)
        self.total += weight
        self._trim_to(cap)

    def slide(self, start_exclusive: int) -> None:
        """Forget entries at or before ``start_exclusive``: the window is now (start, ...]."""
        times, head = self._times, self._head
        if len(times) == head or times[head] > start_exclusive:
            return
        cut = bisect_right(times, start_exclusive, head)
        self.total -= sum(self._weights[head:cut])
        self._drop_to(cut)

    @property
    def unit_weights(self) -> bool:
        """True when every weight is 1 (weights are >= 1, so the sum tells)."""
        return self.total == len(self)

    def _trim_to(self, cap: int) -> None:
        weights, end = self._weights, len(self._weights)
        cut, total = self._head, self.total
        while cut < end and total - weights[cut] >= cap:
            total -= weights[cut]
            cut += 1
        if cut != self._head:
            self.total = total
            self._drop_to(cut)

    def _drop_to(self, head: int) -> None:
        self._head = head
        if head >= _COMPACT_AT and head * 2 >= len(self._times):
            del self._times[:head]
            del self._weights[:head]
            del self._extras[:head]
            self._head = 0

    def __len__(self) -> int:
        return len(self._times) - self._head

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, CappedWindow)
                and self.times == other.times and self.weights == other.weights
                and self.extras == other.extras)

    def __repr__(self) -> str:
        entries = list(zip(self.times, self.weights, self.extras, strict=True))
        return f"CappedWindow({entries!r})"
