"""Fewer repeats of the Kafka client's complaints while a broker is away.

With a broker down for 10 s, aiokafka logs "Unable connect to node" about a
hundred times a second; the one line an operator needs drowns in a thousand.
The filter lets one record of a kind (logger and message template) through per
interval and says on the next one how many it held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

MAX_KINDS = 1_000  # templates are few; a bound all the same


class RepeatThrottle(logging.Filter):
    def __init__(self, interval_s: float = 30.0,
                 loggers: tuple[str, ...] = ("aiokafka", "faust", "mode"),
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._loggers = loggers
        self._clock = clock
        self._seen: dict[tuple[str, object], tuple[float, int]] = {}  # kind: (shown at, held)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(self._loggers):
            return True
        kind = (record.name, record.msg)  # the template: same complaint, other node or offset
        now = self._clock()
        shown_at, held = self._seen.get(kind, (now - self._interval_s, 0))
        if now - shown_at < self._interval_s:
            self._seen[kind] = (shown_at, held + 1)
            return False
        if len(self._seen) >= MAX_KINDS:
            self._seen.clear()
        self._seen[kind] = (now, 0)
        if held:
            record.msg = f"{record.msg} [{held} more like this in the last {now - shown_at:.0f} s]"
        return True


def throttle_handlers(throttle: RepeatThrottle) -> None:
    """Attach to the root logger's handlers: a filter on a logger misses its children."""
    for handler in logging.getLogger().handlers:
        if throttle not in handler.filters:
            handler.addFilter(throttle)
