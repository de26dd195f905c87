"""The worker's outputs: actions keyed by subject at their own time, dead letters that keep
the raw record, and every record Kafka refused remembered for the next checkpoint."""

from __future__ import annotations

import base64
from typing import Any

from pipeline.streaming.metrics import WorkerMetrics
from pipeline.streaming.outputs import WorkerOutputs
from schemas.config import Topics
from schemas.events import DeadLetter
from schemas.time_ms import to_ms
from tests.fixtures.policy_requests import action


class Recorder:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def produce(self, topic: str, **record: Any) -> None:
        self.records.append({"topic": topic, **record})


class Refused:
    def topic(self) -> str:
        return "floodgate.actions"


def test_actions_and_dead_letters_go_out_as_their_contracts_say() -> None:
    metrics, producer, topics = WorkerMetrics(), Recorder(), Topics()
    outputs = WorkerOutputs(topics, metrics)
    outputs.bind(producer)  # type: ignore[arg-type]
    fired = action("defer", "sasl_username", "alice")
    outputs.publish(fired)
    outputs.dead_letter("mail", 3, 17, "ts: Field required", b"\x00raw")
    published, dead = producer.records
    assert (published["topic"], published["key"], published["timestamp"]) == (
        topics.actions, b"sasl_username:alice", to_ms(fired.ts))
    letter = DeadLetter.model_validate_json(dead["value"])
    assert (dead["topic"], dead["key"]) == (topics.dead_letter, b"mail:3")
    assert (letter.source_topic, letter.partition, letter.offset) == ("mail", 3, 17)
    assert base64.b64decode(letter.raw_base64) == b"\x00raw"
    assert metrics.dead_letters._value.get() == 1  # type: ignore[attr-defined]


def test_refused_records_are_kept_until_new_clients_are_bound() -> None:
    outputs = WorkerOutputs(Topics(), WorkerMetrics())
    outputs.bind(Recorder())  # type: ignore[arg-type]
    outputs.on_delivery(None, Refused())
    outputs.on_delivery("broker down", Refused())
    assert outputs.undelivered == ["floodgate.actions: broker down"]
    outputs.bind(Recorder())  # type: ignore[arg-type]
    assert outputs.undelivered == []
