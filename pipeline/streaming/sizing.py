"""How much memory a worker needs, from its settings: the one formula the deployment guide,
``check-config`` and the shipped systemd unit's ``MemoryMax`` are checked against.

A worker's memory is bounded by its settings, not by the number of subjects (those beyond
the caches live on disk): a base for Python, Faust and the Kafka clients; per counting
partition it holds, RocksDB's two memtables and block cache and the decoded-subject cache;
and the entries held for event-time order, which a backlog served a partition at a time
can fill (``worker.max_held_entries`` for the whole worker).
"""

from __future__ import annotations

from schemas.config import WorkerSettings

BASE_MIB = 100  # the interpreter, Faust, the Kafka clients' buffers
DECODED_SUBJECT_BYTES = 2_000  # a decoded subject with its windows (measured on bench_worker)
HELD_ENTRY_BYTES = 700  # an entry held for event-time order
MIB = 1 << 20


def per_partition_mib(settings: WorkerSettings) -> float:
    return (2 * settings.rocksdb_write_buffer_mib + settings.rocksdb_block_cache_mib
            + settings.decoded_subjects * DECODED_SUBJECT_BYTES / MIB)


def worker_memory_mib(settings: WorkerSettings, partitions_held: int) -> float:
    """The most a worker holding ``partitions_held`` counting partitions uses."""
    return (BASE_MIB + partitions_held * per_partition_mib(settings)
            + settings.max_held_entries * HELD_ENTRY_BYTES / MIB)


def partitions_held(settings: WorkerSettings, workers: int) -> int:
    """The most partitions one of ``workers`` holds (Kafka spreads them evenly)."""
    return -(-settings.partitions // max(workers, 1))
