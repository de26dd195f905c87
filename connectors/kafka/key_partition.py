"""The partition of a record key, as Kafka's Java client and aiokafka pick it.

``partition_of(key, n)`` is ``toPositive(murmur2(key)) % n`` (Java's
``Utils.murmur2``): the worker routes each subject's updates to the partition an
operator's lift keyed by that subject lands on, whichever client wrote it. The
hash reads the key four bytes at a time with ``struct`` rather than byte by
byte: the router hashes every new client address it sees.
"""

from __future__ import annotations

import struct
from functools import lru_cache

_SEED, _M = 0x9747B28C, 0x5BD1E995
_MASK = 0xFFFFFFFF


@lru_cache(maxsize=64)
def _words(count: int) -> struct.Struct:
    return struct.Struct(f"<{count}I")


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data``, as an unsigned 32-bit number."""
    length = len(data)
    h = _SEED ^ length
    whole = length >> 2
    if whole:
        for k in _words(whole).unpack_from(data):
            k = (k * _M) & _MASK
            k = ((k ^ (k >> 24)) * _M) & _MASK
            h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest:
        end = whole << 2
        if rest == 3:
            h ^= data[end + 2] << 16
        if rest >= 2:
            h ^= data[end + 1] << 8
        h = ((h ^ data[end]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition (of ``partitions``) Kafka's default partitioner gives ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
