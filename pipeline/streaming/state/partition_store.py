"""One counting partition's state: a RocksDB database, and the decoded states in use.

Subjects are decoded once and kept decoded while they are in use (a bounded
cache), changed in place by the engine, and encoded once per checkpoint, when
the changes go to the changelog and then, in one RocksDB write batch with the
partition's metadata, to disk. Between checkpoints RocksDB holds the state of
the last checkpoint: what the changelog's last marker describes.

The cache is bounded between checkpoints too: a backlog released at once can
touch hundreds of thousands of subjects before the next checkpoint (a decoded
state is about 2 KB, encoded about a tenth of that). Past ``HARD_LIMIT`` times
its size the oldest go; a changed one is kept encoded until the checkpoint
writes it.

A checkpoint does not stop counting while it is written (``checkpoint``): ``freeze``
takes what changed until then as a ``Snapshot`` and counting goes on with a new set of
changes. A subject of the snapshot not encoded yet is encoded before anything may change it
again (when it is loaded), so the snapshot stays what it was at the freeze; reads see it
until ``commit`` has written it to RocksDB.

Keys are those of ``table_layout``; the metadata (``META_KEY``) is local: the
changelog offset the database is restored up to, and the marker it came from.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import rocksdict

from pipeline.engine.customisation import Customisation
from pipeline.streaming.state import stored_state
from pipeline.streaming.state.stored_state import StoredState
from pipeline.streaming.state.table_layout import META_KEY, SETTINGS_PREFIX

Changes = dict[bytes, bytes | None]  # key -> value, None deletes
# Between checkpoints the cache may grow to this many times its size: evicting costs a
# re-decode when the subject comes back (30% slower counting when it happens all the time)
HARD_LIMIT = 4
# Subjects' settings kept decoded per partition (a key and a shared object, about 150 B; a
# subject with none costs a key too): RocksDB holds them all (10,000,000 in a few hundred
# MiB of disk), the hot ones are read here
SETTINGS_CACHE = 10_000


def _stage(batch: Any, key: bytes, value: bytes | None) -> None:
    """A change into a RocksDB write batch: None deletes."""
    if value is None:
        batch.delete(key)
    else:
        batch.put(key, value)


class Snapshot:
    """The changes of one checkpoint, as they were at its ``freeze``: encoded ones, and
    subjects' states still to encode (each encoded at the latest before it next changes)."""

    __slots__ = ("_keys", "_sent", "batch", "encoded", "pending")

    def __init__(self, encoded: Changes, pending: dict[bytes, StoredState]) -> None:
        self.encoded = encoded
        self.pending = pending
        self._keys = [*encoded, *pending]  # the order they are sent in
        self._sent = 0
        self.batch = rocksdict.WriteBatch(raw_mode=True)  # filled as they are sent

    def encode(self, key: bytes) -> None:
        """Encode a pending subject now (it is about to change, or be sent)."""
        self.encoded[key] = stored_state.pack(self.pending.pop(key))

    def next_changes(self, limit: int) -> list[tuple[bytes, bytes | None]]:
        """The next ``limit`` changes to send, encoded; [] once all were."""
        keys = self._keys[self._sent:self._sent + limit]
        self._sent += len(keys)
        out = []
        for key in keys:
            if key in self.pending:
                self.encode(key)
            value = self.encoded[key]
            _stage(self.batch, key, value)
            out.append((key, value))
        return out

    @property
    def all_sent(self) -> bool:
        return self._sent >= len(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class PartitionStore:
    def __init__(self, path: Path, options: Any, cache_limit: int = 5_000) -> None:
        self.path, self._options, self._cache_limit = path, options, cache_limit
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = rocksdict.Rdict(str(path), options)
        self._cache: dict[bytes, StoredState] = {}
        self._dirty: set[bytes] = set()
        self._evicted: dict[bytes, bytes] = {}  # changed, then evicted: encoded until written
        self._raw: Changes = {}  # pending writes of non-subject keys, and subject deletes
        self._settings: dict[bytes, Customisation | None] = {}
        # most subjects share a few settings (a class alone): each distinct form decoded once
        self._decoded_settings: dict[bytes, Customisation] = {}
        self._frozen: Snapshot | None = None  # the checkpoint being written, until ``commit``

    # -- subjects -------------------------------------------------------------------------
    def load(self, key: bytes) -> StoredState:
        """The subject's state, decoded once; raises ValueError for damaged stored bytes."""
        stored = self._cache.get(key)
        frozen = self._frozen
        if stored is not None:
            if frozen is not None and key in frozen.pending:  # the snapshot's copy first
                frozen.encode(key)
            return stored
        evicted = self._evicted.pop(key, None)
        if evicted is not None:  # changed since the last checkpoint: still to be written
            stored = stored_state.unpack(evicted)
            self._dirty.add(key)
        elif key in self._raw:  # deleted since the last checkpoint, whatever RocksDB has
            stored = stored_state.empty()
        else:
            stored = self._unpack_committed(key)
        if len(self._cache) >= HARD_LIMIT * self._cache_limit:
            self._evict(len(self._cache) - self._cache_limit)
        self._cache[key] = stored
        return stored

    def _unpack_committed(self, key: bytes) -> StoredState:
        """The subject as of the last checkpoint."""
        return stored_state.unpack(self._committed(key))

    def _committed(self, key: bytes) -> bytes | None:
        """A key's bytes as of the last checkpoint: the one being written, else RocksDB's."""
        frozen = self._frozen
        if frozen is not None:
            if key in frozen.pending:  # a subject left the cache unchanged since the freeze
                frozen.encode(key)
            if key in frozen.encoded:
                return frozen.encoded[key]
        value: bytes | None = self._db.get(key)
        return value

    def _evict(self, count: int) -> None:
        """The ``count`` oldest loaded go; changed ones stay encoded until the checkpoint."""
        for key in list(itertools.islice(self._cache, count)):
            stored = self._cache.pop(key)
            if key in self._dirty:
                self._dirty.remove(key)
                self._evicted[key] = stored_state.pack(stored)

    def changed(self, key: bytes) -> None:
        """The subject's state (from ``load``) was changed: write it at the next checkpoint."""
        self._dirty.add(key)
        self._raw.pop(key, None)

    def delete(self, key: bytes) -> None:
        self._cache.pop(key, None)
        self._evicted.pop(key, None)
        self._dirty.discard(key)
        self._raw[key] = None

    def cached(self, key: bytes) -> StoredState | None:
        """The subject's state if it changed since the last checkpoint or is in use (the
        checkpoint's bytes in RocksDB are older); None otherwise."""
        if key in self._cache:
            return self.load(key)  # the snapshot's copy made first: the caller may change it
        if key in self._evicted:
            return stored_state.unpack(self._evicted[key])
        frozen = self._frozen
        if frozen is not None and key not in self._raw and (
                key in frozen.pending or frozen.encoded.get(key) is not None):
            return self._unpack_committed(key)
        return None

    # -- settings -------------------------------------------------------------------------
    def settings(self, key: bytes) -> Customisation | None:
        """The subject's settings, None when it has none; raises ValueError for a damaged
        record."""
        try:
            return self._settings[key]
        except KeyError:
            pass
        stored_key = SETTINGS_PREFIX + key
        raw = self._raw[stored_key] if stored_key in self._raw else self._committed(stored_key)
        custom = None
        if raw:
            custom = self._decoded_settings.get(raw)
            if custom is None:
                custom = Customisation.decode(raw)
                if len(self._decoded_settings) >= SETTINGS_CACHE:
                    self._decoded_settings.clear()
                self._decoded_settings[raw] = custom
        if len(self._settings) >= SETTINGS_CACHE:
            self._settings.clear()
        self._settings[key] = custom
        return custom

    def set_settings(self, key: bytes, record: bytes | None) -> None:
        """New settings for the subject (a settings record's JSON; None removes them)."""
        self._settings.pop(key, None)
        self._raw[SETTINGS_PREFIX + key] = record

    # -- other keys -----------------------------------------------------------------------
    def put_raw(self, key: bytes, value: bytes | None) -> None:
        self._raw[key] = value

    def scan(self, start: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Keys from ``start`` in order, as of the last checkpoint."""
        items: Any = self._db.items(from_key=start)  # raw mode: bytes keys and values
        return iter(items)

    # -- checkpoints ----------------------------------------------------------------------
    def freeze(self) -> Snapshot:
        """Everything changed since the last checkpoint, as a snapshot for the checkpoint to
        write; what changes from now on belongs to the next one."""
        if self._frozen is not None:
            raise RuntimeError("a checkpoint of this partition is still being written")
        encoded: Changes = dict(self._raw)
        encoded.update(self._evicted)
        self._frozen = Snapshot(encoded, {key: self._cache[key] for key in self._dirty})
        self._raw, self._evicted, self._dirty = {}, {}, set()
        return self._frozen

    def commit(self, snapshot: Snapshot, meta: dict[str, Any]) -> None:
        """Write the snapshot (every change sent: ``Snapshot.next_changes``) and the
        metadata to RocksDB, atomically."""
        if snapshot is not self._frozen or not snapshot.all_sent:
            raise RuntimeError("not this partition's snapshot, or not all of it sent")
        batch = snapshot.batch
        batch.put(META_KEY, json.dumps(meta).encode())
        self._db.write(batch)
        self._frozen = None
        if len(self._cache) > self._cache_limit:  # the oldest loaded go first; those changed
            # since the freeze stay (evicted, they would be encoded now and decoded again soon)
            excess = len(self._cache) - self._cache_limit * 3 // 4
            dirty = self._dirty
            for key in list(itertools.islice((k for k in self._cache if k not in dirty), excess)):
                del self._cache[key]

    def write(self, changes: Changes, meta: dict[str, Any]) -> None:
        """Write changes and metadata at once, with nothing else pending (recovery)."""
        if self.pending or self._frozen is not None:
            raise RuntimeError("changes of a checkpoint are pending")
        snapshot = self._frozen = Snapshot(dict(changes), {})
        snapshot.next_changes(len(snapshot))
        self.commit(snapshot, meta)

    def write_restored(self, records: list[tuple[bytes, bytes | None]]) -> None:
        """Apply changelog records as they are (restore); metadata is written separately."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in records:
            _stage(batch, key, value)
        self._db.write(batch)
        self._cache.clear()
        self._settings.clear()
        self._frozen = None

    def meta(self) -> dict[str, Any]:
        raw = self._db.get(META_KEY)
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def get_raw(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    @property
    def pending(self) -> bool:
        return bool(self._dirty or self._evicted or self._raw)

    def wipe(self) -> None:
        """Start from an empty database (its changelog is restored into it afresh)."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
        self._db = rocksdict.Rdict(str(self.path), self._options)

    def close(self) -> None:
        self._cache.clear()
        self._settings.clear()
        self._dirty.clear()
        self._evicted.clear()
        self._raw.clear()
        self._frozen = None
        self._db.close()
