"""``floodgate up --config CONFIG``: everything one mail host needs, as one process tree.

Starts the embedded broker when ``kafka.bootstrap_servers`` is not set, creates
the topics, then runs the worker, the policy service, the console (unless
``console.listen`` is null), the log tailer (with
``--log``) and the demo traffic (with ``--demo``) as supervised children:
restarted when they die, all stopped by PID on Ctrl-C or SIGTERM. A status
line shows events/s and the actions in force.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from confluent_kafka import Consumer, KafkaException, TopicPartition

from connectors.http.server import split_listen
from connectors.kafka.client_config import consumer_config
from connectors.kafka.embedded_broker import EmbeddedBroker, EmbeddedBrokerError
from connectors.kafka.topics import prepare_topics
from connectors.postfix_policy.action_feed import ActionFeed
from connectors.process_supervisor import FAILURE_WINDOW_S, Child, Supervisor
from pipeline.cli.check_config import load_or_report
from pipeline.cli.config_reload import reread
from pipeline.cli.kafka_preflight import kafka_preflight
from pipeline.cli.policy_server_cmd import reset_policy_state_if_moved
from pipeline.cli.worker_cmd import claim_worker_state
from pipeline.engine.enforcement import ActiveActions
from schemas.config import FloodgateConfig, KafkaSettings
from schemas.events import ActionEvent
from schemas.time_ms import wall_ms

STATUS_EVERY_S = 2.0
ERROR_WORDS = re.compile(r"error|exception|traceback|fatal|failed|cannot|refused|denied|"
                         r"not found|no such|invalid", re.IGNORECASE)


def register(sub: Any) -> None:
    parser = sub.add_parser("up", help="run a whole single-host Floodgate: broker (embedded when "
                                       "none is configured), worker, policy service, log tailer")
    parser.add_argument("--config", required=True)
    parser.add_argument("--log", metavar="FILE",
                        help="the mail log to follow (e.g. /var/log/mail.log); none: no tailer")
    parser.add_argument("--demo", action="store_true",
                        help="also publish made-up mail (floodgate demo-traffic) to see actions fire")
    parser.add_argument("--state-dir", default="floodgate-up", type=Path,
                        help="children's logs, the embedded broker's log and the tail checkpoint "
                             "(default ./floodgate-up)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 1
    loaded = config  # as the file says (``config`` may get the embedded broker's address)
    if args.log and not Path(args.log).exists():
        print(f"--log {args.log}: no such file", file=sys.stderr)
        return 1
    taken = ports_taken(config, with_tail=bool(args.log))
    if taken:
        for problem in taken:
            print(problem, file=sys.stderr)
        print("nothing was started", file=sys.stderr)
        return 1
    state: Path = args.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    broker = None
    env: dict[str, str] = {}
    if not config.kafka.bootstrap_servers:
        broker = EmbeddedBroker(state / "broker.log")
        try:
            broker.start()
        except EmbeddedBrokerError as exc:
            print(f"cannot start the embedded broker: {exc}", file=sys.stderr)
            return 1
        env["FLOODGATE_KAFKA__BOOTSTRAP_SERVERS"] = broker.bootstrap
        config = config.model_copy(update={"kafka": config.kafka.model_copy(
            update={"bootstrap_servers": broker.bootstrap})})
        # the address ends its word: a copied "HOST:PORT:" would not resolve
        print(f"embedded broker (Tansu) on {broker.bootstrap} (in memory only: everything on "
              "it is lost when `up` stops; set kafka.bootstrap_servers to use a Kafka cluster)")
    supervisor = Supervisor(_children(args, config, state, env))
    code = 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: _reload(args.config, loaded, supervisor))
    try:
        with kafka_preflight(config.kafka):
            for topic in prepare_topics(config):
                print(topic.line, file=sys.stderr)
            said = [claim_worker_state(config), reset_policy_state_if_moved(config)]
        for line in filter(None, said):
            print(line)
        supervisor.start()
        _announce(config, supervisor, state)
        _watch(config, supervisor, stop, sys.stdout)
        if supervisor.given_up:
            code = 1
    finally:
        print("\nstopping ...", flush=True)
        supervisor.stop()
        if broker is not None:
            broker.stop()
        print("stopped: no process left", flush=True)
    return code


def ports_taken(config: FloodgateConfig, with_tail: bool) -> list[str]:
    """A line for each address a child would listen on that is taken, or asked for twice."""
    wanted = [("policy.listen", config.policy.listen),
              ("policy.health_listen", config.policy.health_listen),
              ("worker.health_listen", config.worker.health_listen),
              ("console.listen", config.console.listen)]
    if with_tail:
        wanted.append(("tail.health_listen", config.tail.health_listen))
    problems: list[str] = []
    seen: dict[str, str] = {}
    for setting, listen in wanted:
        if not listen:
            continue
        if listen in seen:
            problems.append(f"{setting} and {seen[listen]} are both {listen}: give each its own")
            continue
        seen[listen] = setting
        host, port = split_listen(listen)
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            try:
                probe.bind((host, port))
            except OSError as exc:
                problems.append(f"{setting} {listen}: {exc.strerror} (another process listens "
                                "there? stop it or change the setting)")
    return problems


def _reload(path: str, running: FloodgateConfig, supervisor: Supervisor) -> None:
    """SIGHUP: a config that passes ``check-config`` goes on to every process that reloads
    (each re-reads and checks it itself too)."""
    if reread(path, running, logging.getLogger("floodgate.up")) is None:
        print(f"config reload refused: {path} has problems (above); nothing changed",
              flush=True)
        return
    print(f"config reload: SIGHUP passed to {', '.join(supervisor.reload())}", flush=True)


def _children(args: argparse.Namespace, config: FloodgateConfig, state: Path,
              env: dict[str, str]) -> list[Child]:
    floodgate = [sys.executable, "-m", "pipeline.cli"]
    children = [
        Child("worker", [*floodgate, "worker", "--config", args.config], state / "worker.log", env,
              reloads=True),
        Child("policy-server", [*floodgate, "policy-server", "--config", args.config],
              state / "policy-server.log", env, reloads=True),
    ]
    if config.console.listen:
        children.append(Child("console", [*floodgate, "console", "--config", args.config],
                              state / "console.log", env, reloads=True))
    if args.log:
        children.append(Child("tail", [*floodgate, "tail", args.log, "--config", args.config,
                                       "--checkpoint", str(state / "tail.pos")],
                              state / "tail.log", env, reloads=True))
    if args.demo:
        children.append(Child("demo-traffic", [*floodgate, "demo-traffic", "--config", args.config,
                                               "--ask", config.policy.listen],
                              state / "demo-traffic.log", env, restart=False))
    return children


def _announce(config: FloodgateConfig, supervisor: Supervisor, state: Path) -> None:
    print(f"policy service: inet:{config.policy.listen} "
          f"(health http://{config.policy.health_listen}/readyz)")
    if config.console.listen:
        print(f"console: http://{config.console.listen}/")
    print(f"worker: consumer group {config.worker.app_id}, state in {config.worker.data_dir}")
    for child in supervisor.children:
        print(f"  {child.name:<14} pid {child.pid}, log {child.log}")
    print(f"logs in {state}; Ctrl-C stops everything", flush=True)


def _watch(config: FloodgateConfig, supervisor: Supervisor, stop: threading.Event,
           out: TextIO) -> None:
    view, lock = ActiveActions(), threading.Lock()

    def deliver(event: ActionEvent | None, partition: int, offset: int) -> None:
        if event is not None:
            with lock:
                view.apply(event)

    feed = ActionFeed(config.kafka, config.topics.actions, deliver)
    feed.start()
    rate = _EventRate(config.kafka, config.topics.mail_events)
    tty = out.isatty()
    last_line = 0.0
    try:
        while not stop.wait(STATUS_EVERY_S):
            for event in supervisor.check():
                out.write(("\n" if tty else "") + f"{event}\n")
            if supervisor.given_up:
                out.write(f"giving up: {', '.join(c.name for c in supervisor.given_up)} "
                          "keeps failing\n")
                return
            now_ms = wall_ms()
            with lock:
                view.expire(now_ms)
                kinds = view.census()
            active = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())) or "none"
            line = (f"{time.strftime('%H:%M:%S')} {rate.per_second():,.0f} events/s; "
                    f"{sum(kinds.values())} actions in force ({active})")
            for child in supervisor.restarting():  # never a healthy-looking line over a failure
                line += f"; {restarting_text(child)}"
            if tty:
                out.write(f"\r{line:<100}")
            elif time.monotonic() - last_line >= 10:
                out.write(line + "\n")
                last_line = time.monotonic()
            out.flush()
    finally:
        feed.stop()
        rate.close()


def restarting_text(child: Child) -> str:
    """``worker restarting after killed by SIGKILL (1x in 10 min)``, with its last words
    when they say what went wrong (a killed process's last line is whatever it was doing)."""
    said = child.last_error if ERROR_WORDS.search(child.last_error) else ""
    return (f"{child.name} {'restarting' if child.process is None else 'restarted'} after "
            f"{child.last_exit} ({len(child.failures)}x in {FAILURE_WINDOW_S / 60:.0f} min)"
            + (f": {said[:80]}" if said else ""))


class _EventRate:
    """Mail events per second, from the topic's end offsets."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self._consumer = Consumer(consumer_config(settings, f"{settings.client_id}-up-status"))
        self._topic = topic
        self._last: tuple[float, int] | None = None

    def per_second(self) -> float:
        try:
            metadata = self._consumer.list_topics(self._topic, timeout=5)
            total = sum(self._consumer.get_watermark_offsets(TopicPartition(self._topic, p),
                                                             timeout=5)[1]
                        for p in metadata.topics[self._topic].partitions)
        except KafkaException:
            return 0.0
        now = time.monotonic()
        last, self._last = self._last, (now, total)
        if last is None or now <= last[0]:
            return 0.0
        return (total - last[1]) / (now - last[0])

    def close(self) -> None:
        self._consumer.close()
