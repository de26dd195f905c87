"""A subject's engine state as kept in the worker's table, with what protects it from repeats.

``u8 version | i64 offset | u16 n | u16 m | n x u64 recent event-id hashes |
m x (u32 length, ActionEvent JSON) | engine state``.

* ``offset``: the last record of ``subject-events`` applied. After a crash the
  worker re-reads records it had applied (Faust commits source offsets after
  the table writes); one at or below the stored offset is skipped.
* recent event ids: a message reported twice (by the log and the policy
  service, or copied twice into ``subject-events`` by a router replaying after
  a crash) has the same ``event_id``; the newest ``RECENT_IDS`` of a subject
  are remembered so a repeat is not counted.
* the subject's active actions (as published): their ``expired`` state is
  published from here at expiry, and they are published again when records
  are replayed after a crash (the first publication may have been lost with
  the worker; consumers drop the repeat by ``action_id``).
"""

from __future__ import annotations

import hashlib
import struct
from array import array

from pipeline.engine.subject_state import SubjectState, decode_state, encode_state

RECENT_IDS = 512
VERSION = 3
_HEAD = struct.Struct("<BqHH")
_HEAD_V2 = struct.Struct("<BqH")
_LENGTH = struct.Struct("<I")


class StoredState:
    __slots__ = ("actions", "offset", "recent", "state")

    def __init__(self, state: SubjectState, offset: int, recent: array[int],
                 actions: list[bytes] | None = None) -> None:
        self.state, self.offset, self.recent = state, offset, recent
        self.actions: list[bytes] = actions if actions is not None else []

    def seen(self, event_id: str) -> bool:
        """Remember ``event_id``; True when it was already among the recent ones."""
        digest = id_hash(event_id)
        if digest in self.recent:
            return True
        self.recent.append(digest)
        if len(self.recent) > RECENT_IDS:
            del self.recent[: len(self.recent) - RECENT_IDS]
        return False


def id_hash(event_id: str) -> int:
    value: int = int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "little")
    return value


def pack(stored: StoredState) -> bytes:
    parts = [_HEAD.pack(VERSION, stored.offset, len(stored.recent), len(stored.actions)),
             stored.recent.tobytes()]
    for action in stored.actions:
        parts += (_LENGTH.pack(len(action)), action)
    parts.append(encode_state(stored.state))
    return b"".join(parts)


def unpack(data: bytes | None) -> StoredState:
    """The stored state (empty when ``data`` is None); raises ValueError for damaged bytes."""
    if not data:
        return StoredState(SubjectState(), -1, array("Q"))
    try:
        if data[0] == 2:  # before actions were kept: read it as a state with none
            _, offset, count = _HEAD_V2.unpack_from(data, 0)
            version, n_actions, head = 2, 0, _HEAD_V2.size
        else:
            version, offset, count, n_actions = _HEAD.unpack_from(data, 0)
            head = _HEAD.size
    except struct.error as exc:
        raise ValueError(f"damaged stored state: {exc}") from None
    if version not in (2, VERSION):
        raise ValueError(f"unknown stored state version {version}")
    recent = array("Q")
    end = head + count * recent.itemsize
    if end > len(data):
        raise ValueError("damaged stored state: id list longer than the data")
    recent.frombytes(data[head:end])
    actions = []
    for _ in range(n_actions):
        try:
            (length,) = _LENGTH.unpack_from(data, end)
        except struct.error as exc:
            raise ValueError(f"damaged stored state: {exc}") from None
        start, end = end + _LENGTH.size, end + _LENGTH.size + length
        if end > len(data):
            raise ValueError("damaged stored state: action longer than the data")
        actions.append(data[start:end])
    return StoredState(decode_state(data[end:]), offset, recent, actions)
