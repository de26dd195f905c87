"""Keys land where Kafka's Java client and aiokafka put them."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2  # type: ignore[import-untyped]

from connectors.kafka.key_partition import murmur2, partition_of

# Kafka's own UtilsTest.testMurmur2 (Java ints, signed)
JAVA = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829, b"abc": 479470107,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971}


@pytest.mark.parametrize(("key", "signed"), sorted(JAVA.items()))
def test_the_hash_is_javas(key: bytes, signed: int) -> None:
    assert murmur2(key) == signed & 0xFFFFFFFF


def test_every_length_and_byte_hashes_as_aiokafka_does() -> None:
    rng = random.Random(5)
    for length in range(0, 80):
        for _ in range(30):
            key = bytes(rng.randrange(256) for _ in range(length))
            assert murmur2(key) & 0x7FFFFFFF == aiokafka_murmur2(key) & 0x7FFFFFFF, key
            assert partition_of(key, 12) == (aiokafka_murmur2(key) & 0x7FFFFFFF) % 12
