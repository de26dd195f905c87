"""Keep an ActiveActions view current from ``floodgate.actions``, in a background thread.

Every responder needs every action, so this reads all partitions from the
beginning without a consumer group (no rebalance waits, no shared offsets).
It is *caught up* once it has read up to the end offsets that existed when it
started; the responder reports ready only then.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from pydantic import ValidationError

from connectors.kafka.client_config import consumer_config
from connectors.kafka.errors import KafkaUnreachable
from schemas.config import KafkaSettings
from schemas.events import ActionEvent

log = logging.getLogger("floodgate.actions")


Delivery = Callable[[ActionEvent | None, int, int], None]  # event (None: tombstone), partition, offset
# Once Kafka answers: None to resume from ``start_offsets``, or the offsets to read from instead
# (``{}``: from the start) when the stored state turned out to come from other topics.
Claim = Callable[[], dict[int, int] | None]


class ActionFeed:
    """``start_offsets``: per partition, where to resume (from an ActionStore); else the start.
    ``claim`` checks, once Kafka answers, that those offsets are of this topic."""

    def __init__(self, settings: KafkaSettings, topic: str, deliver: Delivery,
                 start_offsets: dict[int, int] | None = None, claim: Claim | None = None) -> None:
        self._settings = settings
        self._topic = topic
        self._deliver = deliver
        self._start = start_offsets or {}
        self._claim = claim
        self._stop = threading.Event()
        self.caught_up = threading.Event()
        self.records = 0
        self.bad_records = 0
        self._thread = threading.Thread(target=self._run, name="action-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def _run(self) -> None:
        consumer = Consumer(consumer_config(self._settings, f"{self._settings.client_id}-actions",
                                            **{"enable.partition.eof": False}))
        try:
            ends = self._assign_all(consumer)
            while not self._stop.is_set():
                message = consumer.poll(0.5)
                if message is not None and not message.error():
                    partition, offset = message.partition() or 0, message.offset() or 0
                    self._take(message.value(), partition, offset)
                    if partition in ends and offset + 1 >= ends[partition]:
                        del ends[partition]
                if not ends and not self.caught_up.is_set():
                    self.caught_up.set()
                    log.info("action view caught up: %d records", self.records)
        finally:
            consumer.close()

    def _assign_all(self, consumer: Consumer) -> dict[int, int]:
        """Assign every partition from the start; return the end offsets still to reach."""
        while not self._stop.is_set():
            try:
                metadata = consumer.list_topics(self._topic, timeout=10)
                partitions = metadata.topics[self._topic].partitions
                if partitions and self._claim is not None:
                    instead = self._claim()
                    self._start = self._start if instead is None else instead
                if partitions:
                    break
            except (KafkaException, KafkaUnreachable) as exc:
                log.warning("waiting for topic %s: %s", self._topic, exc)
            self._stop.wait(2)
        else:
            return {}
        ends = {}
        for partition in partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(self._topic, partition),
                                                     timeout=10)
            if high > self._start.get(partition, 0):
                ends[partition] = high
        consumer.assign([TopicPartition(self._topic, p, self._start.get(p, OFFSET_BEGINNING))
                         for p in partitions])
        return ends

    def _take(self, value: bytes | None, partition: int, offset: int) -> None:
        self.records += 1
        event = None
        if value is not None:  # None: a tombstone from compaction, nothing to apply
            try:
                event = ActionEvent.model_validate_json(value)
            except ValidationError as exc:
                self.bad_records += 1
                log.warning("skipping bad action record %s/%d@%d: %s", self._topic, partition,
                            offset, exc.errors(include_url=False)[0]["msg"])
        self._deliver(event, partition, offset)
