"""RocksDB sizes for Faust tables.

Faust's defaults give every partition of every table 3 x 64 MiB write buffers
and a 2 GiB block cache: with three tables of 12 partitions that reserves tens
of gigabytes. These defaults fit a 2-core, few-GiB worker; raise them for
large hosts (``worker.rocksdb_write_buffer_mib``, ``worker.rocksdb_block_cache_mib``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MiB = 1024 * 1024


@dataclass(frozen=True)
class TableStoreOptions:
    write_buffer_size: int = 4 * MiB  # bytes per memtable
    max_write_buffer_number: int = 2
    target_file_size_base: int = 8 * MiB
    block_cache_size: int = 16 * MiB  # bytes, per partition
    block_cache_compressed_size: int = 4 * MiB
    bloom_filter_size: int = 10  # bits per key
    max_open_files: int = 256
    ttl: int | None = None  # seconds; None keeps keys until deleted

    @classmethod
    def sized(cls, write_buffer_mib: int, block_cache_mib: int) -> TableStoreOptions:
        """The operator's sizes (``worker.rocksdb_*``); files follow the memtable size."""
        return cls(write_buffer_size=write_buffer_mib * MiB,
                   target_file_size_base=2 * write_buffer_mib * MiB,
                   block_cache_size=block_cache_mib * MiB,
                   block_cache_compressed_size=min(4, block_cache_mib) * MiB)

    def to_faust_options(self) -> dict[str, Any]:
        """The ``options=`` mapping of ``app.Table`` (always the rocksdict driver)."""
        options = {k: v for k, v in asdict(self).items() if v is not None}
        options["driver"] = "rocksdict"
        return options
