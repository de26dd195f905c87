"""Read a topic's recent records, and then its new ones, in a background thread.

The console keeps only summaries, so it joins no consumer group and commits
nothing: every partition is assigned from the first offset at or after
``since_ms`` (Kafka's ListOffsets by time), from the end where the broker has
no record that recent. A broker without a time index (Tansu answers offset 0)
has its older records read too; the summaries leave them out by their own
time. A topic that does not exist yet is waited for.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from confluent_kafka import OFFSET_END, Consumer, KafkaException, TopicPartition

from connectors.kafka.client_config import consumer_config
from connectors.kafka.topic_reader import TopicReader
from schemas.config import KafkaSettings

log = logging.getLogger("floodgate.console")

BATCH = 2_000
# value, the record's timestamp (ms); raises ValueError for a record it cannot use
Handler = Callable[[bytes, int], None]


class RecentRecords(TopicReader):
    def __init__(self, settings: KafkaSettings, topic: str, since_ms: Callable[[], int],
                 handle: Handler) -> None:
        super().__init__(topic, consumer_config(
            settings, f"{settings.client_id}-console",
            # librdkafka prefetches up to 64 MiB by default: a summary needs no such buffer
            **{"enable.partition.eof": False, "fetch.wait.max.ms": 200,
               "queued.max.messages.kbytes": 4096}), f"console-{topic}", log)
        self._since_ms, self._handle = since_ms, handle
        self.started = threading.Event()  # every partition assigned

    def _positions(self, consumer: Consumer, partitions: list[int]) -> list[TopicPartition]:
        since = self._since_ms()
        found = consumer.offsets_for_times(
            [TopicPartition(self.topic, p, since) for p in partitions], timeout=10)
        return [TopicPartition(self.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
                for tp in found]

    def _read(self, consumer: Consumer) -> None:
        self.started.set()
        while not self._stop.is_set():
            try:
                messages = consumer.consume(BATCH, 0.5)
            except KafkaException as exc:
                self._log.warning("reading %s: %s", self.topic, exc)
                self._stop.wait(1)
                continue
            for message in messages:
                if message.error() is None:
                    self._take(message.value(), message.timestamp()[1])

    def _take(self, value: bytes | None, ts_ms: int) -> None:
        self.records += 1
        if value is None:
            return
        try:
            self._handle(value, ts_ms)
        except ValueError as exc:  # pydantic's ValidationError is one
            self.bad_records += 1
            if self.bad_records <= 10 or self.bad_records % 1000 == 0:
                log.warning("skipping a bad record of %s (%d so far): %s", self.topic,
                            self.bad_records, str(exc).splitlines()[0][:200])
