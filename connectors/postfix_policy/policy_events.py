"""Publish every policy request as a PolicyEvent without ever making Postfix wait.

The producer's local queue is the buffer: when Kafka is slow or away and the
queue is full, the event is dropped and counted; the answer was already sent.
"""

from __future__ import annotations

import logging

from confluent_kafka import Producer

from connectors.kafka.client_config import producer_config
from connectors.postfix_policy.policy_protocol import to_policy_request
from connectors.postfix_policy.responder import Answer
from pipeline.engine.clock import from_ms
from schemas.config import KafkaSettings
from schemas.events import PolicyEvent

log = logging.getLogger("floodgate.policy")


class PolicyEventPublisher:
    def __init__(self, settings: KafkaSettings, topic: str, host: str, buffer_limit: int) -> None:
        self._producer = Producer(producer_config(
            settings, **{"queue.buffering.max.messages": buffer_limit,
                         "message.timeout.ms": 300_000}))
        self._topic = topic
        self._host = host
        self.published = 0
        self.dropped = 0
        self.failed = 0

    def publish(self, attributes: dict[str, str], answer: Answer, now_ms: int) -> None:
        request = to_policy_request(attributes)
        # Every field is a string we built or a bounded one from the request: construct
        # without re-validating on the hot path; the model still defines the JSON.
        event = PolicyEvent.model_construct(
            schema_version=1,
            event_id=f"{self._host}/policy/{request.instance or '-'}/{request.protocol_state}/"
                     f"{request.recipient}"[:2000],
            ts=from_ms(now_ms), host=self._host, request=request,
            answer=answer.wire.decode().removeprefix("action=").strip(),
            action_id=answer.action.action_id if answer.action else None)
        try:
            self._producer.produce(self._topic, value=event.model_dump_json().encode(),
                                   key=(request.sasl_username or request.sender or
                                        request.client_address or "-").encode(),
                                   timestamp=now_ms, on_delivery=self._delivered)
        except BufferError:
            self.dropped += 1  # Kafka is behind: the answer matters, the record can go

    def poll(self) -> None:
        self._producer.poll(0)

    def close(self, timeout_s: float = 5.0) -> None:
        left = self._producer.flush(timeout_s)
        if left:
            self.dropped += left
            log.warning("%d policy events not delivered at shutdown", left)

    def _delivered(self, error: object, _message: object) -> None:
        if error is None:
            self.published += 1
        else:
            self.failed += 1
