"""A producer that fails for good (a fatal librdkafka error) does not end the tailer: a new one
reads again from the checkpoint. Against a killed and restarted broker:
tests/robustness/test_broker_restart.py."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from connectors.postfix_log.reader import LogReader
from connectors.postfix_log.tail import Restarted, Tailer
from schemas.config import Networks, Topics
from schemas.direction import DirectionRules
from tests.fixtures.tail_doubles import AcceptingProducer, ListFollower
from tests.fixtures.tail_process import message_lines

LINES = [line for n in range(4) for line in message_lines(n)]


class FailingProducer(AcceptingProducer):
    """Takes ``good`` records, then fails as librdkafka does after a fatal error."""

    def __init__(self, good: int, error: Exception) -> None:
        super().__init__()
        self.good, self.error = good, error

    def produce(self, topic: str, on_delivery: Any, **record: Any) -> None:
        if len(self.topics) >= self.good:
            raise self.error
        super().produce(topic, on_delivery, **record)

    def poll(self, _timeout: float = 0) -> int:
        return 0

    def flush(self, _timeout: float = 0) -> int:
        return 0


def reader() -> LogReader:
    return LogReader(DirectionRules(Networks(internal=["10.0.0.0/8"])))


def tailer(tmp_path: Path, first: Any, restarted: list[AcceptingProducer]) -> Tailer:
    def from_checkpoint() -> Restarted:
        restarted.append(FailingProducer(10**9, RuntimeError()))
        return reader(), ListFollower(LINES), restarted[-1]  # type: ignore[return-value]

    return Tailer(reader(), ListFollower(LINES), first, Topics(),  # type: ignore[arg-type]
                  tmp_path / "pos", threading.Event(), from_checkpoint)


def test_a_fatal_producer_error_starts_again_from_the_checkpoint(tmp_path: Path) -> None:
    fatal = KafkaException(KafkaError(KafkaError._FATAL, "out of order sequence", fatal=True))
    restarted: list[AcceptingProducer] = []
    t = tailer(tmp_path, FailingProducer(2, fatal), restarted)
    t.run()
    assert t.restarts == 1 and len(restarted) == 1
    assert restarted[0].topics.count(Topics().mail_events) == 4  # every message, again
    assert t.failed == 0


def test_any_other_error_is_not_hidden(tmp_path: Path) -> None:
    t = tailer(tmp_path, FailingProducer(2, KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT))),
               [])
    with pytest.raises(KafkaException):
        t.run()
    assert t.restarts == 0
