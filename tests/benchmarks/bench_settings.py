"""Per-customer settings: the import, what they cost the worker in speed and in memory.

Run: python -m tests.benchmarks.bench_settings [--import-rows N] [--events E]
                                               [--stored S] [--live L]

1. ``floodgate settings import`` of an N-row export (CSV ``subject,class``, one row in ten
   a JSON line with overrides), as an operator runs it: wall time, rows/s, the command's
   peak RSS.
2. Speed, same run, same backlog (E events of bench_worker's Zipf traffic over 100,000
   accounts, 20,000 client addresses, 5,000 domains): a worker with no settings, then one
   with a settings record for every one of those 125,000 subjects (classes, one in ten with
   overrides of its own), then the first again; the ratio of the second to the median of
   the others.
3. Memory: S subjects with a settings record (a class), loaded first as a running worker
   has them, then L live subjects (windows of a day, so none is swept) counted by the same
   worker: its peak RSS and RocksDB size; baseline: the same L subjects counted by a worker
   with no settings, same run.

Settings records of 2 and 3 are stamped before the backlog's first event, so they count
from its start, as they would have live.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from connectors.kafka.embedded_broker import EmbeddedBroker, free_port
from connectors.kafka.topics import TopicSpec, ensure_topics
from schemas.config import KafkaSettings
from tests.benchmarks.bench_worker import (
    DIMENSIONS,
    DOMAINS,
    IPS,
    LONG_THRESHOLDS,
    PARTITIONS,
    USERS,
    Traffic,
    directory_bytes,
    produce,
    wait_for_backlog,
)
from tests.fixtures.processes import peak_rss_mib, start, stop

CLASSES = "classes: {default: consumer, names: [consumer, business, bulk]}\n"
THRESHOLDS_WITH_CLASSES = """
thresholds:
  - {name: burst, key: sasl_username, direction: outbound, window: 30s, messages: 60,
     action: defer, duration: 15m, per_class: {business: {messages: 600}, bulk: {messages: 6000}}}
  - {name: ip-hour, key: client_ip, direction: outbound, window: 1h, messages: 2000,
     action: defer, duration: 15m, per_class: {business: {messages: 20000}}}
  - {name: domain-5m, key: sender_domain, direction: outbound, window: 5m, messages: 20000,
     action: warn, duration: 15m}
"""
CLASS_NAMES = ("consumer", "business", "bulk")


def _iso(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def export_file(path: Path, rows: int, rng: random.Random) -> None:
    """A customer database's export: CSV rows, one in ten a JSON line with overrides."""
    with path.open("w") as out:
        out.write("subject,class\n")
        for n in range(rows):
            if n % 10 == 0:
                out.write(json.dumps({"subject": f"sasl_username:customer{n}@example.net",
                                      "class": "business",
                                      "overrides": {"burst": {"messages": 100 + n % 900}}})
                          + "\n")
            else:
                out.write(f"sasl_username:customer{n}@example.net,{rng.choice(CLASS_NAMES)}\n")


def settings_record(subject: str, at_ms: int, n: int) -> tuple[bytes, bytes]:
    """A settings record as ``floodgate settings`` writes it (hand-made JSON: fast)."""
    record: dict[str, object] = {"schema_version": 1, "subject": subject,
                                 "class": CLASS_NAMES[n % 3], "overrides": {},
                                 "exempt": False, "actor": "crm", "reason": "nightly export",
                                 "at": _iso(at_ms)}
    if n % 10 == 0:
        record["overrides"] = {"burst": {"messages": 100 + n % 500}}
    return subject.encode(), json.dumps(record, separators=(",", ":")).encode()


def traffic_subjects(traffic: Traffic, at_ms: int) -> Iterator[tuple[bytes, bytes]]:
    """A record for every account, client address and domain of the Zipf traffic."""
    n = 0
    for user in range(USERS):
        yield settings_record(f"sasl_username:user{user}", at_ms, n)
        n += 1
    for ip in range(IPS):
        yield settings_record(f"client_ip:10.{ip >> 8}.{ip & 255}.1", at_ms, n)
        n += 1
    for domain in range(DOMAINS):
        yield settings_record(f"sender_domain:d{domain}.example", at_ms, n)
        n += 1


def stored_subjects(count: int, at_ms: int) -> Iterator[tuple[bytes, bytes]]:
    for n in range(count):
        yield settings_record(f"sasl_username:customer{n}@example.net", at_ms, n)


class Bench:
    def __init__(self, work: Path, broker: EmbeddedBroker) -> None:
        self.work, self.broker = work, broker
        self.settings = KafkaSettings(bootstrap_servers=broker.bootstrap, client_id="bench")
        self.run = uuid.uuid4().hex[:6]

    def config(self, name: str, topics: dict[str, str], thresholds: str,
               health: int, app: str | None = None) -> Path:
        """``app``: the worker's app and data folder (another config's, to go on with its
        state); default ``name``."""
        app = app or name
        path = self.work / f"{name}.yaml"
        path.write_text(
            f"kafka: {{bootstrap_servers: '{self.broker.bootstrap}'}}\n"
            "networks: {internal: [10.0.0.0/8], local_domains: [example.net]}\n"
            + CLASSES + thresholds
            + "topics: {" + ", ".join(f"{k}: {v}" for k, v in topics.items()) + "}\n"
            f"worker: {{app_id: bench-{app}-{self.run}, "
            f"data_dir: '{self.work / app}', partitions: {PARTITIONS}, "
            f"health_listen: '127.0.0.1:{health}'}}\n")
        return path

    def topics(self, name: str, mail: str, settings: str) -> dict[str, str]:
        topics = {"mail_events": mail, "subject_settings": settings,
                  "subject_events": f"subjects-{name}-{self.run}",
                  "actions": f"actions-{name}-{self.run}", "dead_letter": f"dead-{self.run}"}
        ensure_topics(self.settings, [TopicSpec(t, PARTITIONS) for t in topics.values()])
        return topics

    def count(self, name: str, mail: str, settings: str, thresholds: str,
              entries: int, app: str | None = None) -> tuple[float, float, Path]:
        """A worker over the backlog: (seconds to count ``entries``, peak RSS MiB, data dir).
        ``app``: go on with the state of that earlier run's worker."""
        health = free_port()
        config = self.config(name, self.topics(app or name, mail, settings), thresholds,
                             health, app)
        worker = start([sys.executable, "-m", "pipeline.cli", "worker", "--config", str(config),
                        "--log-level", "warning"], self.work / f"{name}.log")
        try:
            seconds = wait_for_backlog(health, entries, 4 * 3_600)
            rss = peak_rss_mib(worker.pid)
        finally:
            stop(worker)
        return seconds, rss, self.work / (app or name)


def bench_import(bench: Bench, rows: int) -> None:
    export = bench.work / "customers.csv"
    export_file(export, rows, random.Random(3))
    topic = f"settings-import-{uuid.uuid4().hex[:6]}"
    config = bench.config("import", bench.topics("import", "mail-import", topic),
                          THRESHOLDS_WITH_CLASSES, free_port())
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "settings", "import",
                           str(export), "--config", str(config)], capture_output=True,
                          text=True, timeout=3_600)
    seconds = time.perf_counter() - started
    rss = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    print(f"import of {rows:,} rows ({export.stat().st_size / 2**20:.0f} MiB): {seconds:.1f} s, "
          f"{rows / seconds:,.0f} rows/s, peak RSS {rss:.0f} MiB (limit: 2 minutes for "
          "1,000,000)")
    print("  the command said: " + done.stderr.strip().splitlines()[-1])


def bench_speed(bench: Bench, events: int) -> None:
    traffic = Traffic()
    day_ago = int(time.time() * 1000) - 86_400_000
    mail = f"mail-speed-{uuid.uuid4().hex[:6]}"
    ensure_topics(bench.settings, [TopicSpec(mail, PARTITIONS)])
    records = [traffic.record(user, ts) for user, ts in traffic.stream(events, day_ago,
                                                                       events * 2)]
    produce(bench.settings, mail, iter(records))
    empty, full = f"settings-none-{bench.run}", f"settings-all-{bench.run}"
    nothing = f"mail-none-{bench.run}"
    ensure_topics(bench.settings, [TopicSpec(t, PARTITIONS) for t in (empty, full, nothing)])
    with_records = produce(bench.settings, full, traffic_subjects(traffic, day_ago - 3_600_000))
    # the settings are loaded first, as a running worker has them: not timed
    seconds, _, _ = bench.count("load", nothing, full, THRESHOLDS_WITH_CLASSES, with_records)
    print(f"  {with_records:,} settings records loaded by a worker in {seconds:.1f} s "
          f"({with_records / seconds:,.0f}/s)")
    entries = len(records) * DIMENSIONS
    rates: dict[str, list[float]] = {"without": [], "with": []}
    for n, kind in enumerate(("without", "with", "without")):
        seconds, _, _ = bench.count(
            f"speed{n}", mail, full if kind == "with" else empty, THRESHOLDS_WITH_CLASSES,
            entries, app="load" if kind == "with" else None)
        rates[kind].append(len(records) / seconds)
        print(f"  worker {kind} settings: {rates[kind][-1]:,.0f} events/s")
    ratio = rates["with"][0] / statistics.median(rates["without"])
    print(f"worker speed on {len(records):,} events, 3 key dimensions: "
          f"{statistics.median(rates['without']):,.0f} events/s without settings, "
          f"{rates['with'][0]:,.0f} with {with_records:,} subjects' settings: ratio {ratio:.3f} "
          f"(cost {1 - ratio:.1%}; limit 10%)")


def bench_memory(bench: Bench, stored: int, live: int) -> None:
    traffic = Traffic()
    day_ago = int(time.time() * 1000) - 86_400_000
    run = uuid.uuid4().hex[:6]
    mail, settings = f"mail-memory-{run}", f"settings-memory-{run}"
    ensure_topics(bench.settings, [TopicSpec(t, PARTITIONS) for t in (mail, settings)])
    began = time.perf_counter()
    produce(bench.settings, settings, stored_subjects(stored, day_ago - 3_600_000))
    produce(bench.settings, mail, traffic.fresh(live // 3, day_ago, live))
    print(f"  produced {stored:,} settings records and {live // 3:,} events in "
          f"{time.perf_counter() - began:.0f} s")
    thresholds = LONG_THRESHOLDS.replace("messages: 60,", "messages: 60, per_class: "
                                                          "{business: {messages: 600}},")
    # a running worker has the settings already: loaded first (the RSS of loading them too)
    nothing = f"mail-none-{run}"
    ensure_topics(bench.settings, [TopicSpec(nothing, PARTITIONS)])
    seconds, load_rss, _ = bench.count("memory", nothing, settings, thresholds, stored)
    print(f"  {stored:,} settings records loaded in {seconds:.0f} s "
          f"({stored / seconds:,.0f}/s), peak RSS {load_rss:.0f} MiB")
    seconds, rss, data = bench.count("memory-live", mail, settings, thresholds,
                                     (live // 3) * DIMENSIONS, app="memory")
    size = directory_bytes(data / "counting")
    empty = f"settings-empty-{run}"
    ensure_topics(bench.settings, [TopicSpec(empty, PARTITIONS)])
    _, baseline, _ = bench.count("memory-none", mail, empty, thresholds,
                                 (live // 3) * DIMENSIONS)
    print(f"worker with {stored:,} subjects' settings and {live // 3 * 3:,} live subjects: "
          f"peak RSS {rss:.0f} MiB (budget 1 GiB), RocksDB {size / 2**20:.0f} MiB; "
          f"counted in {seconds:.0f} s; the same live subjects without settings, same run: "
          f"peak RSS {baseline:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--import-rows", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--stored", type=int, default=10_000_000)
    parser.add_argument("--live", type=int, default=1_000_000)
    parser.add_argument("--only", choices=("import", "speed", "memory"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-settings-"))
    broker = EmbeddedBroker(work / "broker.log")
    broker.start()
    try:
        bench = Bench(work, broker)
        if args.only in (None, "import"):
            bench_import(bench, args.import_rows)
        if args.only in (None, "speed"):
            bench_speed(bench, args.events)
        if args.only in (None, "memory"):
            bench_memory(bench, args.stored, args.live)
    finally:
        broker.stop()
        print(f"(work files in {work})")


if __name__ == "__main__":
    main()
