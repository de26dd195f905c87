"""Baseline thresholds: what each account's learnt normal costs in the store, and in speed.

Run: python -m tests.benchmarks.bench_baseline [--subjects N] [--events E] [--rounds R]

1. Memory: N accounts (default 1,000,000), each with a learnt baseline (two weeks of
   history in event time), swept idle as a running worker sweeps them: the bytes of each
   subject's stored value (key apart), and the size of a RocksDB holding all N with the
   worker's options (keys included, after a compaction), per subject.
2. Speed: E units (default 300,000) of Zipf traffic over 100,000 accounts, counted by the
   engine with a fixed "60 in 1 hour" threshold, then with the same threshold learning
   each account's normal; alternated R times; the ratio of the medians (same run, same
   machine: the noise of a shared machine cancels out).
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

import rocksdict

from pipeline.engine.counting import CountedMail
from pipeline.engine.evaluator import Pruned, Subject, ThresholdEngine
from pipeline.engine.subject_state import SubjectState
from pipeline.streaming.state import stored_state
from pipeline.streaming.state.store_options import StoreOptions
from schemas.time_ms import to_ms
from schemas.vocabulary import SubjectType
from tests.benchmarks.bench_worker import directory_bytes
from tests.pipeline.engine.builders import T0, config, threshold

HOUR_MS = 3_600_000
FIXED = {"name": "unusual", "window": "1h", "messages": 60, "action": "defer"}
BASELINE = {"factor": 10, "min_messages": 20, "learn": "14d"}


def _engine(with_baseline: bool) -> ThresholdEngine:
    return ThresholdEngine(config(threshold(**FIXED, baseline=BASELINE if with_baseline
                                            else None)))


def _unit(ts_ms: int) -> CountedMail:
    return CountedMail(ts_ms, 0, 1, "outbound", "example.net")


def memory(subjects: int) -> None:
    engine = _engine(True)
    start = to_ms(T0)
    swept_at = start + 15 * 24 * HOUR_MS + 2 * HOUR_MS
    values: list[int] = []
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "store"
        db = rocksdict.Rdict(str(path), StoreOptions.sized(4, 16).to_rocksdict())
        began = time.perf_counter()
        for n in range(subjects):
            subject = Subject(SubjectType.SASL_USERNAME, f"user{n}@customer{n % 5000}.example")
            state = SubjectState()
            for hour in (0, 7 * 24, 15 * 24):  # first, middle and last of two weeks' history
                engine.apply(subject, state, _unit(start + hour * HOUR_MS + n % 1000))
            assert engine.prune(state, swept_at) is Pruned.CHANGED
            value = stored_state.pack(stored_state.StoredState(state, stored_state.empty().recent))
            values.append(len(value))
            db[subject.key.encode()] = value
        db.flush()
        db.compact_range(None, None)
        db.close()
        size = directory_bytes(path)
        seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{subjects:,} accounts with a learnt baseline, swept idle ({seconds:.0f} s):")
    print(f"  stored value per subject: {statistics.mean(values):.0f} bytes "
          f"(min {min(values)}, max {max(values)}; the limit is 64)")
    print(f"  RocksDB with keys, compacted: {size / 2**20:.1f} MiB, "
          f"{size / subjects:.0f} bytes per subject")
    print(f"  this process's peak RSS: {peak:.0f} MiB")


def _traffic(events: int, seed: int = 7) -> list[tuple[Subject, CountedMail]]:
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(100_000)]
    users = rng.choices(range(100_000), weights, k=events)
    start = to_ms(T0)
    span = 20 * 24 * HOUR_MS  # 20 days: accounts learn, then are judged by what they learnt
    times = sorted(rng.randrange(span) for _ in range(events))
    return [(Subject(SubjectType.SASL_USERNAME, f"user{u}"), _unit(start + t))
            for u, t in zip(users, times, strict=True)]


def _run(engine: ThresholdEngine, traffic: list[tuple[Subject, CountedMail]]) -> float:
    states: dict[Subject, SubjectState] = {}
    began = time.perf_counter()
    for subject, unit in traffic:
        state = states.get(subject)
        if state is None:
            state = states[subject] = SubjectState()
        engine.apply(subject, state, unit)
    return len(traffic) / (time.perf_counter() - began)


def speed(events: int, rounds: int) -> None:
    traffic = _traffic(events)
    fixed, learning = _engine(False), _engine(True)
    without, with_ = [], []
    for _ in range(rounds):
        without.append(_run(fixed, traffic))
        with_.append(_run(learning, traffic))
    base, new = statistics.median(without), statistics.median(with_)
    print(f"engine, {events:,} units over 100,000 accounts (medians of {rounds}):")
    print(f"  fixed threshold: {base:,.0f} units/s; learning each account's normal: "
          f"{new:,.0f} units/s; ratio {new / base:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["memory", "speed"])
    args = parser.parse_args()
    if args.only in (None, "speed"):
        speed(args.events, args.rounds)
    if args.only in (None, "memory"):
        memory(args.subjects)


if __name__ == "__main__":
    main()
