"""Drop a message seen twice (log and policy service, or a connector restart) by its event_id."""

from __future__ import annotations

from collections import deque


class RecentEventIds:
    """Event ids seen in the last ``horizon_ms`` of event time.

    A repeat older than the horizon is not recognised, so the horizon should be
    at least the longest threshold window: a repeat that old can no longer
    change any window anyway (it would fall outside). ``limit``: at most this
    many ids are kept, the oldest forgotten first (a reader that must keep its
    memory fixed whatever the rate; replay keeps them all).

    Replay and the console use this; the worker keeps its ids in each subject's
    stored state instead (``stored_state``), because its subjects are spread
    over partitions and workers and must survive a restart.
    """

    def __init__(self, horizon_ms: int, limit: int | None = None) -> None:
        self._horizon = horizon_ms
        self._limit = limit
        self._seen: dict[str, int] = {}
        self._order: deque[tuple[int, str]] = deque()
        self._newest = 0

    def first_time(self, event_id: str, ts_ms: int) -> bool:
        """Record ``event_id``; True unless it was seen within the horizon."""
        if event_id in self._seen:
            return False
        self._seen[event_id] = ts_ms
        self._order.append((ts_ms, event_id))
        self._newest = max(self._newest, ts_ms)
        self._forget_before(self._newest - self._horizon)
        if self._limit is not None and len(self._order) > self._limit:
            _, old = self._order.popleft()
            self._seen.pop(old, None)
        return True

    def _forget_before(self, cutoff: int) -> None:
        # Ids leave in arrival order; a late arrival may linger a little longer
        # than the horizon, never shorter.
        while self._order and self._order[0][0] < cutoff:
            _, old = self._order.popleft()
            self._seen.pop(old, None)

    def __len__(self) -> int:
        return len(self._seen)
