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
from schemas.config import KafkaSettings

log = logging.getLogger("floodgate.console")

BATCH = 2_000
# value, the record's timestamp (ms); raises ValueError for a record it cannot use
Handler = Callable[[bytes, int], None]


class RecentRecords:
    def __init__(self, settings: KafkaSettings, topic: str, since_ms: Callable[[], int],
                 handle: Handler) -> None:
        self._settings, self.topic = settings, topic
        self._since_ms, self._handle = since_ms, handle
        self._stop = threading.Event()
        self.records = 0
        self.bad_records = 0
        self.started = threading.Event()  # every partition assigned
        self._thread = threading.Thread(target=self._run, name=f"console-{topic}", daemon=True)

    def start(self) -> RecentRecords:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def _run(self) -> None:
        consumer = Consumer(consumer_config(
            self._settings, f"{self._settings.client_id}-console",
            # librdkafka prefetches up to 64 MiB by default: a summary needs no such buffer
            **{"enable.partition.eof": False, "fetch.wait.max.ms": 200,
               "queued.max.messages.kbytes": 4096}))
        try:
            if not self._assign(consumer):
                return
            self.started.set()
            while not self._stop.is_set():
                try:
                    messages = consumer.consume(BATCH, 0.5)
                except KafkaException as exc:
                    log.warning("reading %s: %s", self.topic, exc)
                    self._stop.wait(1)
                    continue
                for message in messages:
                    if message.error() is None:
                        self._take(message.value(), message.timestamp()[1])
        finally:
            consumer.close()

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

    def _assign(self, consumer: Consumer) -> bool:
        while not self._stop.is_set():
            try:
                metadata = consumer.list_topics(self.topic, timeout=10)
                partitions = list(metadata.topics[self.topic].partitions)
                if partitions:
                    since = self._since_ms()
                    asked = [TopicPartition(self.topic, p, since) for p in partitions]
                    found = consumer.offsets_for_times(asked, timeout=10)
                    consumer.assign([TopicPartition(self.topic, tp.partition,
                                                    tp.offset if tp.offset >= 0 else OFFSET_END)
                                     for tp in found])
                    return True
            except KafkaException as exc:
                log.warning("waiting for topic %s: %s", self.topic, exc)
            self._stop.wait(2)
        return False
