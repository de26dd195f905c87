"""The one way Floodgate reads a whole topic in the background: a thread, no consumer group.

Readers that every process needs in full (the actions in force) or only
recently (the console's summaries) join no group and commit nothing, so
there is no rebalance to wait for and no offset to share. A topic that does
not exist yet, or a broker that does not answer, is waited for. Subclasses
say where each partition starts (``_positions``) and what a cycle reads
(``_read``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Self

from confluent_kafka import Consumer, TopicPartition

from connectors.kafka.errors import KAFKA_FAILURES

RETRY_S = 2.0  # between looks for a topic that is not there (yet)


class TopicReader:
    def __init__(self, topic: str, consumer_settings: dict[str, Any], name: str,
                 log: logging.Logger) -> None:
        self.topic, self._consumer_settings, self._log = topic, consumer_settings, log
        self._stop = threading.Event()
        self.records = 0
        self.bad_records = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(15)

    def _run(self) -> None:
        consumer = Consumer(self._consumer_settings)
        try:
            assignment = self.wait_for_assignment(consumer)
            if assignment is not None:
                consumer.assign(assignment)
                self._read(consumer)
        finally:
            consumer.close()

    def wait_for_assignment(self, consumer: Consumer) -> list[TopicPartition] | None:
        """Every partition at its start; None when told to stop first."""
        while not self._stop.is_set():
            try:
                metadata = consumer.list_topics(self.topic, timeout=10)
                partitions = sorted(metadata.topics[self.topic].partitions)
                if partitions:
                    return self._positions(consumer, partitions)
            except KAFKA_FAILURES as exc:
                self._log.warning("waiting for topic %s: %s", self.topic, exc)
            self._stop.wait(RETRY_S)
        return None

    def _positions(self, consumer: Consumer, partitions: list[int]) -> list[TopicPartition]:
        """Where each partition is read from (may ask Kafka: a failure is retried)."""
        raise NotImplementedError

    def _read(self, consumer: Consumer) -> None:
        """Read until ``self._stop`` is set."""
        raise NotImplementedError
