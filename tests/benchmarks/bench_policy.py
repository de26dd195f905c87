"""Policy responder throughput and latency against postfwd, on the same load in the same run.

Run: python -m tests.benchmarks.bench_policy [--seconds S] [--rounds R] [--rate N]

Starts a Kafka-compatible broker (Tansu), ``floodgate policy-server`` with
100 active actions among 10,000 accounts (read from the action topic, every
request published as a PolicyEvent: the production path), and Debian's
postfwd with an equivalent rate limit (60 mails per 30 s per SASL account).
A load generator in its own process (the machine has 2 cores: one for the
server under test, one for the load; a plain event loop over pre-made
requests, so the load is not the bottleneck) drives each in turn over
persistent connections, like smtpd processes:

* closed loop: 8 connections sending back to back: requests/s;
* open loop: ``--rate`` requests/s spread over 20 connections, latency from
  the scheduled send time (so a server that falls behind is charged for it):
  p50, p99, p99.9, and how late the generator itself sent (p99: what of the
  latency is the machine's and the generator's, not the server's; for a server
  that falls behind it includes waiting for the connection's last answer).

A third server, the trivial one (``trivial_policy_server``: DUNNO to everything, no
parsing, no Kafka), runs under the same load: the most any Python policy server on this
machine can do, so Floodgate's figures read as a share of it.

Medians over rounds; the servers alternate within each round.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import random
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Producer

from connectors.kafka.client_config import producer_config
from connectors.kafka.embedded_broker import EmbeddedBroker, free_port
from connectors.kafka.topics import TopicSpec, ensure_topics
from schemas.config import KafkaSettings
from schemas.events import ActionEvent
from tests.fixtures.http_probe import wait_ready
from tests.fixtures.processes import wait_listening

REPO = Path(__file__).resolve().parents[2]
USERS = 10_000


def request(rng: random.Random) -> bytes:
    user = rng.randrange(USERS)
    return (f"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
            f"client_address=10.{user % 200}.{user % 250}.1\nclient_name=c{user}.example.org\n"
            f"helo_name=c{user}\nsasl_method=PLAIN\nsasl_username=user{user}\n"
            f"sender=user{user}@example.net\nrecipient=r{rng.randrange(10**6)}@gmail.example\n"
            f"recipient_count=0\nqueue_id=\ninstance={rng.randrange(16**8):x}.1\nsize=1200\n\n"
            ).encode()


SPIN_S = 0.0001  # the generator spins this close to a send instead of sleeping
REQUEST_POOL = 4_096  # requests are made before the clock starts: the load costs no formatting


def request_pool(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [request(rng) for _ in range(REQUEST_POOL)]


class _Connection:
    """One persistent policy connection driven by the epoll loop, like one smtpd process."""

    def __init__(self, port: int, pool: list[bytes]) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.pool, self.next_request = pool, 0
        self.buffer = b""
        self.sent_at = 0.0  # when the request in flight was due (open loop) or sent

    def send(self, due: float) -> float:
        """Send the next request due at ``due``; how late it left (the generator's own delay)."""
        self.sent_at = due
        self.sock.send(self.pool[self.next_request % len(self.pool)])
        self.next_request += 1
        return time.perf_counter() - due

    def answered(self) -> bool:
        """Read what arrived; True when a whole reply (ending in an empty line) is in."""
        self.buffer += self.sock.recv(65536)
        if not self.buffer.endswith(b"\n\n"):
            return False
        self.buffer = b""
        return True


def _closed_loop(port: int, connections: int, seconds: float) -> int:
    """Requests answered in ``seconds`` with each connection sending its next at once."""
    epoll = select.epoll()
    conns = {}
    for index in range(connections):
        conn = _Connection(port, request_pool(index))
        conns[conn.sock.fileno()] = conn
        epoll.register(conn.sock.fileno(), select.EPOLLIN)
    answered = 0
    deadline = time.perf_counter() + seconds
    for conn in conns.values():
        conn.send(time.perf_counter())
    while time.perf_counter() < deadline:
        for fd, _ in epoll.poll(0.1):
            conn = conns[fd]
            if conn.answered():
                answered += 1
                conn.send(0.0)
    for conn in conns.values():
        conn.sock.close()
    return answered


def _open_loop(port: int, connections: int, rate: float,
               seconds: float) -> tuple[list[float], list[float]]:
    """Latency of each request from its scheduled time (a late server is charged for it), and
    how late the generator itself sent each one.

    ``select`` waits to the microsecond (``epoll`` rounds its timeout up to a whole
    millisecond: every request sent up to 1 ms late, charged to the server); the last
    ``SPIN_S`` before a send is spun, since a wait overshoots by the kernel's timer slack."""
    conns: dict[int, _Connection] = {}
    interval = connections / rate
    for index in range(connections):
        conn = _Connection(port, request_pool(1000 + index))
        conns[conn.sock.fileno()] = conn
    # The schedule starts once every connection and request is ready.
    start = time.perf_counter() + 0.05
    due = {fd: start + index * interval / connections  # connection -> its next request's time
           for index, fd in enumerate(conns)}
    busy: set[int] = set()
    waiting = list(conns)
    latencies: list[float] = []
    late: list[float] = []
    end = start + seconds
    while due or busy:
        now = time.perf_counter()
        for fd in [fd for fd, when in due.items() if when <= now and fd not in busy]:
            late.append(conns[fd].send(due[fd]))
            busy.add(fd)
        waits = [when - now for fd, when in due.items() if fd not in busy]
        timeout = max(0.0, min(waits) - SPIN_S) if waits else 0.1
        readable, _, _ = select.select(waiting, [], [], timeout)
        for fd in readable:
            conn = conns[fd]
            if conn.answered():
                finished = time.perf_counter()
                latencies.append(finished - conn.sent_at)
                busy.discard(fd)
                following = conn.sent_at + interval
                if following < end:
                    due[fd] = following
                else:
                    del due[fd]
    for conn in conns.values():
        conn.sock.close()
    return latencies, late


def _load(kind: str, port: int, seconds: float, rate: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    if kind == "closed":
        out.put(_closed_loop(port, 8, seconds) / seconds)
    else:
        out.put(_open_loop(port, 20, rate, seconds))


def run_load(kind: str, port: int, seconds: float, rate: float) -> object:
    context = multiprocessing.get_context("spawn")  # a fresh interpreter, no inherited state
    queue = context.Queue()
    process = context.Process(target=_load, args=(kind, port, seconds, rate, queue))
    process.start()
    result = queue.get(timeout=seconds + 120)
    process.join(30)
    return result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def preload_actions(settings: KafkaSettings, topic: str) -> None:
    producer = Producer(producer_config(settings))
    now = datetime.now(UTC)
    for n in range(0, USERS, USERS // 100):
        action = ActionEvent(action_id=f"bench-{n}", ts=now, subject_type="sasl_username",
                             subject=f"user{n}", action="defer" if n % 3 else "block",
                             threshold="bench", state="active", origin="auto", triggered_at=now,
                             expires_at=now + timedelta(hours=2))
        producer.produce(topic, value=action.model_dump_json().encode(), key=action.key.encode())
    assert producer.flush(30) == 0


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=5000.0)
    args = parser.parse_args()
    if shutil.which("postfwd") is None:
        raise SystemExit("postfwd is not installed (apt-get install postfwd)")
    work = Path(tempfile.mkdtemp(prefix="floodgate-bench-"))
    work.chmod(0o755)
    broker = EmbeddedBroker(work / "tansu.log")
    broker.start()
    processes: list[subprocess.Popen[bytes]] = []
    groups: list[int] = []  # process groups to stop besides the processes' own
    try:
        settings = KafkaSettings(bootstrap_servers=broker.bootstrap)
        ensure_topics(settings, [TopicSpec("floodgate.actions", 3),
                                 TopicSpec("floodgate.policy-events", 3)])
        preload_actions(settings, "floodgate.actions")
        ours, health = free_port(), free_port()
        (work / "floodgate.yaml").write_text(
            f"kafka: {{bootstrap_servers: '{broker.bootstrap}'}}\n"
            f"policy: {{listen: '127.0.0.1:{ours}', health_listen: '127.0.0.1:{health}', "
            f"state_dir: '{work / 'policy-state'}'}}\n")
        log = open(work / "policy.log", "wb")  # noqa: SIM115
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "policy-server", "--config",
             str(work / "floodgate.yaml")], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True))
        wait_ready(health, 120, processes)
        theirs = free_port()
        (work / "postfwd.cf").write_text(
            "id=RATE; sasl_username=~.; action=rate(sasl_username/60/30/450 4.7.1 too much mail)\n"
            "id=DEFAULT; action=DUNNO\n")
        processes.append(subprocess.Popen(
            ["postfwd", "-f", str(work / "postfwd.cf"), "-i", "127.0.0.1", "-p", str(theirs),
             "--cache_port", str(free_port()), "-u", "nobody", "-g", "nogroup", "-n",
             "--noidlestats", "--pidfile", str(work / "postfwd.pid")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        wait_listening(theirs)
        # postfwd detaches into a session of its own: its pidfile leads to the group to stop.
        groups.append(os.getpgid(int((work / "postfwd.pid").read_text().split()[0])))
        trivial = free_port()
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "tests.benchmarks.trivial_policy_server", str(trivial)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True))
        wait_listening(trivial)
        servers = (("floodgate", ours), ("postfwd", theirs), ("trivial", trivial))
        results: dict[str, dict[str, list[float]]] = {
            name: {"rps": [], "p50": [], "p99": [], "p999": [], "late99": []} for name, _ in servers}
        for _ in range(args.rounds):
            for name, port in servers:
                results[name]["rps"].append(float(run_load("closed", port, args.seconds, args.rate)))  # type: ignore[arg-type]
                latencies, late = run_load("open", port, args.seconds, args.rate)  # type: ignore[misc]
                results[name]["p50"].append(percentile(latencies, 0.50) * 1000)
                results[name]["p99"].append(percentile(latencies, 0.99) * 1000)
                results[name]["p999"].append(percentile(latencies, 0.999) * 1000)
                results[name]["late99"].append(percentile(late, 0.99) * 1000)
        print(f"rounds: {args.rounds} x {args.seconds:.0f} s; closed loop 8 connections; "
              f"open loop {args.rate:.0f} req/s over 20 connections; medians")
        print(f"{'server':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} "
              f"{'sent late p99 ms':>17}")
        for name, figures in results.items():
            print(f"{name:<10} {statistics.median(figures['rps']):9,.0f} "
                  f"{statistics.median(figures['p50']):8.2f} {statistics.median(figures['p99']):8.2f} "
                  f"{statistics.median(figures['p999']):9.2f} "
                  f"{statistics.median(figures['late99']):17.3f}")
        print("p99 of each round (ms): " + "; ".join(
            f"{name} " + ", ".join(f"{v:.2f}" for v in figures["p99"])
            for name, figures in results.items()))
        rps = {name: statistics.median(figures["rps"]) for name, figures in results.items()}
        print(f"throughput floodgate / postfwd: {rps['floodgate'] / rps['postfwd']:.2f}; "
              f"floodgate / trivial DUNNO server: {rps['floodgate'] / rps['trivial']:.2f}")
    finally:
        groups += [p.pid for p in processes]  # each started in its own session
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for group in groups:
            while time.monotonic() < deadline and _group_alive(group):
                time.sleep(0.1)
            if _group_alive(group):
                os.killpg(group, signal.SIGKILL)
        for process in processes:
            process.wait(10)
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
