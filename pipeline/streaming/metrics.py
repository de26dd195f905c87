"""The worker's Prometheus metrics (no subject as a label: only fixed words)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector, Histogram


@dataclass
class WorkerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        GCCollector(registry=r)  # python_gc_*: collections and their objects, per generation
        self.consumed = Counter("floodgate_worker_records", "Source records handled",
                                ["topic_kind"], registry=r)
        self.actions = Counter("floodgate_worker_actions", "Action records published",
                               ["action", "state"], registry=r)
        self.dead_letters = Counter("floodgate_worker_dead_letters", "Records set aside",
                                    registry=r)
        self.counted = Counter("floodgate_worker_entries_counted",
                               "Messages counted under a subject (one per key dimension)",
                               registry=r)
        self.held = Gauge("floodgate_worker_entries_held",
                          "Entries waiting for the watermark (event-time order)", registry=r)
        self.forced = Gauge("floodgate_worker_entries_forced",
                            "Entries released before the watermark because too many were held",
                            registry=r)
        self.dropped_subjects = Counter("floodgate_worker_idle_subjects_dropped",
                                        "Idle subjects removed from the store", registry=r)
        self.checkpoint = Histogram(
            "floodgate_worker_checkpoint_seconds",
            "Time the counting thread spent on a checkpoint (changelog, markers, RocksDB, "
            "offsets), its slices added up", registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.heap_trim = Histogram(
            "floodgate_worker_heap_trim_seconds",
            "Time the counting thread spent giving freed heap memory back to the system "
            "(malloc_trim, after a checkpoint)", registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25))
        self.release_delay = Histogram(
            "floodgate_worker_release_delay_seconds",
            "Wall clock minus the event time of the oldest entry counted, per release "
            "(for live traffic: the longest wait of mail to be counted)", registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600))
        self.routed = Counter("floodgate_worker_routed_batches",
                              "Routed batches by the way they reached their counting partition: "
                              "taken at once (early) or through the subject-events topic (kafka)",
                              ["path"], registry=r)
        self.restarts = Counter("floodgate_worker_counting_restarts",
                                "Times the counting loop failed and started again with new "
                                "Kafka clients (from its last checkpoint)", registry=r)
        self.paused = Gauge("floodgate_worker_sources_paused",
                            "Source partitions paused because their events run ahead of the "
                            "slowest source partition (worker.max_source_lead_s)", registry=r)
        self.lag = Gauge("floodgate_worker_consumer_lag", "Records behind the end, per topic",
                         ["topic"], registry=r)
