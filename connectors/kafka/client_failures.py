"""When a librdkafka client has failed for good, and how often a process may start a new one.

librdkafka raises *fatal* errors that no retry clears: an idempotent producer
whose sequence numbers the broker no longer agrees with (seen when a killed
broker comes back without its last records) takes nothing more. The process
then replaces the client and resumes from its own last safe point, a few
times; failing more often than that, it stops and says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException


def is_fatal(exc: BaseException) -> bool:
    """A fatal client error: raised as such, or surfacing from inside a client callback, where
    confluent-kafka reports it as a SystemError."""
    if isinstance(exc, KafkaException):
        error = exc.args[0] if exc.args else None
        return isinstance(error, KafkaError) and (error.fatal() or
                                                  error.code() == KafkaError._FATAL)
    return isinstance(exc, SystemError)


@dataclass
class RestartBudget:
    """At most ``limit`` restarts in any ``window_s``."""

    limit: int = 5
    window_s: float = 600.0
    clock: Callable[[], float] = time.monotonic
    _times: list[float] = field(default_factory=list)

    def spend(self) -> bool:
        """Count one restart; False when it is one too many."""
        now = self.clock()
        self._times = [t for t in self._times if now - t < self.window_s] + [now]
        return len(self._times) <= self.limit

    @property
    def used(self) -> int:
        return len(self._times)
