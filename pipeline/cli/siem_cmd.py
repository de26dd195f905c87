"""``floodgate siem --format ecs|cef --to DEST``: actions, operators' settings changes and mail
events for a SIEM.

Reads ``floodgate.actions`` and ``floodgate.subject-settings`` (and with ``--mail``
``floodgate.mail-events``) in a
consumer group of its own, writes each record as an ECS JSON line or a CEF
line to syslog (TCP or UDP), a file or stdout, and commits only what was
written. ``--webhook URL`` also POSTs each new action once. ``--from`` says where a
partition the group has never read starts: the oldest record kept, only new
ones, or the first at or after a time; a partition with a committed position
always resumes from it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaException,
    Message,
    TopicPartition,
)
from pydantic import ValidationError

from connectors.kafka.client_config import consumer_config, static_member
from connectors.kafka.topics import ensure_topics, settings_topic
from connectors.siem import cef, ecs
from connectors.siem.outputs import Destination, Output, open_output, parse_destination
from connectors.siem.record_size import DEFAULT_RECORD_BYTES, MAX_RECORD_BYTES, MIN_RECORD_BYTES
from connectors.siem.webhook import Webhook
from pipeline.cli.arguments import number_in
from pipeline.cli.check_config import load_or_report
from pipeline.cli.kafka_preflight import kafka_preflight
from schemas.events import ActionEvent, MailEvent
from schemas.subject_settings import SettingsChange
from schemas.time_ms import to_ms

log = logging.getLogger("floodgate.siem")
SYSLOG_SEVERITY = {"block": 2, "quarantine": 3, "defer": 4, "warn": 4}  # crit .. warning
_record_bytes = number_in(
    int, lambda value: MIN_RECORD_BYTES <= value <= MAX_RECORD_BYTES,
    f"{{text!r}}: a number of bytes from {MIN_RECORD_BYTES} (what every syslog receiver "
    f"takes) to {MAX_RECORD_BYTES} (what a UDP datagram carries)")


def register(sub: Any) -> None:
    parser = sub.add_parser("siem", help="send actions (and mail events) to a SIEM as ECS or CEF")
    parser.add_argument("--config", required=True)
    parser.add_argument("--format", choices=("ecs", "cef"), required=True)
    parser.add_argument("--to", type=_destination, default=Destination("stdout"),
                        help="syslog://HOST:PORT (TCP), syslog+udp://HOST:PORT, file:PATH or "
                             "stdout (default)")
    parser.add_argument("--max-record-bytes", type=_record_bytes, default=DEFAULT_RECORD_BYTES,
                        metavar="N", help="longest record on the wire, syslog header and framing "
                        f"included; free text is cut to fit ({MIN_RECORD_BYTES}-"
                        f"{MAX_RECORD_BYTES}, default {DEFAULT_RECORD_BYTES})")
    parser.add_argument("--mail", action="store_true", help="mail events too, not only actions")
    parser.add_argument("--webhook", metavar="URL", help="also POST each new action here, once")
    parser.add_argument("--group", help="consumer group (default CLIENT_ID-siem-FORMAT)")
    parser.add_argument("--instance", metavar="NAME",
                        help="this process's static member name in the group (default "
                             "HOST-GROUP); give each siem of one group on one host its own")
    parser.add_argument("--from", dest="start", type=_start, default="earliest",
                        metavar="earliest|latest|TIME",
                        help="where a new group starts on each partition: the oldest record "
                             "kept (default), only records that come after it starts, or the "
                             "first record at or after TIME (ISO 8601, e.g. "
                             "2026-12-01T00:00:00Z); a group that has read before resumes")
    parser.set_defaults(run=run)


def _start(text: str) -> str | datetime:
    if text in ("earliest", "latest"):
        return text
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: earliest, latest or a time with its zone, e.g. 2026-12-01T00:00:00Z")
    return moment.astimezone(UTC)


def start_positions(consumer: Consumer, partitions: list[TopicPartition],
                    start: str | datetime) -> list[TopicPartition]:
    """Where each newly assigned partition starts: its committed offset, else ``start``."""
    committed = {(tp.topic, tp.partition): tp.offset
                 for tp in consumer.committed(partitions, timeout=10)}
    fresh = [TopicPartition(tp.topic, tp.partition) for tp in partitions
             if committed.get((tp.topic, tp.partition), -1) < 0]
    if isinstance(start, datetime):
        ms = to_ms(start)
        found = consumer.offsets_for_times(
            [TopicPartition(tp.topic, tp.partition, ms) for tp in fresh], timeout=10)
        # no record at or after the time: the partition's end
        at = {(tp.topic, tp.partition): tp.offset if tp.offset >= 0 else OFFSET_END
              for tp in found}
    else:
        offset = OFFSET_BEGINNING if start == "earliest" else OFFSET_END
        at = {(tp.topic, tp.partition): offset for tp in fresh}
    return [TopicPartition(tp.topic, tp.partition,
                           at.get((tp.topic, tp.partition),
                                  committed.get((tp.topic, tp.partition), OFFSET_BEGINNING)))
            for tp in partitions]


def _destination(text: str) -> Destination:
    try:
        return parse_destination(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


Record = ActionEvent | MailEvent | SettingsChange


def render(fmt: str, record: Record, budget: int) -> str:
    """The record's line in at most ``budget`` bytes."""
    if isinstance(record, SettingsChange):
        return (cef.settings_line(record, budget) if fmt == "cef"
                else ecs.bounded_line(ecs.settings_document(record), budget))
    if fmt == "cef":
        return (cef.action_line(record, budget) if isinstance(record, ActionEvent)
                else cef.mail_line(record, budget))
    document = (ecs.action_document(record) if isinstance(record, ActionEvent)
                else ecs.mail_document(record))
    return ecs.bounded_line(document, budget)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    config = load_or_report(args.config)
    if config is None:
        return 1
    try:
        webhook = Webhook(args.webhook) if args.webhook else None  # arguments before Kafka
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    with kafka_preflight(config.kafka):
        consumer_group = args.group or f"{config.kafka.client_id}-siem-{args.format}"
        ensure_topics(config.kafka, [settings_topic(config)])  # may be read before any is set
        membership = static_member(consumer_group, args.instance)
        member = membership["group.instance.id"]
        consumer = Consumer(consumer_config(
            config.kafka, consumer_group, **membership,
            # a member that stops polling (a stuck output) holds a rebalance this long
            **{"max.poll.interval.ms": 60_000}))
    topics: dict[str, Decoder] = {config.topics.actions: _action,
                                  config.topics.subject_settings: _settings_change}
    if args.mail:
        topics[config.topics.mail_events] = _mail
    output = open_output(args.to, max_bytes=args.max_record_bytes)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    def on_assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        positions = start_positions(consumer, partitions, args.start)
        consumer.assign(positions)
        log.info("reading %s: %s", ", ".join(sorted(topics)), ", ".join(
            f"{tp.topic}[{tp.partition}] from {_position(tp.offset)}" for tp in positions))

    log.info("joining consumer group %s as %s on %s (partitions come within about 10 s, "
             "after a restart too)", consumer_group, member,
             config.kafka.bootstrap_servers)
    consumer.subscribe(list(topics), on_assign=on_assign)
    written = bad = 0
    code = 0
    try:
        while not stop.is_set():
            messages = consumer.consume(500, 0.5)
            handled = 0
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.fatal():  # e.g. another live member with this --instance
                        log.error("stopping: %s", error.str())
                        code = 1
                        stop.set()
                    continue
                handled += 1
                record = _decode(message, topics)
                if record is None:
                    bad += 1
                    continue
                write_record(output, args.format, record, webhook)
                written += 1
            if handled:
                _commit(consumer)
    finally:
        consumer.close()
        output.close()
        log.info("stopped: %d records written, %d unreadable skipped", written, bad)
    return code


def _commit(consumer: Consumer) -> None:
    """Commit what was written; a commit lost to a rebalance only means those records are
    written again by whoever reads the partition next (at least once, never lost)."""
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        log.warning("commit not taken (%s); the last records may be written again", exc)


def _position(offset: int) -> str:
    return {OFFSET_BEGINNING: "the oldest record", OFFSET_END: "new records"}.get(
        offset, f"offset {offset}")


Decoder = Callable[[Message], Record]


def _action(message: Message) -> ActionEvent:
    return ActionEvent.model_validate_json(message.value() or b"")


def _mail(message: Message) -> MailEvent:
    return MailEvent.model_validate_json(message.value() or b"")


def _settings_change(message: Message) -> SettingsChange:
    headers: dict[str, bytes] = {}
    raw: Any = message.headers() or ()
    for name, value in raw:
        headers[name] = value if isinstance(value, bytes) else str(value or "").encode()
    return SettingsChange.of(message.key(), message.value(), headers, message.timestamp()[1])


def _decode(message: Message, topics: dict[str, Decoder]) -> Record | None:
    try:
        return topics[message.topic() or ""](message)
    except ValidationError as exc:
        log.warning("skipping unreadable record %s/%s@%s: %s", message.topic(), message.partition(),
                    message.offset(), exc.errors(include_url=False)[0]["msg"])
    except ValueError as exc:
        log.warning("skipping unreadable record %s/%s@%s: %s", message.topic(), message.partition(),
                    message.offset(), exc)
    return None


def write_record(output: Output, fmt: str, record: Record, webhook: Webhook | None) -> None:
    ts: datetime = record.ts
    if isinstance(record, SettingsChange):
        severity, msgid = 5, "settings"  # a notice: an operator changed what is enforced
    elif isinstance(record, ActionEvent):
        applied = record.state.value == "active" and record.enforced  # shadow: a notice
        severity = SYSLOG_SEVERITY[record.action.value] if applied else 5
        msgid = "action"
    else:
        severity, msgid = 6, "mail"
    output.send(render(fmt, record, output.budget(ts, severity, msgid)), ts, severity, msgid)
    if webhook is not None and isinstance(record, ActionEvent):
        webhook.notify(record)
