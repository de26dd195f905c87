"""Producing when librdkafka's local queue is full: wait and try again, or give up when told."""

from __future__ import annotations

from typing import Any

from connectors.kafka.produce import produce_waiting


class FullFor:
    """A producer whose queue is full for the first ``full`` attempts."""

    def __init__(self, full: int) -> None:
        self.full, self.polls, self.sent = full, 0, []  # type: list[dict[str, Any]]

    def produce(self, topic: str, **record: Any) -> None:
        if self.full > 0:
            self.full -= 1
            raise BufferError("Local: Queue full")
        self.sent.append({"topic": topic, **record})

    def poll(self, timeout: float) -> int:
        self.polls += 1
        return 0


def test_a_full_queue_is_waited_out_and_the_record_sent_once() -> None:
    producer = FullFor(3)
    assert produce_waiting(producer, "t", 0.0, value=b"v", key=b"k")  # type: ignore[arg-type]
    assert producer.polls == 3
    assert producer.sent == [{"topic": "t", "value": b"v", "key": b"k"}]


def test_giving_up_leaves_the_record_unsent() -> None:
    producer = FullFor(10**6)
    tries = iter(range(3))
    assert not produce_waiting(producer, "t", 0.0, lambda: next(tries) == 2,  # type: ignore[arg-type]
                               value=b"v")
    assert producer.polls == 3 and producer.sent == []
