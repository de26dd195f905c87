"""Keep an ActiveActions view current from ``floodgate.actions``, in a background thread.

Every responder needs every action, so this reads all partitions from the
beginning without a consumer group (``TopicReader``).
It is *caught up* once it has read up to the end offsets that existed when it
started; the responder reports ready only then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition
from pydantic import ValidationError

from connectors.kafka.client_config import consumer_config
from connectors.kafka.topic_reader import CatchUpReader
from schemas.config import KafkaSettings
from schemas.events import ActionEvent

log = logging.getLogger("floodgate.actions")


Delivery = Callable[[ActionEvent | None, int, int], None]  # event (None: tombstone), partition, offset
# Once Kafka answers: None to resume from ``start_offsets``, or the offsets to read from instead
# (``{}``: from the start) when the stored state turned out to come from other topics.
Claim = Callable[[], dict[int, int] | None]


class ActionFeed(CatchUpReader):
    """``start_offsets``: per partition, where to resume (from an ActionStore); else the start.
    ``claim`` checks, once Kafka answers, that those offsets are of this topic."""

    def __init__(self, settings: KafkaSettings, topic: str, deliver: Delivery,
                 start_offsets: dict[int, int] | None = None, claim: Claim | None = None) -> None:
        super().__init__(topic, consumer_config(settings, f"{settings.client_id}-actions",
                                                **{"enable.partition.eof": False}),
                         "action-feed", log, start_offsets)
        self._deliver = deliver
        self._claim = claim

    def _positions(self, consumer: Consumer, partitions: list[int]) -> list[TopicPartition]:
        if self._claim is not None:
            instead = self._claim()
            self._start = self._start if instead is None else instead
        return super()._positions(consumer, partitions)

    def _take(self, key: bytes | None, value: bytes | None, partition: int, offset: int) -> None:
        event = None
        if value is not None:  # None: a tombstone from compaction, nothing to apply
            try:
                event = ActionEvent.model_validate_json(value)
            except ValidationError as exc:
                self.bad_records += 1
                log.warning("skipping bad action record %s/%d@%d: %s", self.topic, partition,
                            offset, exc.errors(include_url=False)[0]["msg"])
        self._deliver(event, partition, offset)
