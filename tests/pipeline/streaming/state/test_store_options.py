from __future__ import annotations

from pathlib import Path

import rocksdict

from pipeline.streaming.state.store_options import MiB, StoreOptions
from schemas.config import WorkerSettings


def test_the_operators_sizes_reach_the_store_options() -> None:
    worker = WorkerSettings(rocksdb_write_buffer_mib=64, rocksdb_block_cache_mib=2)
    options = StoreOptions.sized(worker.rocksdb_write_buffer_mib, worker.rocksdb_block_cache_mib)
    assert options.write_buffer_size == 64 * MiB
    assert options.target_file_size_base == 128 * MiB
    assert options.block_cache_size == 2 * MiB


def test_the_defaults_are_the_small_sizes() -> None:
    worker = WorkerSettings()
    sized = StoreOptions.sized(worker.rocksdb_write_buffer_mib, worker.rocksdb_block_cache_mib)
    assert sized == StoreOptions()


def test_the_options_open_a_raw_bytes_database(tmp_path: Path) -> None:
    db = rocksdict.Rdict(str(tmp_path / "db"), StoreOptions().to_rocksdict())
    db[b"\x00key"] = b"\xffvalue"
    assert db[b"\x00key"] == b"\xffvalue"
    db.close()
