"""``floodgate tail FILE --config CONFIG``: follow a live mail log and publish to Kafka."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from connectors.http.observability import HealthListenError, ObservabilityServer
from connectors.kafka.client_config import producer_config
from connectors.kafka.errors import KafkaNotConfigured, KafkaUnreachable
from connectors.kafka.reachability import require_kafka
from connectors.postfix_log.follow import FileFollower, StartAt
from connectors.postfix_log.metrics import tail_registry
from connectors.postfix_log.reader import LogReader
from connectors.postfix_log.tail import CheckpointError, Restarted, Tailer, load_checkpoint
from pipeline.cli.check_config import load_or_report
from pipeline.cli.config_reload import Reloader
from pipeline.cli.parse_cmd import add_log_options, zone_or_report
from schemas.config import FloodgateConfig


def register(sub: Any) -> None:
    parser = sub.add_parser("tail", help="follow a live mail log and publish its events to Kafka")
    parser.add_argument("file", metavar="FILE", help="the live log, e.g. /var/log/mail.log")
    parser.add_argument("--config", required=True)
    parser.add_argument("--checkpoint",
                        help="file that keeps the read position across restarts (default: "
                             "floodgate-tail.<log name>.pos in the working directory)")
    add_log_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_or_report(args.config)
    zone = zone_or_report(args.timezone)
    if config is None or zone is None:
        return 1
    checkpoint = Path(args.checkpoint or f"floodgate-tail.{Path(args.file).name}.pos").resolve()
    stop = threading.Event()
    tailers: list[Tailer] = []

    def reconfigure(new: FloodgateConfig) -> None:
        for tailer in tailers:
            tailer.reconfigure(new)

    reloader = Reloader(args.config, config, reconfigure, logging.getLogger("floodgate.tail"))

    def starting_at(start: StartAt | None) -> Restarted:
        """A reader, a follower and a producer that start at ``start``."""
        producer = Producer(producer_config(config.kafka, **{"message.timeout.ms": 0}))
        reader = LogReader.for_config(reloader.config, zone, None, args.host)
        return reader, FileFollower(args.file, start, stop), producer

    def from_checkpoint() -> Restarted:
        return starting_at(load_checkpoint(checkpoint))

    try:
        start = load_checkpoint(checkpoint)
        reader, follower, producer = starting_at(start)
        require_kafka(config.kafka)
    except (CheckpointError, KafkaNotConfigured) as exc:
        print(exc, file=sys.stderr)
        return 1
    except KafkaUnreachable as exc:  # a mail host keeps its log: read on, publish when it is back
        logging.getLogger("floodgate.tail").warning("%s; following the log anyway, its events "
                                                    "wait until Kafka answers", exc)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    tailer = Tailer(reader, follower, producer, config.topics, checkpoint, stop, from_checkpoint)
    tailers.append(tailer)
    reloader.on_sighup()
    health = None
    if config.tail.health_listen:
        try:
            health = ObservabilityServer(config.tail.health_listen, lambda: not stop.is_set(),
                                         tail_registry(tailer)).start()
        except HealthListenError as exc:
            print(f"{exc} (tail.health_listen)", file=sys.stderr)
            return 1
    logging.getLogger("floodgate.tail").info(
        "following %s from %s; checkpoint %s", args.file,
        f"inode {start.inode} offset {start.offset}" if start else "its start", checkpoint)
    try:
        tailer.run()
    finally:
        if health is not None:
            health.close()
    stats = tailer.stats
    logging.getLogger("floodgate.tail").info(
        "stopped: %d lines, %d records published, %d refused by Kafka, %d not understood",
        stats.lines, tailer.published, tailer.failed, stats.unparsed)
    return 0 if tailer.failed == 0 else 1
