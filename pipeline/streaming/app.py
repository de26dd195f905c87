"""The Faust worker: mail events -> per-subject engine state in RocksDB -> actions.

Agents, so that each subject's state lives in exactly one partition:

* ``route`` reads ``floodgate.mail-events``, drops what is not valid (to the
  dead-letter topic, with the reason) and sends one copy of each event per key
  dimension to ``floodgate.subject-events``, keyed ``type:subject``;
  ``route_policy`` does the same for end-of-message policy requests when the
  policy service is configured as a counting source;
* ``forward_lifts`` sends operators' lifts from ``floodgate.actions`` to the
  lifted subject's partition of ``subject-events``;
* a timer puts a tick record into each owned partition every
  ``worker.tick_interval_s``;
* ``count`` reads ``subject-events``, co-partitioned with the
  ``subject-state`` table, and hands each record to ``counter``: the pure
  engine for mail, lifts, and expiries and idle-subject cleanup on ticks.

Each stored state carries the offset of the last record applied to it and the
subject's recent event ids, so records replayed after a crash and messages
reported twice are recognised and not counted again (see ``stored_state``).
Faust 0.15 can skip records after a restart; ``offset_guard`` notices the jump
and ``gap_filler`` reads the skipped records directly, before the current one.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
from faust.types import TP
from pydantic import ValidationError

from connectors.direction import DirectionRules
from connectors.event_files import describe_validation_error
from connectors.postfix_policy.counting_source import mail_event_from_policy
from pipeline.engine.clock import to_ms
from pipeline.engine.evaluator import ThresholdEngine
from pipeline.streaming.counter import SubjectCounter
from pipeline.streaming.faust_settings import broker_credentials, broker_urls
from pipeline.streaming.gap_filler import GapFiller, SourceRecord
from pipeline.streaming.metrics import WorkerMetrics
from pipeline.streaming.offset_guard import OffsetGuard
from pipeline.streaming.store_options import TableStoreOptions
from schemas.config import FloodgateConfig
from schemas.events import ActionEvent, DeadLetter, MailEvent, PolicyEvent
from schemas.vocabulary import ActionState

log = logging.getLogger("floodgate.worker")

KIND_HEADER = "floodgate-kind"  # on subject-events: absent (mail), "lift" or "tick"
TICK_KEY = b"\x00tick"
CHANGELOG_BACKLOG = 10_000
SUBJECT_RECORD_LABELS = {b"mail": "subject-mail", b"lift": "subject-lift", b"tick": "subject-tick"}


@dataclass(eq=False)  # Faust keeps messages in sets: hashed by identity
class _FilledMessage:
    """What Faust's ``Consumer.ack`` reads of a message, for records it never delivered."""

    topic: str
    partition: int
    offset: int
    acked: bool = False
    tp: Any = field(init=False)

    def __post_init__(self) -> None:
        self.tp = TP(self.topic, self.partition)


def build_app(config: FloodgateConfig, metrics: WorkerMetrics | None = None) -> faust.App:
    settings, topics = config.worker, config.topics
    app = faust.App(
        settings.app_id,
        broker=broker_urls(config.kafka),
        broker_credentials=broker_credentials(config.kafka),
        store="rocksdb://",
        datadir=str(Path(settings.data_dir)),
        topic_partitions=settings.partitions,
        web_enabled=False,
        web_host="127.0.0.1",
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        # A crashed worker's partitions move to the others after this long.
        broker_session_timeout=30.0,
        broker_heartbeat_interval=3.0,
    )
    # Faust stops the agents whenever more than 100 table changelog records wait to be sent
    # (ProducerBuffer.max_messages) and drains them one at a time; a larger backlog lets the
    # sends overlap the counting. Offsets are still committed only after the flush.
    app.producer.buffer.max_messages = CHANGELOG_BACKLOG
    mail_events = app.topic(topics.mail_events, key_serializer="raw", value_serializer="raw")
    subject_events = app.topic(topics.subject_events, partitions=settings.partitions,
                               key_serializer="raw", value_serializer="raw")
    actions = app.topic(topics.actions, key_serializer="raw", value_serializer="raw")
    dead_letter = app.topic(topics.dead_letter, key_serializer="raw", value_serializer="raw")
    # bytes keys and values: Faust stores them raw (no JSON round trip per event)
    states = app.Table("subject-state", default=None, partitions=settings.partitions,
                       options=TableStoreOptions.sized(settings.rocksdb_write_buffer_mib,
                                                       settings.rocksdb_block_cache_mib
                                                       ).to_faust_options(), key_type=bytes,
                       value_type=bytes)
    engine = ThresholdEngine(config)
    metrics = metrics or WorkerMetrics()
    guard = OffsetGuard()
    filler = GapFiller(config.kafka, settings.app_id)

    @app.on_partitions_revoked.connect
    async def forget_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        guard.forget(args[0] if args else ())  # the revoked partitions

    async def admitted(event: faust.EventT[bytes]) -> list[SourceRecord]:
        """The records to handle now, in order: any the consumer skipped, then this one."""
        message = event.message
        consumer: Any = app.consumer
        # Faust-internal (pinned version): the committed offset its seek found
        admission = guard.check(message.tp, message.offset,
                                consumer._committed_offset.get(message.tp))
        if not admission.process:
            return []
        current = SourceRecord(message.topic, message.partition, message.offset,
                               event.key or b"", event.value or b"", dict(event.headers or {}))
        if admission.missing_from is None:
            return [current]
        log.warning("%s/%d: the consumer skipped offsets %d..%d; reading them directly",
                    message.topic, message.partition, admission.missing_from, message.offset - 1)
        missed = await filler.fetch(message.topic, message.partition, admission.missing_from,
                                    message.offset)
        metrics.filled.inc(len(missed))
        return [*missed, current]

    def acknowledge(record: SourceRecord) -> None:
        """Let Faust commit past a record read by the gap filler (it never saw it)."""
        consumer: Any = app.consumer
        consumer.ack(_FilledMessage(record.topic, record.partition, record.offset))

    async def handled(event: faust.EventT[bytes],
                      handle: Callable[[SourceRecord], Awaitable[None]]) -> None:
        for record in await admitted(event):
            await handle(record)
            if record.offset != event.message.offset:
                acknowledge(record)

    async def set_aside(record: SourceRecord, error: str) -> None:
        dead = DeadLetter(ts=datetime.now(UTC), source_topic=record.topic,
                          partition=record.partition, offset=record.offset, error=error[:2000],
                          raw_base64=base64.b64encode(record.value).decode())
        await dead_letter.send(key=f"{record.topic}:{record.partition}".encode(),
                               value=dead.model_dump_json().encode())
        metrics.dead_letters.inc()
        log.warning("dead-lettered %s/%d@%d: %s", record.topic, record.partition,
                    record.offset, error)

    async def publish(action: ActionEvent) -> None:
        metrics.actions.labels(action.action.value, action.state.value).inc()
        await actions.send(key=action.key.encode(), value=action.model_dump_json().encode(),
                           timestamp=to_ms(action.ts) / 1000)

    def scan(partition: int, start: bytes) -> Iterator[tuple[bytes, bytes]]:
        # Faust-internal (pinned version): the partition's rocksdict, for ordered range reads.
        db = states.data._db_for_partition(partition)  # type: ignore[attr-defined]
        return iter(db.items(from_key=start))

    counter = SubjectCounter(engine, states, scan, publish, wall_ms=lambda: int(time.time() * 1000))

    async def route_one(mail: MailEvent, value: bytes) -> None:
        for subject in engine.subjects(mail):
            await subject_events.send(key=subject.key.encode(), value=value,
                                      timestamp=to_ms(mail.ts) / 1000)

    async def route_mail(record: SourceRecord) -> None:
        metrics.consumed.labels("mail").inc()
        try:
            mail = MailEvent.model_validate_json(record.value)
        except ValidationError as exc:
            await set_aside(record, describe_validation_error(exc))
            return
        await route_one(mail, record.value)

    @app.agent(mail_events)
    async def route(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            await handled(event, route_mail)
            yield None

    if settings.count_policy_events:
        policy_events = app.topic(topics.policy_events, key_serializer="raw",
                                  value_serializer="raw")
        directions = DirectionRules(config.networks)

        async def route_request(record: SourceRecord) -> None:
            metrics.consumed.labels("policy").inc()
            try:
                policy = PolicyEvent.model_validate_json(record.value)
                mail = mail_event_from_policy(policy, directions)
            except ValidationError as exc:
                await set_aside(record, describe_validation_error(exc))
                return
            if mail is not None:
                await route_one(mail, mail.model_dump_json().encode())

        @app.agent(policy_events)
        async def route_policy(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
            """End-of-message policy requests, counted as the messages they stand for."""
            async for event in stream.events():
                await handled(event, route_request)
                yield None

    @app.agent(actions)
    async def forward_lifts(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        """Operators' lifts go to the lifted subject's partition of ``subject-events``."""
        async for event in stream.events():
            try:
                action = ActionEvent.model_validate_json(event.value or b"")
            except ValidationError as exc:
                log.warning("unreadable record on %s: %s", topics.actions,
                            describe_validation_error(exc))
                continue
            # Only lifts of actions still running: an old lift re-read by a new worker
            # group must not restart today's counting.
            if action.state is ActionState.LIFTED and action.expires_at > datetime.now(UTC):
                await subject_events.send(key=action.key.encode(), value=event.value,
                                          headers={KIND_HEADER: b"lift"})
            yield None

    async def count_record(record: SourceRecord) -> None:
        kind = record.headers.get(KIND_HEADER, b"mail")
        # fixed label words only: a header from outside must not create new series
        metrics.consumed.labels(SUBJECT_RECORD_LABELS.get(kind, "subject-other")).inc()
        try:
            if kind == b"tick":
                report = await counter.on_tick(record.partition)
                metrics.dropped_subjects.inc(report.dropped)
            elif kind == b"lift":
                counter.on_lift(record.offset, record.key, record.value)
            else:
                await counter.on_mail(record.partition, record.offset, record.key, record.value)
        except ValidationError as exc:
            await set_aside(record, f"{record.key[:200]!r}: {describe_validation_error(exc)}")
        except ValueError as exc:
            await set_aside(record, f"{record.key[:200]!r}: {exc}")

    @app.agent(subject_events)
    async def count(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            await handled(event, count_record)
            yield None

    @app.timer(interval=settings.tick_interval_s)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        """One tick record into each ``subject-events`` partition this worker owns."""
        consumer: Any = app.consumer
        lag: dict[str, int] = {}
        for tp in app.assignor.assigned_actives():
            if tp.topic == topics.subject_events:
                await subject_events.send(key=TICK_KEY, value=b"", partition=tp.partition,
                                          headers={KIND_HEADER: b"tick"})
            expected, end = guard.expected(tp), consumer.highwater(tp)
            if expected is not None and end is not None:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, end - expected)
        for topic, behind in lag.items():
            metrics.lag.labels(topic).set(behind)

    return app
