"""Log connector throughput: lines/s of envelope parsing + Postfix parsing + correlation.

Run: python -m tests.benchmarks.bench_log_parser [--lines N] [--rounds R] [--no-pflogsumm]

Generates a realistic interleaved Postfix log (SASL submissions, cleanup,
qmgr, deliveries with some deferrals, bounces, NOQUEUE rejects, TLS and
connect noise; 40 sessions open at once) and reads it through the same
LogReader ``floodgate parse`` uses, streaming. The baseline, timed in the same
round on the same lines, is the cheapest possible pass: ``str.split`` of each
line. Prints medians, the ratio, peak RSS, and RSS after each quarter of the
input (flat = memory does not grow with log length).

Against pflogsumm (Debian's ``pflogsumm``, when installed): the same lines written to a
file, then ``floodgate parse FILE`` (the whole command, its JSON lines to /dev/null) and
``pflogsumm FILE`` timed in alternating pairs, each the wall time of the process: the
median of each, and pflogsumm's time over Floodgate's (1 or more: Floodgate is as fast).
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from connectors.postfix_log.reader import LogReader
from schemas.config import Networks
from schemas.direction import DirectionRules


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


_STAMP = re.compile(r"^Nov [ \d]\d \d\d:\d\d:\d\d")


def _stamp(second: int) -> str:
    day = 27 + second // 86400 % 2
    return f"Nov {day:2d} {second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}"


def generate(lines: int, seed: int = 3) -> Iterator[str]:
    """About ``lines`` log lines; each message takes ~9 lines."""
    rng = random.Random(seed)
    produced = 0
    n = 0
    open_sessions: list[list[str]] = []
    second = 0
    while produced < lines:
        if len(open_sessions) < 40:
            n += 1
            qid = f"{0x10000000 + n:X}"
            user = f"user{int(rng.paretovariate(1.1)) % 50_000}"
            stamp = f"Nov {27 + second // 86400 % 2:2d} {second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
            ip = f"10.{n % 200}.{n % 250}.{n % 7 + 1}"
            script = [
                f"{stamp} mx1 postfix/submission/smtpd[{n % 3000}]: connect from c{n}.example.org[{ip}]",
                f"{stamp} mx1 postfix/submission/smtpd[{n % 3000}]: Anonymous TLS connection established from c{n}.example.org[{ip}]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
                f"{stamp} mx1 postfix/submission/smtpd[{n % 3000}]: {qid}: client=c{n}.example.org[{ip}], sasl_method=PLAIN, sasl_username={user}@example.net",
                f"{stamp} mx1 postfix/cleanup[{n % 500}]: {qid}: message-id=<{n}.{user}@example.net>",
                f"{stamp} mx1 postfix/qmgr[99]: {qid}: from=<{user}@example.net>, size={rng.randint(800, 90000)}, nrcpt=2 (queue active)",
                f"{stamp} mx1 postfix/submission/smtpd[{n % 3000}]: disconnect from c{n}.example.org[{ip}] ehlo=2 starttls=1 auth=1 mail=1 rcpt=2 data=1 quit=1 commands=9",
                f"{stamp} mx1 postfix/smtp[{n % 700}]: {qid}: to=<r{n}@gmail.example>, relay=gmail-smtp-in.l.google.example[192.0.2.26]:25, delay=0.55, delays=0.02/0.06/0.16/0.31, dsn=2.0.0, status=sent (250 2.0.0 OK  1607509104 z6si1138927wrp.107 - gsmtp)",
                f"{stamp} mx1 postfix/smtp[{n % 700}]: {qid}: to=<s{n}@outlook.example>, relay=mx.outlook.example[192.0.2.27]:25, delay=1.2, delays=0.02/0.06/0.16/1, dsn={'4.7.0' if n % 10 == 0 else '2.0.0'}, status={'deferred' if n % 10 == 0 else 'sent'} (250 2.0.0 OK)",
                f"{stamp} mx1 postfix/qmgr[99]: {qid}: removed",
            ]
            if n % 25 == 0:
                script.insert(1, f"{stamp} mx1 postfix/smtpd[{n % 3000}]: NOQUEUE: reject: RCPT from unknown[203.0.113.{n % 250}]: 554 5.7.1 <x{n}@elsewhere.example>: Relay access denied; from=<spam{n}@spam.example> to=<x{n}@elsewhere.example> proto=ESMTP helo=<bot>")
            open_sessions.append(script)
            second += rng.choice((0, 0, 0, 1))
        session = open_sessions[rng.randrange(len(open_sessions))]
        # Logs are written in time order: each line carries the time it is written.
        yield _STAMP.sub(_stamp(second), session.pop(0), count=1)
        produced += 1
        if not session:
            open_sessions.remove(session)


def run_reader(lines: list[str], checkpoints: list[float]) -> float:
    reader = LogReader(DirectionRules(Networks(internal=["10.0.0.0/8"], local_domains=["example.net"])),
                       UTC, datetime(2026, 11, 28, tzinfo=UTC))
    start = time.perf_counter()
    for _ in reader.read(lines):
        pass
    elapsed = time.perf_counter() - start
    reader.finish()
    checkpoints.append(_rss_mib())
    return elapsed


def run_baseline(lines: list[str]) -> float:
    start = time.perf_counter()
    for line in lines:
        line.split(" ", 5)
    return time.perf_counter() - start


def memory_profile(total: int) -> list[tuple[int, float, int]]:
    """(lines read, RSS MiB, open messages) after each quarter, streaming from the generator."""
    reader = LogReader(DirectionRules(Networks(internal=["10.0.0.0/8"], local_domains=["example.net"])),
                       UTC, datetime(2026, 11, 28, tzinfo=UTC))
    points = []
    quarter = total // 4
    for count, line in enumerate(generate(total), 1):
        for _ in reader.read((line,)):
            pass
        if count % quarter == 0:
            points.append((count, _rss_mib(), reader.tracker.open_messages))
    return points


def wall_s(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def against_pflogsumm(lines: list[str], rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-parse-") as work:
        log = f"{work}/mail.log"
        with open(log, "w") as out:
            out.write("\n".join(lines) + "\n")
        ours_s, theirs_s = [], []
        for _ in range(rounds):  # alternating pairs: the machine's noise falls on both
            ours_s.append(wall_s([sys.executable, "-m", "pipeline.cli", "parse", log]))
            theirs_s.append(wall_s(["pflogsumm", log]))
    ours, theirs = statistics.median(ours_s), statistics.median(theirs_s)
    print(f"floodgate parse: {ours:.1f} s, pflogsumm: {theirs:.1f} s (wall, medians of "
          f"{rounds} alternating pairs); pflogsumm / floodgate: {theirs / ours:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-pflogsumm", action="store_true", help="skip the comparison")
    args = parser.parse_args()
    profile = memory_profile(args.lines)
    lines = list(generate(args.lines))
    reader_s, baseline_s, rss = [], [], []
    for _ in range(args.rounds):
        baseline_s.append(run_baseline(lines))
        reader_s.append(run_reader(lines, rss))
    rate = len(lines) / statistics.median(reader_s)
    base = len(lines) / statistics.median(baseline_s)
    print(f"lines: {len(lines):,}, rounds: {args.rounds}")
    print(f"parse+correlate: {rate:12,.0f} lines/s (median)")
    print(f"baseline split:  {base:12,.0f} lines/s (median)")
    print(f"parse / baseline: {rate / base:.3f}")
    print("streaming memory (lines read, RSS MiB, open messages):")
    for count, mib, open_messages in profile:
        print(f"  {count:>10,}  {mib:8.1f}  {open_messages:6}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MiB (includes the {len(lines):,} lines held in memory "
          "for the timed rounds)")
    if not args.no_pflogsumm:
        if shutil.which("pflogsumm") is None:
            print("pflogsumm is not installed (apt-get install pflogsumm): no comparison")
        else:
            against_pflogsumm(lines, args.rounds)


if __name__ == "__main__":
    main()
