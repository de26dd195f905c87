"""The worker as a faust-streaming application: lifecycle, the low-rate agents, the counting thread.

Faust runs the process (start, signals, clean stop, its own consumer group
``<worker.app_id>-control``) and its one agent:

* ``forward_lifts`` sends operators' lifts from ``floodgate.actions`` to the
  lifted subject's partition of ``floodgate.subject-events`` (keyed by the
  subject: Faust's client hashes keys with murmur2, as the router does).

The mail path is not Faust's: ``counting_loop`` reads, routes and counts in
batches with confluent-kafka and rocksdict in a thread of its own, started
and stopped with the app (its first child, so the two groups join at once).
Faust's per-record stream and table machinery would cap the worker at a few
thousand events a second.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import faust
import mode
from pydantic import ValidationError

from pipeline import gc_tuning
from pipeline.streaming.clients import worker_instance
from pipeline.streaming.counting_loop import CountingLoop
from pipeline.streaming.faust_settings import broker_credentials, broker_urls
from pipeline.streaming.metrics import WorkerMetrics
from schemas.config import FloodgateConfig
from schemas.events import ActionEvent
from schemas.subject_batch import KIND_HEADER, LIFT_KIND
from schemas.validation import describe_validation_error
from schemas.vocabulary import ActionState

log = logging.getLogger("floodgate.worker")

STOP_TIMEOUT_S = 60.0


class Worker:
    """The Faust app and the counting loop it hosts."""

    def __init__(self, config: FloodgateConfig, metrics: WorkerMetrics | None = None) -> None:
        self.metrics = metrics or WorkerMetrics()
        self.counting = CountingLoop(config, self.metrics)
        self.app = build_app(config)
        self.service = CountingService(self.counting, beacon=self.app.beacon)
        # A dependency of the app, not an @app.service: those start only once Faust's own
        # group has joined and recovered (15 s and more), and the counting consumer's join
        # would wait for it. As the app's first child it starts before Faust's consumer.
        self.app.add_dependency(self.service)

    def ready(self) -> bool:
        """Counting partitions assigned and the counting thread alive."""
        thread = self.service.thread
        return self.counting.assigned.is_set() and thread is not None and thread.is_alive()


def build_app(config: FloodgateConfig) -> faust.App:
    settings, topics = config.worker, config.topics
    app = faust.App(
        f"{settings.app_id}-control",
        broker=broker_urls(config.kafka),
        broker_credentials=broker_credentials(config.kafka),
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        web_enabled=False,
        web_host="127.0.0.1",
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        # a static member, as the counting consumer: a restart takes its place at once
        consumer_group_instance_id=f"{worker_instance(config)}-control",
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
    )
    actions = app.topic(topics.actions, key_serializer="raw", value_serializer="raw")
    subject_events = app.topic(topics.subject_events, key_serializer="raw",
                               value_serializer="raw")

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
                                          headers={KIND_HEADER: LIFT_KIND})
            yield None

    return app


class CountingService(mode.Service):
    """Runs ``counting.run`` in a thread for as long as the app runs."""

    def __init__(self, counting: CountingLoop, **kwargs: Any) -> None:
        self.counting = counting
        self.thread: threading.Thread | None = None
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        gc_tuning.settle()
        self.thread = threading.Thread(target=self._run, name="floodgate-counting", daemon=True)
        self.thread.start()

    async def on_stop(self) -> None:
        self.counting.stop()
        if self.thread is None:
            return
        await self.loop.run_in_executor(None, self.thread.join, STOP_TIMEOUT_S)
        if self.thread.is_alive():
            log.error("the counting thread did not stop in %.0f s", STOP_TIMEOUT_S)

    def _run(self) -> None:
        try:
            self.counting.run()
        except Exception:
            # The worker cannot count any more: stop the process; its supervisor (systemd,
            # floodgate up) starts it again, and it resumes from its last checkpoint.
            log.exception("the counting loop failed; stopping the worker")
            os.kill(os.getpid(), signal.SIGTERM)


def run_forever(worker: Worker, argv: list[str]) -> Any:
    """Faust's command line (``worker -l LEVEL``): blocks until the app stops."""
    import sys

    sys.argv = argv
    return worker.app.main()
