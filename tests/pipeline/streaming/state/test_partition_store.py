"""A checkpoint's snapshot is the store as it was at the freeze, while counting goes on: what
RocksDB gets at the commit, and what reads see until then."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pipeline.engine.customisation import Customisation
from pipeline.streaming.state import stored_state
from pipeline.streaming.state.partition_store import PartitionStore, Snapshot
from pipeline.streaming.state.store_options import StoreOptions

KEYS = [f"sasl_username:u{n}".encode() for n in range(12)]


def stored_ids(store: PartitionStore, key: bytes) -> list[int]:
    raw = store.get_raw(key)
    return list(stored_state.unpack(raw).recent) if raw else []


@pytest.mark.parametrize("seed", range(6))
def test_the_snapshot_is_the_state_at_the_freeze_whatever_happens_meanwhile(
        tmp_path: Path, seed: int) -> None:
    """Subjects changed, deleted, read, evicted (a cache of 3) in random order, with
    checkpoints frozen, sent in pieces and committed in between: every read gives the newest
    state, and RocksDB gets exactly the state of each freeze."""
    rng = random.Random(seed)
    store = PartitionStore(tmp_path / "p", StoreOptions().to_rocksdict(), cache_limit=3)
    current: dict[bytes, list[int]] = {key: [] for key in KEYS}  # ids each subject holds
    frozen: dict[bytes, list[int]] = {}
    snapshot: Snapshot | None = None
    commits = 0
    for step in range(4_000):
        key, roll = rng.choice(KEYS), rng.random()
        if roll < 0.5:
            digest = rng.getrandbits(63)
            assert not store.load(key).seen_hash(digest)
            store.changed(key)
            current[key].append(digest)
        elif roll < 0.58:
            store.delete(key)
            current[key] = []
        elif roll < 0.7:
            assert list(store.load(key).recent) == current[key]
        elif roll < 0.78:
            cached = store.cached(key)
            assert cached is None or list(cached.recent) == current[key]
        elif snapshot is None and roll < 0.86:
            snapshot = store.freeze()
            frozen = {k: list(ids) for k, ids in current.items()}
        elif snapshot is not None and not snapshot.all_sent:
            snapshot.next_changes(rng.randint(1, 5))
        elif snapshot is not None:
            store.commit(snapshot, {"step": step})
            snapshot, commits = None, commits + 1
            assert {key: stored_ids(store, key) for key in KEYS} == frozen
            assert store.meta() == {"step": step}
    assert commits > 20


def test_settings_changed_before_the_freeze_are_read_until_written(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p", StoreOptions().to_rocksdict())
    gold = Customisation("gold", {}, False)
    store.set_settings(b"sasl_username:a", gold.encode())
    snapshot = store.freeze()
    assert store.settings(b"sasl_username:a") == gold  # from the snapshot, not RocksDB
    store.set_settings(b"sasl_username:a", None)  # removed after the freeze
    assert store.settings(b"sasl_username:a") is None
    snapshot.next_changes(len(snapshot))
    store.commit(snapshot, {})
    assert store.settings(b"sasl_username:a") is None and store.pending


def test_one_snapshot_at_a_time_and_only_whole(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p", StoreOptions().to_rocksdict())
    store.load(KEYS[0]).seen_hash(1)
    store.changed(KEYS[0])
    snapshot = store.freeze()
    with pytest.raises(RuntimeError):
        store.freeze()
    with pytest.raises(RuntimeError):
        store.commit(snapshot, {})  # not sent yet
