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

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

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


class CatchUpReader(TopicReader):
    """Reads every partition from ``start_offsets`` (else its beginning) on, for as long as
    it runs, and is *caught up* (``caught_up``) once it has read up to the end offsets that
    existed when it started. Subclasses take each record (``_take``)."""

    def __init__(self, topic: str, consumer_settings: dict[str, Any], name: str,
                 log: logging.Logger, start_offsets: dict[int, int] | None = None) -> None:
        super().__init__(topic, consumer_settings, name, log)
        self._start = start_offsets or {}
        self._ends: dict[int, int] = {}  # end offsets still to reach before caught up
        self.caught_up = threading.Event()

    def _positions(self, consumer: Consumer, partitions: list[int]) -> list[TopicPartition]:
        """Every partition from where it resumes; notes the end offsets to reach."""
        self._ends = {}
        for partition in partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(self.topic, partition),
                                                     timeout=10)
            if high > self._start.get(partition, 0):
                self._ends[partition] = high
        return [TopicPartition(self.topic, p, self._start.get(p, OFFSET_BEGINNING))
                for p in partitions]

    def _read(self, consumer: Consumer) -> None:
        ends = self._ends
        while not self._stop.is_set():
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                partition, offset = message.partition() or 0, message.offset() or 0
                self.records += 1
                self._take(message.key(), message.value(), partition, offset)
                if partition in ends and offset + 1 >= ends[partition]:
                    del ends[partition]
            if not ends and not self.caught_up.is_set():
                self.caught_up.set()
                self._log.info("%s caught up: %d records", self.topic, self.records)

    def _take(self, key: bytes | None, value: bytes | None, partition: int, offset: int) -> None:
        raise NotImplementedError
