"""The subjects' settings as the console shows them: every subject's latest record, kept in a
RocksDB of its own (10,000,000 subjects would not fit in the process), read from the
subject-settings topic from its start at each console start."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import rocksdict

from pipeline.streaming.state.store_options import StoreOptions
from schemas.subject_settings import SubjectSettings


class SettingsIndex:
    """Opened at its first record or look-up (a console that never reads the topic, as in
    tests of its pages, leaves nothing on disk)."""

    def __init__(self) -> None:
        self._path: Path | None = None
        self._rdict: rocksdict.Rdict | None = None
        self.records = 0

    @property
    def _db(self) -> rocksdict.Rdict:
        if self._rdict is None:
            self._path = Path(tempfile.mkdtemp(prefix="floodgate-console-settings-"))
            options = StoreOptions(block_cache_size=8 * 1024 * 1024).to_rocksdict()
            self._rdict = rocksdict.Rdict(str(self._path), options)
        return self._rdict

    def apply(self, key: str | None, value: bytes | None) -> None:
        """One record of the topic (any thread): the latest per subject, a tombstone removes."""
        if key is None:
            return
        self.records += 1
        if value is None:
            self._db.delete(key.encode())
        else:
            self._db[key.encode()] = value

    def get(self, key: str) -> SubjectSettings | None:
        """The subject's settings; None when it has none (or its record cannot be read)."""
        raw = self._db.get(key.encode())
        if raw is None:
            return None
        try:
            return SubjectSettings.model_validate_json(raw)
        except ValueError:
            return None

    def close(self) -> None:
        if self._rdict is not None and self._path is not None:
            self._rdict.close()
            shutil.rmtree(self._path, ignore_errors=True)
            self._rdict = None
