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

    # -- subjects -------------------------------------------------------------------------
    def load(self, key: bytes) -> StoredState:
        """The subject's state, decoded once; raises ValueError for damaged stored bytes."""
        stored = self._cache.get(key)
        if stored is None:
            evicted = self._evicted.pop(key, None)
            if evicted is not None:  # changed since the last checkpoint: still to be written
                stored = stored_state.unpack(evicted)
                self._dirty.add(key)
            elif key in self._raw:  # deleted since the last checkpoint, whatever RocksDB has
                stored = stored_state.empty()
            else:
                stored = stored_state.unpack(self._db.get(key))
            if len(self._cache) >= HARD_LIMIT * self._cache_limit:
                self._evict(len(self._cache) - self._cache_limit)
            self._cache[key] = stored
        return stored

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
        stored = self._cache.get(key)
        if stored is None and key in self._evicted:
            stored = stored_state.unpack(self._evicted[key])
        return stored

    # -- settings -------------------------------------------------------------------------
    def settings(self, key: bytes) -> Customisation | None:
        """The subject's settings, None when it has none; raises ValueError for a damaged
        record."""
        try:
            return self._settings[key]
        except KeyError:
            pass
        stored_key = SETTINGS_PREFIX + key
        raw = self._raw[stored_key] if stored_key in self._raw else self._db.get(stored_key)
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
    def changes(self) -> Changes:
        """Everything changed since the last checkpoint, encoded."""
        out: Changes = dict(self._raw)
        out.update(self._evicted)
        for key in self._dirty:
            out[key] = stored_state.pack(self._cache[key])
        return out

    def write(self, changes: Changes, meta: dict[str, Any]) -> None:
        """Write a checkpoint's changes and metadata atomically; forget what is pending."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in changes.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(META_KEY, json.dumps(meta).encode())
        self._db.write(batch)
        self._dirty.clear()
        self._evicted.clear()
        self._raw.clear()
        if len(self._cache) > self._cache_limit:  # the oldest loaded go first
            for key in list(self._cache)[: len(self._cache) - self._cache_limit * 3 // 4]:
                del self._cache[key]

    def write_restored(self, records: list[tuple[bytes, bytes | None]]) -> None:
        """Apply changelog records as they are (restore); metadata is written separately."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in records:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        self._db.write(batch)
        self._cache.clear()
        self._settings.clear()

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
        self._db.close()
