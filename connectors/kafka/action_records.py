"""Publish operators' action records (lifts, manual actions) to the action topic.

``floodgate actions lift|add`` and the console write the same records the same
way: keyed by subject, stamped with the record's own time, confirmed by Kafka
before anyone is told it is done.
"""

from __future__ import annotations

from confluent_kafka import Producer

from connectors.kafka.errors import NotConfirmed
from schemas.events import ActionEvent
from schemas.time_ms import to_ms


def publish_actions(producer: Producer, topic: str, actions: list[ActionEvent],
                    timeout_s: float = 30) -> None:
    failed: list[str] = []

    def confirmed(error: object, _message: object) -> None:
        if error is not None:
            failed.append(str(error))

    for action in actions:
        producer.produce(topic, value=action.model_dump_json().encode(), key=action.key.encode(),
                         timestamp=to_ms(action.ts), on_delivery=confirmed)
    if producer.flush(timeout_s) or failed:
        raise NotConfirmed(f"Kafka did not confirm the action records within {timeout_s:.0f}s"
                           + (f": {failed[0]}" if failed else ""))
