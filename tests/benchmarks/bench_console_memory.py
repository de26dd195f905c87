"""The console's memory under sustained demo traffic: does it stay flat?

Run: python -m tests.benchmarks.bench_console_memory [--rate 2000] [--seconds 600]
     [--customers 200000] [--sample-every 10]

Starts a Kafka-compatible broker (Tansu) and first publishes an hour of
back-dated mail (``--preload-rate`` a second, from C accounts), so that every
bucket of the Top summaries, the hour's included, is full when the measurement
starts; then ``floodgate console`` reads it, and ``floodgate demo-traffic
--rate R --customers C`` sends live mail (many accounts, so the summaries keep
evicting: the hard case for memory). Every sample
reads the console's resident memory (/proc VmRSS), asks every panel's JSON
(as an open page does), and notes the summary's counters. Prints the samples,
then the resident memory over the first and the last minutes: flat means the
last minutes are no higher than the first ones once every summary bucket has
been filled.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Producer

from connectors.demo_traffic import DemoMail, mail_event
from connectors.kafka.client_config import producer_config
from connectors.kafka.embedded_broker import EmbeddedBroker, free_port
from schemas.config import KafkaSettings
from tests.fixtures.processes import REPO, rss_mib, start, stop, wait_listening

CONFIG = REPO / "deploy" / "examples" / "single-host.yaml"


def get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=30) as response:
        document: dict[str, object] = json.loads(response.read())
        return document


def preload(bootstrap: str, rate: float, customers: int) -> int:
    """An hour of mail before now, back-dated; returns how many messages."""
    rng = random.Random(3)
    producer = Producer(producer_config(KafkaSettings(bootstrap_servers=bootstrap)))
    now = int(time.time() * 1000)
    count = int(rate * 3600)
    for index in range(count):
        ts = now - 3_590_000 + index * 3_580_000 // count
        user = f"customer{rng.randrange(customers):02d}"
        event = mail_event(DemoMail(0, user, rng.random() < 0.01), ts, rng)
        producer.produce("floodgate.mail-events", event.model_dump_json().encode(),
                         key=user.encode(), timestamp=ts)
        if index % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--sample-every", type=float, default=10)
    parser.add_argument("--preload-rate", type=float, default=100,
                        help="back-dated messages a second over the hour before the start")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-console-"))
    broker = EmbeddedBroker(work / "tansu.log")
    broker.start()
    console = traffic = None
    try:
        preloaded = preload(broker.bootstrap, args.preload_rate, args.customers)
        port = free_port()
        env = {**os.environ, "FLOODGATE_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
               "FLOODGATE_CONSOLE__LISTEN": f"127.0.0.1:{port}"}
        floodgate = [sys.executable, "-m", "pipeline.cli"]
        console = start([*floodgate, "console", "--config", str(CONFIG)], work / "console.log", env)
        wait_listening(port, console, timeout_s=60)
        base = f"http://127.0.0.1:{port}"
        while int(get(f"{base}/api/status")["mail_counted"]) < preloaded * 0.99:  # type: ignore[call-overload]
            time.sleep(2)
        print(f"console read the hour's {preloaded:,} back-dated messages: RSS "
              f"{rss_mib(console.pid):.1f} MiB, counters "
              f"{get(f'{base}/api/status')['top_counters']:,}")
        traffic = start([*floodgate, "demo-traffic", "--config", str(CONFIG), "--rate",
                         str(args.rate), "--seconds", str(args.seconds), "--customers",
                         str(args.customers), "--seed", "7"], work / "demo.log", env)
        started = time.monotonic()
        samples: list[tuple[float, float, int, int]] = []
        print(f"{'s':>5} {'RSS MiB':>8} {'counters':>9} {'mail counted':>13} {'mail/s':>8}")
        while traffic.poll() is None:
            time.sleep(args.sample_every)
            for window in (60, 300, 3600):
                get(f"{base}/api/top?window={window}")
            get(f"{base}/api/actions")
            get(f"{base}/api/answers")
            status = get(f"{base}/api/status")
            elapsed = time.monotonic() - started
            counted = int(status["mail_counted"])  # type: ignore[call-overload]
            rate = (counted - samples[-1][3]) / args.sample_every if samples else counted / elapsed
            samples.append((elapsed, rss_mib(console.pid), int(status["top_counters"]),  # type: ignore[call-overload]
                            counted))
            print(f"{elapsed:5.0f} {samples[-1][1]:8.1f} {samples[-1][2]:9,} {counted:13,} "
                  f"{rate:8,.0f}", flush=True)
        minute = max(1, int(60 / args.sample_every))
        first = [s[1] for s in samples[minute:2 * minute]] or [samples[0][1]]  # the 2nd minute
        last = [s[1] for s in samples[-minute:]]
        print(f"\nconsole RSS: median {statistics.median(first):.1f} MiB in the 2nd minute, "
              f"{statistics.median(last):.1f} MiB in the last minute, max "
              f"{max(s[1] for s in samples):.1f} MiB; counters at the end "
              f"{samples[-1][2]:,} (bound 90 x 4 x capacity); {samples[-1][3]:,} messages "
              f"counted in {samples[-1][0]:.0f} s ({samples[-1][3] / samples[-1][0]:,.0f}/s)")
        print(f"(work files in {work})")
    finally:
        stop(traffic)
        stop(console)
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
