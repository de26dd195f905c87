"""Expiries and the idle sweep of each counting partition, each at its own moment.

Each partition has its own phase within ``tick_interval_s``: ticking them all
at once stalled live counting for up to 0.1 s a second (bench_worker).
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.streaming.counting_partition import CountingPartition
from pipeline.streaming.metrics import WorkerMetrics


def phase(number: int) -> float:
    """Where in the tick interval a counting partition's ticks fall: spread over it (0 to 1)."""
    return (number * 0.618034) % 1.0


def tick_due(partitions: Iterable[CountingPartition], now: float, interval_s: float,
             metrics: WorkerMetrics) -> None:
    """Tick, at its watermark, each partition whose ``next_tick`` (monotonic seconds) has come;
    its next one falls one interval on, more after a long cycle."""
    for partition in partitions:
        if partition.next_tick > now:
            continue
        partition.next_tick += interval_s * ((now - partition.next_tick) // interval_s + 1)
        watermark = partition.order.watermark()
        if watermark is None:
            continue
        frontier = partition.order.frontier
        report = partition.counter.tick(watermark, frontier[0] if frontier else None)
        metrics.dropped_subjects.inc(report.dropped)
