"""``floodgate parse FILE...``: the MailEvents in Postfix and spam-filter logs, as JSON lines."""

from __future__ import annotations

import argparse
import sys
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.postfix_log.reader import LogReader, file_reference_time, open_log_lines
from pipeline import gc_tuning
from pipeline.cli.check_config import load_or_report
from schemas.config import FloodgateConfig
from schemas.events import DeliveryEvent, MailEvent


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "parse", help="print the MailEvents of Postfix/spam-filter log files, one JSON per line")
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="log files in time order (oldest first; .gz read as gzip)")
    parser.add_argument("--format", choices=("jsonl",), default="jsonl")
    parser.add_argument("--config", help="config for networks and local domains (direction)")
    parser.add_argument("--deliveries", action="store_true",
                        help="also print per-recipient DeliveryEvents")
    add_log_options(parser)
    parser.set_defaults(run=run)


def add_log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timezone", default="UTC",
                        help="zone of timestamps that carry none (BSD syslog), e.g. Europe/Paris")
    parser.add_argument("--host", help="host name for lines that carry none (rspamd's own log)")


def zone_or_report(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        print(f"--timezone: unknown time zone {name!r} (use an IANA name such as Europe/Paris)",
              file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    config = FloodgateConfig()
    if args.config:
        loaded = load_or_report(args.config)
        if loaded is None:
            return 1
        config = loaded
    zone = zone_or_report(args.timezone)
    if zone is None:
        return 2
    reader = LogReader.for_config(config, zone, file_reference_time(args.files[0]), args.host,
                                  deliveries=args.deliveries)
    failed = False
    gc_tuning.settle()  # a reader's heap churns like the worker's: no full collections
    for path in args.files:
        try:
            outputs = reader.read(open_log_lines(path))
            for output in outputs:
                _print(output, args.deliveries)
                gc_tuning.collect_if_due()
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            failed = True
    for output in reader.finish():
        _print(output, args.deliveries)
    stats = reader.tracker.stats
    print(f"read {stats.lines} lines: {stats.postfix_lines} Postfix, {stats.verdicts} spam verdicts, "
          f"{stats.other_lines} other programs'; {stats.unparsed} not understood "
          f"({stats.unparsed_share:.2%} of Postfix lines); {stats.mail_events} MailEvents, "
          f"{stats.delivery_events} DeliveryEvents, {stats.evicted} evicted", file=sys.stderr)
    for sample in stats.unparsed_samples:
        print(f"  not understood: {sample}", file=sys.stderr)
    return 1 if failed else 0


def _print(output: MailEvent | DeliveryEvent, deliveries: bool) -> None:
    if isinstance(output, DeliveryEvent) and not deliveries:
        return
    # model_dump_json's bytes, without making them a str and encoding it back
    sys.stdout.buffer.write(output.__pydantic_serializer__.to_json(output, exclude_none=True) + b"\n")
