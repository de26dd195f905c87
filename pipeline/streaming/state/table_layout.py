"""Keys of a counting partition's store and changelog.

Subjects are stored under ``type:value`` (never starting with a NUL byte).
Each partition also holds, under NUL-prefixed keys that sort before every
subject:

* ``\\0exp:`` + 8-byte big-endian expiry time + subject key: one entry per
  active action, so that a range scan finds the due ones in time order;
* ``\\0set:`` + subject key: the subject's settings record (class, overrides,
  exemption), as the subject-settings topic had it; never swept;
* ``\\0meta``: the local store's metadata (never in the changelog).

The changelog also carries ``\\0mark`` (a checkpoint is complete up to here)
and ``\\0fence`` (written by a restore to learn where the log ends).
"""

from __future__ import annotations

META_KEY = b"\x00meta"
MARKER_KEY = b"\x00mark"
FENCE_KEY = b"\x00fence"
EXPIRY_PREFIX = b"\x00exp:"
SETTINGS_PREFIX = b"\x00set:"
FIRST_SUBJECT_KEY = b"\x01"  # every subject key sorts at or after this


def expiry_key(expires_ms: int, subject_key: bytes) -> bytes:
    return EXPIRY_PREFIX + max(expires_ms, 0).to_bytes(8, "big") + subject_key


def expiry_bound(now_ms: int) -> bytes:
    """The first expiry key after everything due at ``now_ms``."""
    return EXPIRY_PREFIX + (max(now_ms, 0) + 1).to_bytes(8, "big")


def parse_expiry_key(key: bytes) -> tuple[int, bytes]:
    """(expires_ms, subject key); raises ValueError for a key of another kind."""
    start = len(EXPIRY_PREFIX)
    if not key.startswith(EXPIRY_PREFIX) or len(key) < start + 8:
        raise ValueError(f"not an expiry key: {key[:40]!r}")
    return int.from_bytes(key[start:start + 8], "big"), key[start + 8:]


def is_subject_key(key: bytes) -> bool:
    return key >= FIRST_SUBJECT_KEY
