"""The counting partitions this worker holds: opened and restored on assignment, closed on
revocation, each with its RocksDB store, its event order and its counter."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from pipeline.engine.evaluator import ThresholdEngine
from pipeline.streaming.counter import SubjectCounter
from pipeline.streaming.counting_partition import CountingPartition
from pipeline.streaming.event_order import EventOrder, OrderCheckpoint, Source
from pipeline.streaming.state import recovery
from pipeline.streaming.state.partition_store import PartitionStore
from pipeline.streaming.state.store_options import StoreOptions
from pipeline.streaming.ticks import phase
from schemas.config import WorkerSettings
from schemas.events import ActionEvent

log = logging.getLogger("floodgate.worker")


def counting_dir(data_dir: str) -> Path:
    """The counting partitions' RocksDB stores, under ``worker.data_dir``."""
    return Path(data_dir) / "counting"


class PartitionManager:
    def __init__(self, settings: WorkerSettings, engine: ThresholdEngine, changelog: str,
                 restore_settings: dict[str, Any]) -> None:
        self._engine, self._changelog, self._restore = engine, changelog, restore_settings
        self._data = counting_dir(settings.data_dir)
        self._options = StoreOptions.sized(settings.rocksdb_write_buffer_mib,
                                           settings.rocksdb_block_cache_mib).to_rocksdict()
        self._decoded = settings.decoded_subjects
        self._tick_s = settings.tick_interval_s
        self._max_held = settings.max_held_entries
        self.held_per_partition = self._max_held
        self.partitions: dict[int, CountingPartition] = {}

    def use_engine(self, engine: ThresholdEngine) -> None:
        """Count by ``engine`` from now on, in open partitions and those opened later."""
        self._engine = engine
        for partition in self.partitions.values():
            partition.counter.engine = engine

    def share_held(self, counting: int) -> None:
        """The bound on held entries is the worker's, shared by the ``counting`` partitions it
        is assigned."""
        self.held_per_partition = max(1_000, self._max_held // max(1, counting))

    def open(self, number: int, expected: list[Source], producer: Producer,
             publish: Callable[[ActionEvent], None]) -> int | None:
        """Open and restore a counting partition; the offset to resume reading it from."""
        store = PartitionStore(self._data / f"p{number}", self._options, self._decoded)
        marker = recovery.restore(store, producer, self._restore, self._changelog, number)
        try:
            checkpoint = OrderCheckpoint.from_json(marker.get("order") or {})
        except ValueError as exc:
            log.error("partition %d: %s; counting resumes without it", number, exc)
            checkpoint = OrderCheckpoint()
        order = EventOrder(expected, checkpoint, self.held_per_partition)
        counter = SubjectCounter(self._engine, store, publish)
        partition = CountingPartition(number, store, order, counter,
                                      lift_offset=int(marker.get("lift_offset", -1)))
        partition.next_tick = time.monotonic() + self._tick_s * phase(number)
        self.partitions[number] = partition
        resume = marker.get("resume")
        return resume if isinstance(resume, int) else None

    def close(self, number: int) -> None:
        partition = self.partitions.pop(number, None)
        if partition is not None:
            partition.store.close()

    def close_all(self) -> None:
        for number in list(self.partitions):
            self.close(number)

    def held(self) -> int:
        return sum(p.order.held for p in self.partitions.values())

    def forced(self) -> int:
        return sum(p.order.forced for p in self.partitions.values())
