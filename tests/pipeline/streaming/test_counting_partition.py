"""A counting partition fed by its own worker's router: batches taken at once (live) or through
Kafka (backlog, or before the partition has caught up with a source), in any mix, count every
entry exactly once and in event-time order per subject; the copies Kafka gives back are skipped."""

from __future__ import annotations

import gc
import random
import tracemalloc
from pathlib import Path

import pytest

from pipeline.engine.evaluator import ThresholdEngine
from pipeline.streaming.counter import SubjectCounter
from pipeline.streaming.counting_partition import CountingPartition
from pipeline.streaming.event_order import Entry, EventOrder, Source
from pipeline.streaming.state.partition_store import PartitionStore
from pipeline.streaming.state.store_options import StoreOptions
from schemas.subject_batch import BATCH_KIND, SubjectBatch, SubjectEntry, routed_tag
from tests.pipeline.engine.builders import config, threshold

SOURCES: list[Source] = [("mail", 0), ("mail", 1), ("mail", 2)]
SUBJECTS = [f"sasl_username:user{n}" for n in range(4)]
LIFE = "life1"


class Recording(SubjectCounter):
    """Counts as the worker does, and remembers what it counted, in order."""

    def __init__(self, store: PartitionStore) -> None:
        super().__init__(ThresholdEngine(config(threshold())), store, lambda action: None)
        self.counted: list[Entry] = []

    def count(self, entry: Entry) -> None:
        self.counted.append(entry)
        super().count(entry)


def partition(path: Path) -> CountingPartition:
    store = PartitionStore(path, StoreOptions().to_rocksdict())
    return CountingPartition(0, store, EventOrder(SOURCES), Recording(store))


class Log:
    """The partition's topic: records appended in order, read in order, some time later."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes]] = []  # (value, routed tag)
        self.read = 0

    def read_some(self, into: CountingPartition, upto: int) -> None:
        while self.read < min(upto, len(self.records)):
            value, tag = self.records[self.read]
            into.take(self.read, BATCH_KIND, b"", value, tag)
            self.read += 1


def counted(part: CountingPartition) -> list[Entry]:
    assert isinstance(part.counter, Recording)
    return part.counter.counted


@pytest.mark.parametrize("seed", range(40))
def test_any_mix_of_early_and_kafka_batches_counts_each_entry_once_in_order(
        tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    part, log = partition(tmp_path / "p0"), Log()
    next_offset = dict.fromkeys(SOURCES, 0)
    marks = dict.fromkeys(SOURCES, 0)
    sent: set[tuple[Source, int, str]] = set()
    live = False
    for number in range(1, 150):
        live = live if rng.random() < 0.8 else not live  # backlog and live, in stretches
        source = rng.choice(SOURCES)
        entries = []
        for _ in range(rng.randint(0, 4)):
            offset, next_offset[source] = next_offset[source], next_offset[source] + 1
            marks[source] += rng.randint(0, 50)
            subject = rng.choice(SUBJECTS)
            entries.append(SubjectEntry(subject, offset, 1_000_000 + marks[source], 0, 1,
                                        rng.getrandbits(63), "outbound", "example.net"))
            sent.add((source, offset, subject))
        batch = SubjectBatch(source_topic=source[0], source_partition=source[1],
                             upto=next_offset[source] - 1, mark_ms=1_000_000 + marks[source],
                             entries=entries)
        # taken at once, or not: the record goes out either way
        part.route(batch, routed_tag(LIFE, number), live)
        log.records.append((batch.model_dump_json().encode(), routed_tag(LIFE, number)))
        log.read_some(part, log.read + rng.randint(0, 3))  # Kafka gives records back later
        part.release(lambda entry, error: pytest.fail(error))
    log.read_some(part, len(log.records))
    for source in SOURCES:  # every source's mark past everything: all is released
        part.take(len(log.records), BATCH_KIND, b"", SubjectBatch(
            source_topic=source[0], source_partition=source[1], upto=next_offset[source] - 1,
            mark_ms=10_000_000, entries=[]).model_dump_json().encode())
    part.release(lambda entry, error: pytest.fail(error))

    seen = [(e.source, e.offset, e.subject) for e in counted(part)]
    assert len(seen) == len(set(seen)), "an entry was counted twice"
    assert set(seen) == sent, f"{len(sent - set(seen))} entries never counted"
    for subject in SUBJECTS:
        keys = [e.key for e in counted(part) if e.subject == subject]
        assert keys == sorted(keys), f"{subject} counted out of event-time order"


def test_a_source_is_taken_early_only_after_its_last_kafka_batch_came_back(tmp_path: Path) -> None:
    part, source = partition(tmp_path / "p0"), SOURCES[0]

    def batch(offset: int) -> SubjectBatch:
        return SubjectBatch(source_topic=source[0], source_partition=source[1], upto=offset,
                            mark_ms=1_000 + offset, entries=[SubjectEntry(
                                SUBJECTS[0], offset, 1_000 + offset, 0, 1, offset, "outbound",
                                None)])

    # nothing read back yet: through Kafka
    assert part.route(batch(0), routed_tag(LIFE, 1), live=True) is None
    assert part.route(batch(1), routed_tag(LIFE, 2), live=True) is None
    part.take(0, BATCH_KIND, b"", batch(0).model_dump_json().encode(), routed_tag(LIFE, 1))
    # the batch sent as number 2 is still on its way
    assert part.route(batch(2), routed_tag(LIFE, 3), live=True) is None
    part.take(1, BATCH_KIND, b"", batch(1).model_dump_json().encode(), routed_tag(LIFE, 2))
    part.take(2, BATCH_KIND, b"", batch(2).model_dump_json().encode(), routed_tag(LIFE, 3))
    taken = part.route(batch(3), routed_tag(LIFE, 4), live=True)
    assert taken is not None and [e.offset for e in taken] == [3]
    # its copy from Kafka is skipped; a backlog batch goes through Kafka again
    assert not part.take(3, BATCH_KIND, b"", b"not even parsed", routed_tag(LIFE, 4))
    assert part.route(batch(4), routed_tag(LIFE, 5), live=False) is None
    assert part.route(batch(5), routed_tag(LIFE, 6), live=True) is None
    # another life's batch (a restarted worker's) does not count as read back
    part.take(4, BATCH_KIND, b"", batch(4).model_dump_json().encode(), routed_tag("other", 6))
    assert part.route(batch(6), routed_tag(LIFE, 7), live=True) is None
    part.forget_source(source)  # the source went to another worker, and came back
    assert part.route(batch(7), routed_tag(LIFE, 8), live=True) is None


def test_a_held_entry_costs_under_430_bytes(tmp_path: Path) -> None:
    """A backlog holds up to ``worker.max_held_entries`` entries (a million by default) for
    event-time order: what each costs, from its batch's JSON to its place in the order, is
    the worker's memory in a backlog. 409 bytes here (Python 3.11) when an entry is one
    object (the ``CountedMail`` it counts); 449 when it held one apart."""
    part, rng, count = partition(tmp_path), random.Random(3), 20_000
    entries = [SubjectEntry(f"client_ip:100.{rng.randrange(64, 128)}.{rng.randrange(256)}."
                            f"{rng.randrange(256)}", 10**6 + n, 1_796_650_000_000 + n, 0, 2,
                            rng.getrandbits(63), "outbound", "c1.example")
               for n in range(count)]
    value = SubjectBatch(source_topic="mail", source_partition=0, upto=10**6 + count,
                         mark_ms=None, entries=entries, settings=[]).model_dump_json().encode()
    del entries
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        part.take(5, BATCH_KIND, b"", value)
        assert not part.release(lambda entry, reason: None)  # held: the other sources say nothing
        gc.collect()
        per_entry = (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        tracemalloc.stop()
    assert part.order.held == count
    assert per_entry < 430, f"{per_entry:.0f} bytes a held entry"
