"""The counting consumer's lag per topic, for ``floodgate_worker_consumer_lag``."""

from __future__ import annotations

from typing import Any

from pipeline.streaming.metrics import WorkerMetrics


class LagGauge:
    """librdkafka's position stays unknown for a partition that had nothing to read since its
    assignment (a restart after catching up): where the consumer found each partition's end
    stands in for it."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self._metrics = metrics
        self.ends: dict[tuple[str, int], int] = {}

    def at_end(self, topic: str, partition: int, offset: int) -> None:
        self.ends[(topic, partition)] = offset

    def measure(self, consumer: Any) -> None:
        """``consumer``: confluent-kafka's; nothing is measured between assignments."""
        try:
            assignment = consumer.assignment()
            positions = consumer.position(assignment)
        except Exception:  # between assignments
            return
        lag: dict[str, int] = {}
        for tp in positions:
            position = tp.offset if tp.offset >= 0 else self.ends.get((tp.topic, tp.partition), -1)
            _, high = consumer.get_watermark_offsets(tp, cached=True)
            if high is not None and high >= 0 and position >= 0:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - position)
        for topic, behind in lag.items():
            self._metrics.lag.labels(topic).set(behind)
