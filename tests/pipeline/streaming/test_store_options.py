from __future__ import annotations

from pipeline.streaming.store_options import MiB, TableStoreOptions
from schemas.config import WorkerSettings


def test_the_operators_sizes_reach_the_table_options() -> None:
    worker = WorkerSettings(rocksdb_write_buffer_mib=64, rocksdb_block_cache_mib=2)
    options = TableStoreOptions.sized(worker.rocksdb_write_buffer_mib,
                                      worker.rocksdb_block_cache_mib).to_faust_options()
    assert options["write_buffer_size"] == 64 * MiB
    assert options["target_file_size_base"] == 128 * MiB
    assert options["block_cache_size"] == 2 * MiB
    assert options["block_cache_compressed_size"] == 2 * MiB
    assert options["driver"] == "rocksdict"


def test_the_defaults_are_the_small_sizes() -> None:
    worker = WorkerSettings()
    sized = TableStoreOptions.sized(worker.rocksdb_write_buffer_mib, worker.rocksdb_block_cache_mib)
    assert sized == TableStoreOptions()
