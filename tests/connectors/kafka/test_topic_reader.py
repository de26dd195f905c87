"""The background reader waits for its topic through Kafka failures, then reads from where
its subclass says; told to stop first, it assigns nothing."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from connectors.kafka import topic_reader
from connectors.kafka.errors import KafkaUnreachable
from connectors.kafka.topic_reader import TopicReader


class Flaky:
    """Fails ``failures`` times, then has a topic with three partitions."""

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.asked = 0

    def list_topics(self, topic: str, timeout: float) -> Any:
        self.asked += 1
        if self.failures:
            raise self.failures.pop(0)
        return SimpleNamespace(topics={topic: SimpleNamespace(partitions={2: 0, 0: 0, 1: 0})})


class FromTheStart(TopicReader):
    def __init__(self) -> None:
        super().__init__("t", {}, "test-reader", logging.getLogger("test"))
        self.claims = 0

    def _positions(self, consumer: Any, partitions: list[int]) -> list[TopicPartition]:
        self.claims += 1
        if self.claims == 1:
            raise KafkaUnreachable("no answer about the topic's identity")  # retried too
        return [TopicPartition(self.topic, p, 0) for p in partitions]


@pytest.fixture(autouse=True)
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(topic_reader, "RETRY_S", 0.0)


def test_failures_are_waited_out_and_every_partition_is_placed() -> None:
    reader, consumer = FromTheStart(), Flaky([KafkaException(KafkaError(KafkaError._TRANSPORT))])
    assignment = reader.wait_for_assignment(consumer)  # type: ignore[arg-type]
    assert assignment is not None
    assert [(tp.partition, tp.offset) for tp in assignment] == [(0, 0), (1, 0), (2, 0)]
    assert (consumer.asked, reader.claims) == (3, 2)


def test_a_reader_told_to_stop_assigns_nothing() -> None:
    reader = FromTheStart()
    reader.stop()  # before it ever started
    assert reader.wait_for_assignment(Flaky([])) is None  # type: ignore[arg-type]
