"""Fewer repeats of the Kafka clients' complaints while a broker is away.

With a broker down for 10 s, aiokafka logs "Unable connect to node" about a
hundred times a second and librdkafka "Connect to ... failed" twenty times;
the one line an operator needs drowns in a thousand. The filter lets one
record of a kind through per interval and says on the next one how many it
held back. A kind is the logger and the message with its numbers blanked
(node ids, ports, milliseconds differ from one repeat to the next).

librdkafka's own log goes to the ``floodgate.kafka`` logger (``kafka_logger``),
throttled; Faust's aiokafka loggers are throttled at the worker's handlers.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

MAX_KINDS = 1_000  # kinds are few; a bound all the same
_NUMBERS = re.compile(r"\d+")


class RepeatThrottle(logging.Filter):
    def __init__(self, interval_s: float = 30.0,
                 loggers: tuple[str, ...] = ("aiokafka", "faust", "mode", "floodgate.kafka"),
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._loggers = loggers
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # kind: (shown at, held)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(self._loggers):
            return True
        decided: bool | None = getattr(record, "_floodgate_shown", None)
        if decided is not None:  # a second handler asks about the same record
            return decided
        record._floodgate_shown = shown = self._decide(record)
        return shown

    def _decide(self, record: logging.LogRecord) -> bool:
        kind = (record.name, _NUMBERS.sub("#", record.getMessage()[:300]))
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


def kafka_logger() -> logging.Logger:
    """The logger librdkafka's messages go to (the ``logger`` client setting), throttled."""
    logger = logging.getLogger("floodgate.kafka")
    if not any(isinstance(f, RepeatThrottle) for f in logger.filters):
        logger.addFilter(RepeatThrottle())
    return logger
