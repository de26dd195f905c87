"""The worker's Prometheus metrics (no subject as a label: only fixed words)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass
class WorkerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.consumed = Counter("floodgate_worker_records", "Source records handled",
                                ["topic_kind"], registry=r)
        self.actions = Counter("floodgate_worker_actions", "Action records published",
                               ["action", "state"], registry=r)
        self.dead_letters = Counter("floodgate_worker_dead_letters", "Records set aside",
                                    registry=r)
        self.filled = Counter("floodgate_worker_skipped_records_read",
                              "Records the consumer skipped, read directly", registry=r)
        self.dropped_subjects = Counter("floodgate_worker_idle_subjects_dropped",
                                        "Idle subjects removed from the table", registry=r)
        self.lag = Gauge("floodgate_worker_consumer_lag", "Records behind the end, per topic",
                         ["topic"], registry=r)
