"""Producing when librdkafka's local queue may be full: the one waiting loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import Producer


def produce_waiting(producer: Producer, topic: str, wait_s: float = 0.05,
                    give_up: Callable[[], bool] | None = None, **record: Any) -> bool:
    """``producer.produce(topic, **record)``; while the local queue is full (``BufferError``),
    serve delivery reports for ``wait_s`` and try again. False, record not sent, once
    ``give_up()`` says so (checked after each wait); True once the record is queued."""
    while True:
        try:
            producer.produce(topic, **record)
            return True
        except BufferError:  # Kafka is slow or away: let deliveries drain
            producer.poll(wait_s)
            if give_up is not None and give_up():
                return False
