"""A store's pending changes written at once, as a checkpoint writes them (without Kafka)."""

from __future__ import annotations

from typing import Any

from pipeline.streaming.state.partition_store import Changes, PartitionStore


def commit_now(store: PartitionStore, meta: dict[str, Any] | None = None) -> Changes:
    """Freeze, encode, commit; the changes written."""
    snapshot = store.freeze()
    snapshot.next_changes(len(snapshot))
    store.commit(snapshot, meta or {})
    return snapshot.encoded
