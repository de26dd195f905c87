"""Sources far ahead of the slowest are paused only when memory is at stake."""

from __future__ import annotations

from confluent_kafka import TopicPartition

from pipeline.engine.evaluator import ThresholdEngine
from pipeline.streaming.metrics import WorkerMetrics
from pipeline.streaming.pacing import Pacer
from pipeline.streaming.router import Router, SubjectPartitioner
from schemas.config import FloodgateConfig, KafkaSettings
from tests.pipeline.engine.builders import mail


class Pausing:
    """A consumer that records what it was told to pause and resume."""

    def __init__(self) -> None:
        self.paused: set[tuple[str, int]] = set()

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= {(tp.topic, tp.partition) for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {(tp.topic, tp.partition) for tp in partitions}


def test_sources_far_ahead_are_paused_only_when_much_is_held_and_resumed_after() -> None:
    config = FloodgateConfig(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"))
    settings = config.worker
    pacer = Pacer(round(settings.max_source_lead_s * 1000), settings.max_held_entries,
                  WorkerMetrics())
    consumer = Pausing()
    router = Router(ThresholdEngine(config), SubjectPartitioner(1), 0)
    slow, fast = (config.topics.mail_events, 0), (config.topics.mail_events, 1)
    assigned = {slow, fast}
    lead, most = pacer.lead_ms, pacer.max_held
    router.route(slow, 0, mail(at_ms=0).model_dump_json().encode())
    router.route(fast, 0, mail(at_ms=lead + 1).model_dump_json().encode())
    pacer.pace(consumer, router, assigned, most // 2)
    assert consumer.paused == set()  # memory is not at stake: no fetch is wasted
    pacer.pace(consumer, router, assigned, most)
    assert consumer.paused == {fast}
    router.route(slow, 1, mail(at_ms=lead // 2).model_dump_json().encode())
    pacer.pace(consumer, router, assigned, most)
    assert consumer.paused == {fast}  # not yet half way
    router.route(slow, 2, mail(at_ms=lead // 2 + 1).model_dump_json().encode())
    pacer.pace(consumer, router, assigned, most)
    assert consumer.paused == set()
