"""RocksDB sizes for the worker's per-partition stores.

RocksDB's usual sizes (64 MiB write buffers x3 and large block caches per
database) would reserve gigabytes with one database per partition. These
defaults fit a 2-core, few-GiB worker; raise them for large hosts
(``worker.rocksdb_write_buffer_mib``, ``worker.rocksdb_block_cache_mib``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rocksdict

MiB = 1024 * 1024


@dataclass(frozen=True)
class StoreOptions:
    write_buffer_size: int = 4 * MiB  # bytes per memtable
    max_write_buffer_number: int = 2
    target_file_size_base: int = 8 * MiB
    block_cache_size: int = 16 * MiB  # bytes, per partition
    bloom_filter_size: int = 10  # bits per key
    max_open_files: int = 256

    @classmethod
    def sized(cls, write_buffer_mib: int, block_cache_mib: int) -> StoreOptions:
        """The operator's sizes (``worker.rocksdb_*``); files follow the memtable size."""
        return cls(write_buffer_size=write_buffer_mib * MiB,
                   target_file_size_base=2 * write_buffer_mib * MiB,
                   block_cache_size=block_cache_mib * MiB)

    def to_rocksdict(self) -> Any:
        """rocksdict ``Options`` in raw mode (keys and values are bytes)."""
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_max_open_files(self.max_open_files)
        options.set_write_buffer_size(self.write_buffer_size)
        options.set_max_write_buffer_number(self.max_write_buffer_number)
        options.set_target_file_size_base(self.target_file_size_base)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, False)
        table.set_block_cache(rocksdict.Cache(self.block_cache_size))
        options.set_block_based_table_factory(table)
        return options
