"""Pausing source partitions that run too far ahead of the slowest one."""

from __future__ import annotations

from typing import Any

from confluent_kafka import TopicPartition

from pipeline.streaming.event_order import Source
from pipeline.streaming.metrics import WorkerMetrics
from pipeline.streaming.router import Router


class Pacer:
    """Once three quarters of ``max_held`` entries are held, pause the source partitions that
    run ahead of the slowest by more than ``lead_ms``; resume them once it has come half way,
    or the held entries are down to half. Past the bound itself entries would be counted out
    of order; this comes first. librdkafka drops a paused partition's prefetched records and
    fetches them again from the next unread offset on resume: pausing costs fetches, so it
    waits until memory is at stake."""

    def __init__(self, lead_ms: int, max_held: int, metrics: WorkerMetrics) -> None:
        self.lead_ms, self.max_held, self._metrics = lead_ms, max_held, metrics
        self.paused: set[Source] = set()

    def pace(self, consumer: Any, router: Router, assigned: set[Source], held: int) -> None:
        """``consumer``: confluent-kafka's (``pause``/``resume``); ``held``: entries held now."""
        pause = resume = set()
        if held > self.max_held * 3 // 4:
            pause = router.ahead(assigned, self.lead_ms) - self.paused
        if self.paused:
            resume = (self.paused if held <= self.max_held // 2 else
                      self.paused - router.ahead(assigned, self.lead_ms // 2))
        if pause:
            consumer.pause([TopicPartition(t, p) for t, p in pause])
        if resume:
            consumer.resume([TopicPartition(t, p) for t, p in resume])
        if pause or resume:
            self.paused = (self.paused | pause) - resume
            self._metrics.paused.set(len(self.paused))

    def forget(self, sources: set[Source]) -> None:
        """Partitions no longer this worker's (a pause does not outlive an assignment)."""
        self.paused -= sources
        self._metrics.paused.set(len(self.paused))
