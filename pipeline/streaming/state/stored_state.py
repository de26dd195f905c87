"""A subject's engine state as kept in the worker's store, with what protects it from repeats.

``u8 version | u16 n | u16 m | n x u64 recent event-id hashes |
m x (u32 length, ActionEvent JSON) | engine state`` (version 4).

* recent event ids: a message reported twice (by the log and the policy
  service) has the same ``event_id``; the newest ``RECENT_IDS`` of a subject
  are remembered so a repeat is not counted. Crash safety does not rest on
  them: the counting partition's frontier does that (``event_order``).
* the subject's active actions (as published): their ``expired`` state is
  published from here at expiry.

Versions 2 and 3 (the Faust-table worker's, with a per-subject offset) are
still read; the offset is dropped.
"""

from __future__ import annotations

import hashlib
import struct
from array import array

from pipeline.engine.subject_state import SubjectState, decode_state, encode_state

RECENT_IDS = 512
VERSION = 4
_HEAD = struct.Struct("<BHH")
_HEAD_V3 = struct.Struct("<BqHH")
_HEAD_V2 = struct.Struct("<BqH")
_LENGTH = struct.Struct("<I")


class StoredState:
    __slots__ = ("_recent_set", "actions", "recent", "state")

    def __init__(self, state: SubjectState, recent: array[int],
                 actions: list[bytes] | None = None) -> None:
        self.state, self.recent = state, recent
        self.actions: list[bytes] = actions if actions is not None else []
        self._recent_set: set[int] | None = None  # built on the first look-up

    def forget_recent(self) -> None:
        """Drop the recent ids: what is left of the subject (a baseline) has no window a
        repeat could count twice in, as when the sweep drops a whole idle subject."""
        self.recent = array("Q")
        self._recent_set = None

    def seen(self, event_id: str) -> bool:
        """Remember ``event_id``; True when it was already among the recent ones."""
        return self.seen_hash(id_hash(event_id))

    def seen_hash(self, digest: int) -> bool:
        """``seen`` for an id already hashed with ``id_hash``."""
        if self._recent_set is None:
            self._recent_set = set(self.recent)
        if digest in self._recent_set:
            return True
        self.recent.append(digest)
        self._recent_set.add(digest)
        if len(self.recent) > 2 * RECENT_IDS:  # cut in slices: amortised O(1) per id
            cut = len(self.recent) - RECENT_IDS
            self._recent_set.difference_update(self.recent[:cut])
            del self.recent[:cut]
        return False


def id_hash(event_id: str) -> int:
    value: int = int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "little")
    return value


def pack(stored: StoredState) -> bytes:
    recent = stored.recent[-RECENT_IDS:]
    parts = [_HEAD.pack(VERSION, len(recent), len(stored.actions)), recent.tobytes()]
    for action in stored.actions:
        parts += (_LENGTH.pack(len(action)), action)
    parts.append(encode_state(stored.state))
    return b"".join(parts)


def empty() -> StoredState:
    return StoredState(SubjectState(), array("Q"))


def unpack(data: bytes | None) -> StoredState:
    """The stored state (empty when ``data`` is None); raises ValueError for damaged bytes."""
    if not data:
        return empty()
    try:
        version = data[0]
        if version == VERSION:
            _, count, n_actions = _HEAD.unpack_from(data, 0)
            head = _HEAD.size
        elif version == 3:
            _, _, count, n_actions = _HEAD_V3.unpack_from(data, 0)
            head = _HEAD_V3.size
        elif version == 2:  # before actions were kept: read it as a state with none
            _, _, count = _HEAD_V2.unpack_from(data, 0)
            n_actions, head = 0, _HEAD_V2.size
        else:
            raise ValueError(f"unknown stored state version {version}")
    except struct.error as exc:
        raise ValueError(f"damaged stored state: {exc}") from None
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
    return StoredState(decode_state(data[end:]), recent, actions)
