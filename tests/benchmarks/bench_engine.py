"""Engine throughput: events/s through the threshold engine, as the streaming worker drives it.

Run: python -m tests.benchmarks.bench_engine [--events N] [--rounds R]

Each round decodes the subject's state from bytes, applies the event and
encodes it back (one RocksDB get and put per key dimension in the worker),
for three key dimensions, on Zipf-distributed traffic. The baseline, timed in
the same round on the same events, is the cheapest possible counter: one dict
increment per event and dimension (a fixed-window count with no state bytes).
Figures are medians over rounds; compare the ratio, not the absolute numbers,
across machines.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from pipeline.engine.evaluator import ThresholdEngine
from pipeline.engine.subject_state import SubjectState, decode_state, encode_state
from schemas.config import FloodgateConfig
from schemas.events import MailEvent
from schemas.thresholds import Threshold

T0 = datetime(2026, 11, 27, tzinfo=UTC)


def make_config() -> FloodgateConfig:
    def rule(name: str, key: str, **extra: object) -> Threshold:
        return Threshold.model_validate({"name": name, "key": key, "window": "30s",
                                         "action": "defer", "duration": "15m", **extra})
    return FloodgateConfig(thresholds=[
        rule("burst", "sasl_username", messages=60),
        rule("all-spam", "sender", messages=10, spams=10, action="block"),
        rule("ip-hour", "client_ip", messages=500, window="1h"),
        rule("domain", "sender_domain", messages=2_000, window="5m"),
    ])


def zipf(rng: random.Random, population: int, count: int, s: float = 1.0) -> list[int]:
    """``count`` ranks drawn from a Zipf law with exponent ``s`` over ``population`` ranks."""
    cumulative = list(itertools.accumulate(1 / (rank ** s) for rank in range(1, population + 1)))
    return rng.choices(range(population), cum_weights=cumulative, k=count)


def make_events(count: int, seed: int = 1) -> list[MailEvent]:
    """Zipf traffic over 100,000 users, 2 ms apart, 2% spam."""
    rng = random.Random(seed)
    users = zipf(rng, 100_000, count)
    events = []
    for i, user in enumerate(users):
        events.append(MailEvent(
            event_id=f"mx1:{i:x}", ts=T0 + timedelta(milliseconds=i * 2), host="mx1",
            client_ip=f"10.{(user >> 8) % 80}.{user % 256}.{user % 7}",
            sasl_username=f"user{user}", sender=f"user{user}@d{user % 5_000}.example",
            recipients=["r@gmail.example"], direction="outbound", accepted=True,
            spam=rng.random() < 0.02, source="log"))
    return events


def run_engine(engine: ThresholdEngine, events: list[MailEvent]) -> float:
    store: dict[str, bytes] = {}
    start = time.perf_counter()
    for event in events:
        for subject in engine.subjects(event):
            raw = store.get(subject.key)
            state = decode_state(raw) if raw is not None else SubjectState()
            engine.observe(subject, state, event)
            store[subject.key] = encode_state(state)
    return time.perf_counter() - start


def run_baseline(events: list[MailEvent]) -> float:
    counts: dict[str, int] = {}
    start = time.perf_counter()
    for event in events:
        for key in (f"u:{event.sasl_username}", f"s:{event.sender}", f"i:{event.client_ip}",
                    f"d:{event.sender_domain}"):
            counts[key] = counts.get(key, 0) + 1
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    events = make_events(args.events)
    engine = ThresholdEngine(make_config())
    engine_s, baseline_s = [], []
    for _ in range(args.rounds):
        baseline_s.append(run_baseline(events))
        engine_s.append(run_engine(engine, events))
    engine_rate = args.events / statistics.median(engine_s)
    baseline_rate = args.events / statistics.median(baseline_s)
    print(f"events: {args.events}, rounds: {args.rounds}, key dimensions: 4")
    print(f"engine   (decode+observe+encode): {engine_rate:12,.0f} events/s (median)")
    print(f"baseline (dict increment):        {baseline_rate:12,.0f} events/s (median)")
    print(f"engine / baseline: {engine_rate / baseline_rate:.3f}")


if __name__ == "__main__":
    main()
