"""The Faust worker: mail events -> per-subject engine state in RocksDB -> actions.

Two agents, so that each subject's state lives in exactly one partition:

* ``route`` reads ``floodgate.mail-events``, drops what is not valid (to the
  dead-letter topic, with the reason) and sends one copy of each event per key
  dimension to ``floodgate.subject-events``, keyed ``type:subject``;
* ``count`` reads that topic, co-partitioned with the ``subject-state`` table:
  one get, the pure engine, one put; what fires goes to ``floodgate.actions``.

Each stored state carries the offset of the last record applied to it and the
subject's recent event ids, so records replayed after a crash and messages
reported twice are recognised and not counted again (see ``stored_state``).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import faust
from pydantic import ValidationError

from connectors.event_files import describe_validation_error
from pipeline.engine.clock import to_ms
from pipeline.engine.evaluator import Subject, ThresholdEngine
from pipeline.streaming import stored_state
from pipeline.streaming.store_options import TableStoreOptions
from schemas.config import FloodgateConfig
from schemas.events import DeadLetter, MailEvent
from schemas.vocabulary import SubjectType

log = logging.getLogger("floodgate.worker")


def build_app(config: FloodgateConfig) -> faust.App:
    if not config.kafka.bootstrap_servers:
        raise ValueError("kafka.bootstrap_servers is not set")
    settings, topics = config.worker, config.topics
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server.strip()}" for server in config.kafka.bootstrap_servers.split(",")],
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
    mail_events = app.topic(topics.mail_events, key_serializer="raw", value_serializer="raw")
    subject_events = app.topic(topics.subject_events, partitions=settings.partitions,
                               key_serializer="raw", value_serializer="raw")
    actions = app.topic(topics.actions, key_serializer="raw", value_serializer="raw")
    dead_letter = app.topic(topics.dead_letter, key_serializer="raw", value_serializer="raw")
    # bytes keys and values: Faust stores them raw (no JSON round trip per event)
    states = app.Table("subject-state", default=None, partitions=settings.partitions,
                       options=TableStoreOptions().to_faust_options(), key_type=bytes,
                       value_type=bytes)
    engine = ThresholdEngine(config)

    async def set_aside(event: faust.EventT[bytes], error: str) -> None:
        message = event.message
        record = DeadLetter(ts=datetime.now(UTC), source_topic=message.topic,
                            partition=message.partition, offset=message.offset, error=error[:2000],
                            raw_base64=base64.b64encode(event.value or b"").decode())
        await dead_letter.send(key=f"{message.topic}:{message.partition}".encode(),
                               value=record.model_dump_json().encode())
        log.warning("dead-lettered %s/%d@%d: %s", message.topic, message.partition,
                    message.offset, error)

    @app.agent(mail_events)
    async def route(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            try:
                mail = MailEvent.model_validate_json(event.value or b"")
            except ValidationError as exc:
                await set_aside(event, describe_validation_error(exc))
                continue
            for subject in engine.subjects(mail):
                await subject_events.send(key=subject.key.encode(), value=event.value,
                                          timestamp=to_ms(mail.ts) / 1000)
            yield None

    @app.agent(subject_events)
    async def count(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for event in stream.events():
            raw_key = event.key or b""
            key = raw_key.decode("utf-8", "replace")
            kind, _, value = key.partition(":")
            try:
                subject = Subject(SubjectType(kind), value)
                mail = MailEvent.model_validate_json(event.value or b"")
                stored = stored_state.unpack(states.get(raw_key))
            except (ValueError, ValidationError) as exc:
                await set_aside(event, f"{key}: {exc}")
                continue
            offset = event.message.offset
            if offset <= stored.offset:
                continue  # replayed after a restart: already counted
            fired = [] if stored.seen(mail.event_id) else engine.observe(subject, stored.state, mail)
            stored.offset = offset
            states[raw_key] = stored_state.pack(stored)
            for action in fired:
                await actions.send(key=action.key.encode(), value=action.model_dump_json().encode(),
                                   timestamp=to_ms(action.ts) / 1000)
            yield None

    return app
