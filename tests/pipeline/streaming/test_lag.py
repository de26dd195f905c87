"""The consumer's lag where librdkafka knows no position: after a restart at the end."""

from __future__ import annotations

from confluent_kafka import OFFSET_INVALID, TopicPartition

from pipeline.streaming.lag import LagGauge
from pipeline.streaming.metrics import WorkerMetrics


class AtTheEnd:
    """A consumer assigned partitions whose committed offsets are their ends: librdkafka's
    position stays unknown (-1001) until a record is consumed, which never comes."""

    def __init__(self, ends: dict[tuple[str, int], int]) -> None:
        self.ends = ends

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in self.ends]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, OFFSET_INVALID) for tp in partitions]

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool) -> tuple[int, int]:
        return 0, self.ends[(tp.topic, tp.partition)]


def test_partitions_with_nothing_left_to_read_after_a_restart_show_no_lag() -> None:
    topics = ("floodgate.mail-events", "floodgate.subject-events")
    ends = {(topics[0], 0): 120, (topics[1], 0): 40}
    metrics = WorkerMetrics()
    gauge = LagGauge(metrics)
    for topic in topics:
        metrics.lag.labels(topic).set(-1)  # not measured yet
    for (topic, partition), end in ends.items():  # the consumer's end-of-partition events
        gauge.at_end(topic, partition, end)
    gauge.measure(AtTheEnd(ends))
    for topic in topics:
        assert metrics.lag.labels(topic)._value.get() == 0  # type: ignore[attr-defined]
