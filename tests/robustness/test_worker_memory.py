"""Load: the worker's memory is bounded by its RocksDB sizes and caches, not by the number of
subjects.

Every event brings three subjects never seen before (account, client IP, domain) and
every window is a day, so no subject is swept: the table only grows. With small RocksDB
sizes (1 MiB memtables and block cache per partition) the caches are full early, and
the worker's resident memory must not climb while the second half of the subjects
arrives. ``python -m tests.benchmarks.bench_worker --subjects 1000000`` does the same
with a million subjects and the default sizes."""

from __future__ import annotations

import statistics
import time
import uuid
from pathlib import Path

import pytest

from connectors.kafka.embedded_broker import free_port
from connectors.kafka.topics import TopicSpec, ensure_topics
from schemas.config import KafkaSettings
from tests.benchmarks.bench_worker import LONG_THRESHOLDS, Traffic, counted, produce
from tests.figures import Figures
from tests.fixtures.http_probe import scrape
from tests.fixtures.processes import peak_rss_mib, rss_mib, start_floodgate, stop, wait_worker_counting

pytestmark = pytest.mark.slow
EVENTS = 120_000  # 360,000 subjects
PARTITIONS = 2


def checkpoints_written(port: int) -> float:
    return scrape(port).get("floodgate_worker_checkpoint_seconds_count", 0.0)


def after_two_checkpoints(port: int) -> None:
    """Until two more checkpoints were written: the second was taken after the last entry was
    counted, and its commit trimmed the decoded subjects to the cache's size (up to four
    times as many wait decoded between checkpoints: a reading before the trim is a
    transient, not what the worker keeps)."""
    start, deadline = checkpoints_written(port), time.monotonic() + 30
    while checkpoints_written(port) < start + 2 and time.monotonic() < deadline:
        time.sleep(0.1)


def settled_rss_mib(pid: int) -> float:
    """The median of five readings over a second: one reading may catch a passing peak."""
    readings = []
    for _ in range(5):
        readings.append(rss_mib(pid))
        time.sleep(0.25)
    return statistics.median(readings)


def test_worker_memory_stays_flat_as_subjects_pile_up(kafka_settings: KafkaSettings,
                                                      tmp_path: Path, figures: Figures) -> None:
    run, health = uuid.uuid4().hex[:6], free_port()
    topics = {name: f"{name}-{run}" for name in ("mail", "subjects", "actions", "dead")}
    config = tmp_path / "floodgate.yaml"
    config.write_text(
        f"kafka: {{bootstrap_servers: '{kafka_settings.bootstrap_servers}'}}\n"
        "networks: {internal: [10.0.0.0/8], local_domains: [example.net]}\n" + LONG_THRESHOLDS +
        f"topics: {{mail_events: {topics['mail']}, subject_events: {topics['subjects']}, "
        f"actions: {topics['actions']}, dead_letter: {topics['dead']}}}\n"
        f"worker: {{app_id: mem-{run}, data_dir: '{tmp_path / 'data'}', partitions: {PARTITIONS},"
        " rocksdb_write_buffer_mib: 1, rocksdb_block_cache_mib: 1,"
        f" health_listen: '127.0.0.1:{health}'}}\n")
    ensure_topics(kafka_settings, [TopicSpec(t, PARTITIONS) for t in topics.values()])
    day_ago = int(time.time() * 1000) - 86_400_000
    worker = start_floodgate(["worker", "--config", str(config)], tmp_path / "worker.log")
    samples: dict[int, float] = {}  # eighths of the subjects counted: worker RSS then
    step = EVENTS // 8
    try:
        wait_worker_counting(tmp_path / "worker.log", worker)
        # an eighth at a time, each counted before the next is sent: RSS by subjects held,
        # whatever the broker's fetch sizes (Tansu serves a whole partition per fetch)
        for eighth in range(1, 9):
            first = (eighth - 1) * step
            produce(kafka_settings, topics["mail"],
                    Traffic().fresh(step, day_ago + first * 2, step * 2, first=first))
            deadline = time.monotonic() + 120
            while counted(health) < eighth * step * 3 and time.monotonic() < deadline:
                time.sleep(0.2)  # one entry per subject
            if counted(health) < eighth * step * 3:
                break
            after_two_checkpoints(health)
            samples[eighth] = settled_rss_mib(worker.pid)
        peak = peak_rss_mib(worker.pid)
    finally:
        stop(worker)
    log = (tmp_path / "worker.log").read_text(errors="replace")[-3000:]
    assert 8 in samples, f"counted only {max(samples, default=0)}/8 in time\n{log}"
    half = [mib for eighth, mib in samples.items() if eighth >= 4]
    # a leak climbs: the last quarter against the one before it (135,000 subjects apart);
    # 200 bytes kept per subject would add 26 MiB. Transient steps of RocksDB and the
    # allocator (seen: +38 MiB at one eighth, gone at the next) cancel out. On 2026-12-07
    # the worker grew 12 to 20 MiB here, on this code and on 5705b79 (about 100 bytes a
    # subject kept, not yet explained): this test then fails now and then, rightly.
    growth = (samples[7] + samples[8]) / 2 - (samples[4] + samples[5]) / 2
    assert growth < 16, f"RSS by eighths {samples}"
    figures.add(f"worker with {EVENTS * 3:,} subjects held at once (1 MiB RocksDB caches)",
                f"{EVENTS:,} mail events",
                f"RSS {min(half):.0f} to {max(half):.0f} MiB over the second half, "
                f"{growth:+.0f} MiB from its first quarter to its last; peak {peak:.0f} MiB")
    print("RSS by eighths of the subjects: " + ", ".join(
        f"{e}/8 {mib:.0f} MiB" for e, mib in sorted(samples.items())))
