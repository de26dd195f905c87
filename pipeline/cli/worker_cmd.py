"""``floodgate worker --config CONFIG``: the streaming worker (run several for more partitions)."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from connectors.kafka.client_config import KafkaNotConfigured
from connectors.kafka.client_logs import RepeatThrottle, throttle_handlers
from connectors.kafka.topics import TopicError, ensure_topics, floodgate_topics
from pipeline.cli.check_config import load_or_report

CLEAN_MARKER = "stopped-cleanly"


def register(sub: Any) -> None:
    parser = sub.add_parser("worker", help="count mail events per subject and publish actions")
    parser.add_argument("--config", required=True)
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 1
    try:
        ensure_topics(config.kafka, floodgate_topics(config))
    except (KafkaNotConfigured, TopicError) as exc:
        print(exc, file=sys.stderr)
        return 1
    from pipeline.streaming.app import build_app  # Faust is heavy: only the worker loads it
    from pipeline.streaming.metrics import WorkerMetrics

    data_dir = Path(config.worker.data_dir)
    discard_unclean_tables(data_dir)
    metrics = WorkerMetrics()
    app = build_app(config, metrics)
    if config.worker.health_listen:
        from connectors.observability import ObservabilityServer

        # ready: the worker joined its group and is not between assignments
        ObservabilityServer(config.worker.health_listen,
                            lambda: bool(app.consumer_generation_id) and not app.rebalancing,
                            metrics.registry).start()
    # Faust's worker turns its web server on (0.0.0.0:6066) unless told not to.
    faust_level = "warn" if args.log_level == "warning" else args.log_level  # Faust's spelling

    @app.task  # type: ignore[untyped-decorator]
    async def quiet_loggers() -> None:
        # Faust leaves its loggers at NOTSET: every per-record debug call would still build
        # a LogRecord (7% of the worker's time in a profile) before the handler drops it.
        for name in ("", "faust", "mode", "aiokafka"):
            logging.getLogger(name).setLevel(args.log_level.upper())
        throttle_handlers(RepeatThrottle())  # handlers exist once Faust set logging up

    sys.argv = ["floodgate-worker", "worker", "--without-web", "-l", faust_level]
    try:
        app.main()
    except SystemExit as exit_:
        if exit_.code in (0, None):
            (data_dir / CLEAN_MARKER).touch()
        raise
    return 0


def discard_unclean_tables(data_dir: Path) -> None:
    """After a crash, rebuild the tables from their changelogs instead of trusting RocksDB.

    Faust writes RocksDB before Kafka acknowledged the changelog record; a
    worker killed in between leaves local tables ahead of the changelog, and
    Faust then refuses to start ("persisted offset ... is higher than the last
    offset"). Source offsets are committed only after the changelog is flushed,
    so the changelog is always a safe place to start from.
    """
    marker = data_dir / CLEAN_MARKER
    tables = data_dir / "v1" / "tables"
    if tables.exists() and not marker.exists():
        logging.getLogger("floodgate.worker").warning(
            "last run did not stop cleanly: rebuilding tables in %s from their changelogs", tables)
        shutil.rmtree(tables)
    marker.unlink(missing_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
