"""The responder's action view on disk (rocksdict), with how far the action topic was read.

A responder that restarts loads the actions in force at once and reads the
topic on from where it stopped, instead of answering from an empty view
while it re-reads everything.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from rocksdict import Options, Rdict

from schemas.events import ActionEvent
from schemas.vocabulary import ActionState

_ACTION = b"a:"
_OFFSET = b"o:"


def _options() -> Options:
    options = Options()
    options.create_if_missing(True)
    options.set_write_buffer_size(1 << 20)  # a few thousand small records: keep it tiny
    options.set_max_write_buffer_number(2)
    return options


class ActionStore:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._db = Rdict(str(self.database(directory)), _options())

    @staticmethod
    def database(directory: Path) -> Path:
        """The RocksDB database under ``policy.state_dir``."""
        return directory / "actions"

    def has_state(self) -> bool:
        cursor = self._db.iter()
        cursor.seek_to_first()
        return bool(cursor.valid())

    def clear(self) -> None:
        """Forget every action and offset (they were read from topics that are gone)."""
        for key in list(self._db.keys()):
            del self._db[key]

    def load(self) -> tuple[list[ActionEvent], dict[int, int]]:
        """The stored active actions and, per partition, the next offset to read."""
        actions: list[ActionEvent] = []
        offsets: dict[int, int] = {}
        for key, value in self._db.items():
            if not isinstance(key, bytes) or not isinstance(value, bytes):
                continue  # not written by this class
            if key.startswith(_ACTION):
                try:
                    actions.append(ActionEvent.model_validate_json(value))
                except ValidationError:
                    del self._db[key]  # written by an incompatible version: the topic has it
            elif key.startswith(_OFFSET):
                offsets[int(key[len(_OFFSET):])] = int(value)
        return actions, offsets

    def apply(self, event: ActionEvent | None, partition: int, offset: int) -> None:
        """Record one topic record (None for a tombstone) and that it was read."""
        if event is not None:
            key = _ACTION + event.action_id.encode()
            if event.state is ActionState.ACTIVE:
                self._db[key] = event.model_dump_json().encode()
            elif key in self._db:
                del self._db[key]
        self._db[_OFFSET + str(partition).encode()] = str(offset + 1).encode()

    def close(self) -> None:
        self._db.close()
