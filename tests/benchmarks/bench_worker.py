"""Streaming worker throughput, detection latency, memory and table size, on the embedded broker.

Run: python -m tests.benchmarks.bench_worker [--mix zipf|isp] [--events N] [--live-seconds S]
                                              [--live-rate R] [--profile FILE] [--subjects M]
                                              [--against DIR [--rounds N]]

1. Preload N mail events on ``floodgate.mail-events``: Zipf-distributed over
   100,000 SASL users, each with a home address among 20,000 client IPs and
   a domain among 5,000; 2% of the users are abusers who burst 80 messages in
   8 s at a random moment. Thresholds on three key dimensions (account, client
   IP, sender domain).
2. Ceiling, same run, same topic: a plain confluent-kafka consumer reads it all.
3. A ``floodgate worker`` process counts the backlog; the rate is measured from
   its ``floodgate_worker_entries_counted`` metric (one entry per event and
   key dimension), from the first entry counted to the last, scraped every
   0.2 s.
4. Live: events produced at R/s, stamped with the wall clock, abusers
   included; latency = when the action reached the actions topic minus the
   time of the event that fired it.
5. Peak RSS of the worker (VmHWM) and the RocksDB size on disk per million
   subjects after a clean stop.

With ``--mix isp`` the traffic is shaped like an ISP's instead: 400 accounts (a few of
them bursting), each with its own sender and one of 40 domains, keyed by account on 4
partitions; every message from one of 60,000 client addresses (a fifth IPv6), each seen a
few times an hour, as dynamic and CGNAT addresses are; 1-3 recipients; the fields the
tailer writes (queue id, Message-ID, size, spam score); four key dimensions counted by five
thresholds, one of them counting recipients. ``--events`` then defaults to 200,000 over an
hour of event time.

With ``--subjects M`` the backlog is M/3 events each from an account, a client IP
and a sender domain never seen before, every threshold's window is a day (so no
subject is idle long enough to be swept), and the worker's resident memory is
sampled as the subjects pile up: the worst case for memory, M subjects held at once.

With ``--against DIR`` (another checkout: ``git worktree add DIR REV``) steps 3 to 5 give
way to a comparison: this checkout's worker and DIR's count the same backlog in turn,
``--rounds`` times, order alternating; it prints each rate and the median ratio. Tansu's
read rate moves the ceiling several times over from run to run; a baseline commit run on
the same backlog in the same script does not.

With ``--profile FILE`` the worker runs under cProfile and the top functions
are printed (cProfile slows it about eight times: use a small ``--events``;
``py-spy record --pid PID`` on a normal run costs almost nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pstats
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from connectors.kafka.client_config import consumer_config, producer_config
from connectors.kafka.embedded_broker import EmbeddedBroker, free_port
from connectors.kafka.topics import TopicSpec, ensure_topics
from schemas.config import KafkaSettings
from schemas.events import ActionEvent, MailEvent
from tests.benchmarks.bench_engine import zipf
from tests.fixtures.http_probe import scrape
from tests.fixtures.processes import REPO, peak_rss_mib, rss_mib, start, stop

USERS, IPS, DOMAINS = 100_000, 20_000, 5_000
ABUSER_SHARE, BURST, BURST_SPAN_MS = 0.02, 80, 8_000
PARTITIONS = 8
DIMENSIONS = 3  # every bench event has an account, a client IP and a sender domain
STALLED_S = 120  # the backlog's count standing still this long once started: something lost

THRESHOLDS = """
thresholds:
  - {name: burst, key: sasl_username, direction: outbound, window: 30s, messages: 60,
     action: defer, duration: 15m}
  - {name: ip-hour, key: client_ip, direction: outbound, window: 1h, messages: 2000,
     action: defer, duration: 15m}
  - {name: domain-5m, key: sender_domain, direction: outbound, window: 5m, messages: 20000,
     action: warn, duration: 15m}
"""

ISP_THRESHOLDS = """
thresholds:
  - {name: burst, key: sasl_username, direction: outbound, window: 30s, messages: 60,
     action: defer, duration: 15m}
  - {name: account-hour, key: sasl_username, direction: outbound, window: 1h, messages: 3000,
     count: recipients, action: quarantine, duration: 1h}
  - {name: all-spam, key: sender, direction: outbound, window: 30s, messages: 10, spams: 10,
     action: block, duration: 1h}
  - {name: ip-10m, key: client_ip, direction: outbound, window: 10m, messages: 40,
     action: defer, duration: 15m}
  - {name: domain-5m, key: sender_domain, direction: outbound, window: 5m, messages: 5000,
     action: warn, duration: 15m}
"""

# --subjects: every subject stays live for the whole run
LONG_THRESHOLDS = THRESHOLDS.replace("window: 30s", "window: 1d").replace(
    "window: 1h", "window: 1d").replace("window: 5m", "window: 1d")


class Traffic:
    """Users with a home IP and domain; abusers among them."""

    partitions, dimensions, thresholds, events = PARTITIONS, DIMENSIONS, THRESHOLDS, 300_000

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.ip_of = [self.rng.randrange(IPS) for _ in range(USERS)]
        self.domain_of = [self.rng.randrange(DOMAINS) for _ in range(USERS)]
        self.abusers = self.rng.sample(range(USERS), int(USERS * ABUSER_SHARE))
        self._ids = iter(range(10**12))

    def record(self, user: int, ts_ms: int) -> tuple[bytes, bytes]:
        ip = self.ip_of[user]
        event = {
            "schema_version": 1, "event_id": f"bench/{next(self._ids):x}",
            "ts": _iso(ts_ms), "host": "mx1", "client_ip": f"10.{ip >> 8}.{ip & 255}.1",
            "sasl_username": f"user{user}", "sender": f"user{user}@d{self.domain_of[user]}.example",
            "recipients": ["someone@gmail.example"], "recipient_count": 1,
            "direction": "outbound", "accepted": True, "source": "log",
        }
        return f"user{user}".encode(), json.dumps(event, separators=(",", ":")).encode()

    def fresh(self, count: int, start_ms: int, span_ms: int,
              first: int = 0) -> Iterator[tuple[bytes, bytes]]:
        """``count`` events, each from an account, an IP and a domain never seen before
        (numbered from ``first``: calls with disjoint ranges bring disjoint subjects)."""
        for n in range(first, first + count):
            event = {
                "schema_version": 1, "event_id": f"fresh/{n:x}",
                "ts": _iso(start_ms + (n - first) * span_ms // count), "host": "mx1",
                "client_ip": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
                "sasl_username": f"fresh{n}", "sender": f"fresh{n}@f{n}.example",
                "recipients": ["someone@gmail.example"], "recipient_count": 1,
                "direction": "outbound", "accepted": True, "source": "log",
            }
            yield f"fresh{n}".encode(), json.dumps(event, separators=(",", ":")).encode()

    def subjects(self, user: int) -> tuple[int, ...]:
        """Ids of the subjects an event of ``user`` counts under (for the subject count)."""
        return (user, -1 - self.ip_of[user], -100_000 - self.domain_of[user])

    def span_ms(self, events: int) -> int:
        return events * 2  # 500 events/s of event time

    def stream(self, count: int, start_ms: int, span_ms: int) -> Iterator[tuple[int, int]]:
        """``count`` (user, time) pairs over ``span_ms``: Zipf background plus abuser bursts."""
        bursts = max(1, int(len(self.abusers) * min(1.0, count / 1_000_000)))
        background = count - bursts * BURST
        times = sorted(self.rng.randrange(span_ms) for _ in range(background))
        pairs = list(zip(zipf(self.rng, USERS, background), times, strict=True))
        for abuser in self.rng.sample(self.abusers, bursts):
            begin = self.rng.randrange(max(1, span_ms - BURST_SPAN_MS))
            pairs += [(abuser, begin + i * BURST_SPAN_MS // BURST) for i in range(BURST)]
        pairs.sort(key=lambda pair: pair[1])
        for user, offset_ms in pairs:
            yield user, start_ms + offset_ms


class IspMix:
    """Traffic shaped like an ISP's (see the module's text): few accounts, many short-lived
    client addresses, multi-recipient mail, full tailer-shaped events."""

    ACCOUNTS, DOMAINS, ADDRESSES, BURSTERS = 400, 40, 60_000, 8
    partitions, dimensions, thresholds, events = 4, 4, ISP_THRESHOLDS, 200_000

    def __init__(self, seed: int = 11) -> None:
        self.rng = random.Random(seed)
        self.domain_of = [self.rng.randrange(self.DOMAINS) for _ in range(self.ACCOUNTS)]
        self.abusers = self.rng.sample(range(self.ACCOUNTS), self.BURSTERS)
        self._ids = iter(range(10**12))
        self.addresses: set[str] = set()

    def _address(self) -> str:
        n = self.rng.randrange(self.ADDRESSES)
        if n % 5 == 0:  # a fifth of the customers on IPv6
            return f"2001:db8:{n >> 12:x}:{n & 0xfff:x}::{self.rng.randrange(1, 0xffff):x}"
        return f"100.{64 + (n >> 16)}.{n >> 8 & 255}.{n & 255}"

    def record(self, user: int, ts_ms: int) -> tuple[bytes, bytes]:
        number = next(self._ids)
        address = self._address()
        self.addresses.add(address)
        recipients = [f"r{self.rng.randrange(10**6)}@gmail.example"
                      for _ in range(self.rng.choice((1, 1, 1, 2, 3)))]
        spam = self.rng.random() < 0.01
        event = {
            "schema_version": 1, "event_id": f"mx1/{number:X}", "ts": _iso(ts_ms),
            "host": "mx1.isp.example", "queue_id": f"{number:010X}",
            "message_id": f"<{number:x}.{user}@mail.isp.example>", "client_ip": address,
            "client_name": "unknown", "sasl_username": f"customer{user}@isp.example",
            "sender": f"customer{user}@c{self.domain_of[user]}.example",
            "recipients": recipients, "recipient_count": len(recipients),
            "size": self.rng.randrange(2_000, 200_000), "direction": "outbound",
            "accepted": True, "spam": spam, "spam_score": 9.5 if spam else round(
                self.rng.uniform(-2, 3), 2), "source": "log",
        }
        return f"customer{user}@isp.example".encode(), json.dumps(
            event, separators=(",", ":")).encode()

    def subjects(self, user: int) -> tuple[int, ...]:
        return (user, 1_000_000 + user, -1 - self.domain_of[user])  # addresses apart

    def span_ms(self, events: int) -> int:
        return 3_600_000 * events // 200_000  # 200,000 events an hour

    def stream(self, count: int, start_ms: int, span_ms: int) -> Iterator[tuple[int, int]]:
        bursts = max(1, count * len(self.abusers) // 200_000)
        background = count - bursts * BURST
        pairs = [(self.rng.randrange(self.ACCOUNTS), self.rng.randrange(span_ms))
                 for _ in range(background)]
        for abuser in (self.rng.choice(self.abusers) for _ in range(bursts)):
            begin = self.rng.randrange(max(1, span_ms - BURST_SPAN_MS))
            pairs += [(abuser, begin + i * BURST_SPAN_MS // BURST) for i in range(BURST)]
        pairs.sort(key=lambda pair: pair[1])
        for user, offset_ms in pairs:
            yield user, start_ms + offset_ms


def _iso(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def produce(settings: KafkaSettings, topic: str, records: Iterator[tuple[bytes, bytes]]) -> int:
    producer = Producer(producer_config(settings, **{"linger.ms": 20}))
    sent = 0
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
        sent += 1
        if sent % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    return sent


def raw_consume_rate(settings: KafkaSettings, topic: str, total: int, partitions: int) -> float:
    """Records a second a plain consumer reads the topic at, from its assignment to the last
    record (timed from the first record, what its fetches had already queued would count
    as read at memory speed)."""
    consumer = Consumer(consumer_config(settings, f"ceiling-{uuid.uuid4().hex[:6]}"))
    consumer.list_topics(topic, timeout=30)  # connected before the clock starts
    started = time.perf_counter()
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    seen = 0
    deadline = time.monotonic() + 600
    while seen < total and time.monotonic() < deadline:
        seen += sum(1 for message in consumer.consume(10_000, 0.5) if not message.error())
    elapsed = time.perf_counter() - started
    consumer.close()
    return seen / elapsed


def counted(port: int) -> int:
    """Entries the worker has counted so far (its Prometheus counter)."""
    try:
        return int(scrape(port).get("floodgate_worker_entries_counted_total", 0))
    except OSError:
        return 0


def wait_for_backlog(port: int, entries: int, deadline_s: float,
                     progress: Callable[[int], None] = lambda counted: None) -> float:
    """Seconds from the first entry counted to the last of ``entries``. Gives up after
    ``deadline_s``, or once counting has stood still for ``STALLED_S``: entries were lost."""
    first = None
    deadline = time.monotonic() + deadline_s
    last_done, moved = -1, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - moved < STALLED_S:
        done = counted(port)
        progress(done)
        now = time.perf_counter()
        if done != last_done:
            last_done, moved = done, time.monotonic()
        if first is None and done > 0:
            first, first_done = now, done
        if done >= entries and first is not None:
            return (now - first) * entries / max(entries - first_done, 1)
        time.sleep(0.2)
    raise SystemExit(f"the worker did not finish the backlog ({counted(port):,} of "
                     f"{entries:,} entries counted)")


def live_latencies(settings: KafkaSettings, traffic: Traffic | IspMix, topics: dict[str, str],
                   seconds: float, rate: int) -> list[float]:
    """Produce live traffic; return (action seen - firing event time) in ms for new actions.

    A thread of its own watches the actions topic, so that an action is timed when it
    arrives, not when the producing loop finds time to look."""
    # the watcher stands for the responder: a short fetch wait, or the broker's hold of the
    # watcher's own fetch (Tansu keeps a fetch half its wait even when records are there)
    # would be counted as the worker's latency
    watcher = Consumer(consumer_config(settings, f"watch-{uuid.uuid4().hex[:6]}",
                                       **{"fetch.wait.max.ms": 50}))
    ends = [TopicPartition(topics["actions"], p,
                           watcher.get_watermark_offsets(TopicPartition(topics["actions"], p))[1])
            for p in range(traffic.partitions)]
    watcher.assign(ends)
    producer = Producer(producer_config(settings, **{"linger.ms": 5}))
    producer.list_topics(topics["mail"], timeout=30)  # connected, before the clock starts
    plan = list(traffic.stream(int(seconds * rate), 0, int(seconds * 1000)))
    start_ms = int(time.time() * 1000)
    latencies: list[float] = []
    slowest: list[tuple[float, float]] = []  # (latency ms, seconds into the live phase)
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for message in watcher.consume(1000, 0.05):
                seen_ms = time.time() * 1000
                if message.error():
                    continue
                action = ActionEvent.model_validate_json(message.value())
                fired_ms = action.triggered_at.timestamp() * 1000
                if action.state.value == "active" and fired_ms >= start_ms:
                    latencies.append(seen_ms - fired_ms)
                    slowest.append((seen_ms - fired_ms, (fired_ms - start_ms) / 1000))

    watching = threading.Thread(target=watch, name="watcher")
    watching.start()
    try:
        for user, offset_ms in plan:
            wait = (start_ms + offset_ms) / 1000 - time.time()
            if wait > 0.001:
                producer.poll(0)
                time.sleep(wait)
            key, value = traffic.record(user, int(time.time() * 1000))
            producer.produce(topics["mail"], value=value, key=key)
        producer.flush(30)
        time.sleep(10)  # the last bursts' actions
    finally:
        done.set()
        watching.join()
        watcher.close()
    if slowest:  # where the tail is: the start of the live phase, or spread over it
        print("live, slowest actions: " + ", ".join(
            f"{ms:.0f} ms at {at:.1f} s" for ms, at in sorted(slowest, reverse=True)[:8]))
    return latencies


def routed_batches(port: int) -> dict[str, float]:
    """How many routed batches were taken at once and how many went through Kafka."""
    samples = scrape(port)
    return {path: samples.get(f'floodgate_worker_routed_batches_total{{path="{path}"}}', 0.0)
            for path in ("early", "kafka")}


def histogram(port: int, name: str) -> dict[str, float]:
    """One of the worker's histograms: upper bound (s) -> observations at or under it, and
    "sum" -> their sum."""
    prefix = f'{name}_bucket{{le="'
    samples = scrape(port)
    found = {key[len(prefix):-2]: value for key, value in samples.items()
             if key.startswith(prefix)}
    found["sum"] = samples.get(f"{name}_sum", 0.0)
    return found


def shares(before: dict[str, float], after: dict[str, float]) -> str:
    """Between two readings of a histogram: the share of observations within each bound."""
    total = after.get("+Inf", 0) - before.get("+Inf", 0)
    if not total:
        return "none"
    mean = (after["sum"] - before.get("sum", 0)) / total
    return f"{total:.0f}, mean {mean * 1000:.0f} ms; " + ", ".join(
        f"<= {bound} s {(after[bound] - before.get(bound, 0)) / total:.0%}"
        for bound in ("0.05", "0.1", "0.25", "0.5", "1.0", "2.5") if bound in after)


LIVE_HISTOGRAMS = {"event time to counted": "floodgate_worker_release_delay_seconds",
                   "checkpoints": "floodgate_worker_checkpoint_seconds"}


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def worker_config(bootstrap: str, thresholds: str, topics: dict[str, str], run: str,
                  data: Path, partitions: int, health: int, fetch_wait_ms: int) -> str:
    """The worker's config for one run: its own group, internal topics and state."""
    return (f"kafka: {{bootstrap_servers: '{bootstrap}'}}\n"
            "networks: {internal: [10.0.0.0/8], local_domains: [example.net]}\n"
            + thresholds +
            f"topics: {{mail_events: {topics['mail']}, subject_events: {topics['subjects']}, "
            f"actions: {topics['actions']}, dead_letter: {topics['dead']}}}\n"
            f"worker: {{app_id: bench-{run}, data_dir: '{data}', "
            f"partitions: {partitions}, health_listen: '127.0.0.1:{health}', "
            f"fetch_wait_ms: {fetch_wait_ms}}}\n")


def compare(args: argparse.Namespace, bootstrap: str, settings: KafkaSettings, thresholds: str,
            mail_topic: str, partitions: int, entries: int, events: int, work: Path) -> None:
    """``--against DIR``: this checkout's worker and DIR's count the same preloaded backlog
    in turn, ``--rounds`` times, each run with its own group, topics and state; the order
    alternates from round to round. The machine's drift (±15% from run to run on
    2026-12-07) then falls on both alike: the median ratio compares the code."""
    sides = {"this": REPO, "against": Path(args.against).resolve()}
    rates: dict[str, list[float]] = {side: [] for side in sides}
    for number in range(args.rounds):
        for side in (list(sides) if number % 2 == 0 else list(sides)[::-1]):
            run = uuid.uuid4().hex[:6]
            topics = {"mail": mail_topic,
                      **{name: f"{name}-{run}" for name in ("subjects", "actions", "dead")}}
            ensure_topics(settings, [TopicSpec(t, partitions) for t in topics.values()])
            health = free_port()
            config = work / f"floodgate-{run}.yaml"
            config.write_text(worker_config(bootstrap, thresholds, topics, run,
                                            work / f"data-{run}", partitions, health,
                                            args.fetch_wait_ms))
            worker = start([sys.executable, "-m", "pipeline.cli", "worker", "--config",
                            str(config), "--log-level", "warning"], work / f"worker-{run}.log",
                           cwd=sides[side])
            try:
                rate = events / wait_for_backlog(health, entries, 4 * 3_600)
            finally:
                stop(worker)
            rates[side].append(rate)
            print(f"round {number + 1}, {side} ({sides[side]}): {rate:,.0f} events/s")
    ratios = [mine / theirs for mine, theirs in zip(rates["this"], rates["against"], strict=True)]
    print(f"median events/s: this {statistics.median(rates['this']):,.0f}, against "
          f"{statistics.median(rates['against']):,.0f}; ratio this / against per round "
          + ", ".join(f"{r:.3f}" for r in ratios) + f" (median {statistics.median(ratios):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mix", choices=("zipf", "isp"), default="zipf",
                        help="the traffic: Zipf over 100,000 users (default), or an ISP's shape")
    parser.add_argument("--events", type=int, help="default 300,000 (zipf), 200,000 (isp)")
    parser.add_argument("--partitions", type=int,
                        help="of the mail and counting topics; default 8 (zipf), 4 (isp)")
    parser.add_argument("--live-seconds", type=float, default=20)
    parser.add_argument("--live-rate", type=int, default=300)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--subjects", type=int, help="M fresh subjects held at once (see above)")
    parser.add_argument("--fetch-wait-ms", type=int, default=500,
                        help="worker.fetch_wait_ms (Tansu holds every fetch this long)")
    parser.add_argument("--against", type=Path,
                        help="another checkout (git worktree add DIR REV): its worker and this "
                             "one count the same backlog in turn, --rounds times; no live phase")
    parser.add_argument("--rounds", type=int, default=3, help="with --against (default 3)")
    args = parser.parse_args()
    if args.against is not None and not (args.against / "pipeline" / "cli").is_dir():
        parser.error(f"--against {args.against}: not a Floodgate checkout")
    if args.rounds < 1:
        parser.error("--rounds needs at least 1")
    if args.subjects is not None and args.subjects < 3:
        parser.error("--subjects needs at least 3")
    if args.subjects is not None and args.mix != "zipf":
        parser.error("--subjects is a zipf run")
    traffic: Traffic | IspMix = IspMix() if args.mix == "isp" else Traffic()
    args.events = args.events or traffic.events
    if args.partitions:
        traffic.partitions = args.partitions
    partitions = traffic.partitions
    work = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    broker = EmbeddedBroker(work / "broker.log")
    broker.start()
    worker = None
    try:
        settings = KafkaSettings(bootstrap_servers=broker.bootstrap, client_id="bench")
        run = uuid.uuid4().hex[:6]
        topics = {name: f"{name}-{run}" for name in ("mail", "subjects", "actions", "dead")}
        health = free_port()
        config = work / "floodgate.yaml"
        config.write_text(worker_config(broker.bootstrap, LONG_THRESHOLDS if args.subjects
                                        else traffic.thresholds, topics, run, work / "data",
                                        partitions, health, args.fetch_wait_ms))
        ensure_topics(settings, [TopicSpec(t, partitions) for t in topics.values()])

        day_ago = int(time.time() * 1000) - 86_400_000
        span_ms = traffic.span_ms(args.events)
        subjects: set[int] = set()
        records = []
        if args.subjects:
            assert isinstance(traffic, Traffic)
            records = list(traffic.fresh(args.subjects // 3, day_ago, span_ms))
            subject_count = len(records) * 3
        else:
            for user, ts_ms in traffic.stream(args.events, day_ago, span_ms):
                records.append(traffic.record(user, ts_ms))
                subjects.update(traffic.subjects(user))
            subject_count = len(subjects) + len(getattr(traffic, "addresses", ()))
        MailEvent.model_validate_json(records[0][1])  # the hand-made JSON is a valid event
        began = time.perf_counter()
        produce(settings, topics["mail"], iter(records))
        print(f"preloaded {len(records):,} events in {time.perf_counter() - began:.1f} s; "
              f"{subject_count:,} subjects")
        # Tansu's own read rate varies from run to run several times over (110,000 to
        # 970,000 records/s on 2026-12-07): the ratio moves with it
        ceiling = raw_consume_rate(settings, topics["mail"], len(records), partitions)
        print(f"ceiling: raw confluent-kafka consume {ceiling:,.0f} events/s")
        if args.against:
            compare(args, broker.bootstrap, settings, traffic.thresholds, topics["mail"],
                    partitions, len(records) * traffic.dimensions, len(records), work)
            return

        command = [sys.executable]
        if args.profile:
            command += ["-m", "cProfile", "-o", str(args.profile)]
        command += ["-m", "pipeline.cli", "worker", "--config", str(config),
                    "--log-level", "warning"]
        worker = start(command, work / "worker.log")
        samples: dict[int, float] = {}  # quarter of the backlog counted: worker RSS then

        most_held = forced = 0.0

        def sample(done: int) -> None:
            nonlocal most_held, forced
            quarter = min(done * 4 // (len(records) * traffic.dimensions), 4)
            if quarter not in samples:
                samples[quarter] = rss_mib(worker.pid)
            with contextlib.suppress(OSError):
                metrics = scrape(health)
                most_held = max(most_held, metrics.get("floodgate_worker_entries_held", 0))
                forced = metrics.get("floodgate_worker_entries_forced", forced)

        seconds = wait_for_backlog(health, len(records) * traffic.dimensions, 4 * 3_600, sample)
        rate = len(records) / seconds
        print(f"worker ({args.mix} mix): {rate:,.0f} events/s ({len(records):,} events, "
              f"{traffic.dimensions} key dimensions, {seconds:.1f} s); ratio to the ceiling "
              f"{rate / ceiling:.4f}")
        print("worker RSS as the backlog was counted: " + ", ".join(
            f"{q * 25}% {mib:.0f} MiB" for q, mib in sorted(samples.items()))
            + f"; most entries held for event-time order {most_held:,.0f}, "
            f"released early because too many were held {forced:,.0f}")
        trims = histogram(health, "floodgate_worker_heap_trim_seconds")
        print(f"heap trims: {trims.get('+Inf', 0):.0f}, {trims['sum']:.2f} s in all "
              f"({trims['sum'] / seconds:.1%} of the backlog's time)")

        live = not args.subjects and args.live_seconds > 0
        before = {name: histogram(health, metric) for name, metric in LIVE_HISTOGRAMS.items()}
        routed_before = routed_batches(health)
        latencies = [] if not live else live_latencies(settings, traffic, topics,
                                                            args.live_seconds, args.live_rate)
        if len(latencies) >= 2:
            cuts = statistics.quantiles(latencies, n=100, method="inclusive")
            print(f"live at {args.live_rate:,} events/s for {args.live_seconds:.0f} s: "
                  f"{len(latencies)} actions; detection latency p50 {cuts[49]:.0f} ms, "
                  f"p99 {cuts[98]:.0f} ms, max {max(latencies):.0f} ms")
        elif live:
            print(f"live: {len(latencies)} action(s) fired: too few for percentiles")
        if live:
            after = routed_batches(health)
            print("live, routed batches: " + ", ".join(
                f"{path} {after[path] - routed_before[path]:,.0f}" for path in after))
            for name, metric in LIVE_HISTOGRAMS.items():
                print(f"live, {name}: {shares(before[name], histogram(health, metric))}")
        rss = peak_rss_mib(worker.pid)
        stop(worker)
        worker = None
        size = directory_bytes(work / "data" / "counting")
        print(f"worker peak RSS {rss:.0f} MiB; RocksDB {size / 2**20:.1f} MiB for "
              f"{subject_count:,} subjects = {size / subject_count * 1e6 / 2**20:.0f} MiB "
              "per million subjects")
        if args.profile:
            stats = pstats.Stats(str(args.profile))
            stats.sort_stats("tottime").print_stats(20)
    finally:
        if worker is not None:
            stop(worker)
        broker.stop()
        print(f"(work files in {work})")


if __name__ == "__main__":
    main()
