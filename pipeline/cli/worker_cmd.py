"""``floodgate worker --config CONFIG``: the streaming worker (run several for more partitions)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from connectors.kafka.client_logs import RepeatThrottle, throttle_handlers
from connectors.kafka.identity import read_identity, reset_if_moved
from connectors.kafka.topics import changelog_topic, prepare_topics
from pipeline.cli.check_config import load_or_report
from pipeline.cli.config_reload import Reloader
from pipeline.cli.kafka_preflight import kafka_preflight
from schemas.config import FloodgateConfig


def register(sub: Any) -> None:
    parser = sub.add_parser("worker", help="count mail events per subject and publish actions")
    parser.add_argument("--config", required=True)
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 1
    with kafka_preflight(config.kafka):
        problems = prepare_topics(config)
        said = claim_worker_state(config)
    for problem in problems:
        print(problem.line, file=sys.stderr)
    if any(problem.fatal for problem in problems):
        print("the worker cannot count right on these topics: see `floodgate topics check`",
              file=sys.stderr)
        return 1
    if said is not None:
        print(said, file=sys.stderr)
    from pipeline.streaming.app import Worker, run_forever  # Faust is heavy: only here

    worker = Worker(config)
    if config.worker.health_listen:
        from connectors.http.observability import HealthListenError, ObservabilityServer

        # ready: the counting thread runs and has its partitions
        try:
            ObservabilityServer(config.worker.health_listen, worker.ready,
                                worker.metrics.registry).start()
        except HealthListenError as exc:
            print(f"{exc} (worker.health_listen)", file=sys.stderr)
            return 1
    reloader = Reloader(args.config, config, worker.counting.reload,
                        logging.getLogger("floodgate.worker"))

    @worker.app.task  # type: ignore[untyped-decorator]
    async def reload_on_sighup() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reloader.reload)

    faust_level = "warn" if args.log_level == "warning" else args.log_level  # Faust's spelling

    @worker.app.task  # type: ignore[untyped-decorator]
    async def quiet_loggers() -> None:
        # Faust leaves its loggers at NOTSET: every per-record debug call would still build
        # a LogRecord before the handler drops it.
        for name in ("", "faust", "mode", "aiokafka"):
            logging.getLogger(name).setLevel(args.log_level.upper())
        throttle_handlers(RepeatThrottle())  # handlers exist once Faust set logging up

    # Faust's worker turns its web server on (0.0.0.0:6066) unless told not to.
    run_forever(worker, ["floodgate-worker", "worker", "--without-web", "-l", faust_level])
    return 0


def claim_worker_state(config: FloodgateConfig) -> str | None:
    """Drop the counting stores when they were read from other topics (one line says so);
    the changelog then restores what belongs to these."""
    identity = read_identity(config.kafka, [config.topics.subject_events,
                                            changelog_topic(config.worker.app_id)])
    from pipeline.streaming.state.manager import counting_dir

    return reset_if_moved(Path(config.worker.data_dir), identity,
                          [counting_dir(config.worker.data_dir)])
