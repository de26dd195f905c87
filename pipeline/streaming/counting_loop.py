"""The worker's hot path: one confluent-kafka consumer and producer, in batches, in one thread.

The consumer (group ``worker.app_id``) reads the source topics
(``mail-events``, and ``policy-events`` when they count) and the counting
topic ``subject-events`` together; Kafka's group protocol spreads their
partitions over the workers. Each cycle:

1. wait for a record, then take up to ``BATCH`` records already fetched;
2. source records go through the ``Router``; its ``SubjectBatch`` records go
   out to the counting partitions at the end of the cycle;
3. counting records are offered to their partition's ``EventOrder``; lifts
   are applied; what the watermark releases is counted by the partition's
   ``SubjectCounter``, and the actions that fire are published at once;
4. every ``worker.tick_interval_s``: a checkpoint (``state.checkpoint``:
   changes, marker, local RocksDB, then the offsets commit); in the same
   interval, each partition's expiries and idle sweep at its watermark
   (``ticks``), partitions at different moments so the work does not pile up
   in one cycle.

The partitions themselves are the ``state`` package's (``state.manager``
opens and restores them on assignment); what goes out to Kafka goes through
``outputs``; sources far ahead are paused by ``pacing``.

Nothing in Faust's per-record stream or table machinery is on this path.
Records that cannot be used go to the dead-letter topic and the loop goes on.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from functools import partial
from typing import Any

from confluent_kafka import OFFSET_STORED, Consumer, KafkaError, Producer, TopicPartition
from pydantic import ValidationError

from connectors.kafka.client_failures import RestartBudget
from connectors.kafka.topics import changelog_topic
from pipeline import gc_tuning
from pipeline.engine.evaluator import ThresholdEngine
from pipeline.heap_trim import HeapTrimmer
from pipeline.streaming.clients import (
    Clients,
    counting_consumer_settings,
    counting_producer_settings,
    kafka_clients,
    restore_consumer_settings,
)
from pipeline.streaming.counting_partition import CountingPartition
from pipeline.streaming.event_order import Entry, Source
from pipeline.streaming.lag import LagGauge
from pipeline.streaming.metrics import WorkerMetrics
from pipeline.streaming.outputs import WorkerOutputs
from pipeline.streaming.pacing import Pacer
from pipeline.streaming.router import Router, SubjectPartitioner
from pipeline.streaming.state import changelog
from pipeline.streaming.state.checkpoint import Checkpoint
from pipeline.streaming.state.manager import PartitionManager
from pipeline.streaming.ticks import tick_due
from schemas.config import FloodgateConfig
from schemas.direction import DirectionRules
from schemas.subject_batch import BATCH_KIND, KIND_HEADER, ROUTED_HEADER, routed_tag
from schemas.time_ms import wall_ms
from schemas.validation import describe_validation_error

log = logging.getLogger("floodgate.worker")

BATCH = 5_000  # records per cycle at most
ASSIGNED_LINE = "counting partitions assigned:"  # logged at each assignment (tests wait for it)
POLL_S = 0.05  # longest wait for a first record (ticks run between waits)
# The time a cycle gives a checkpoint being written (a record arriving meanwhile waits at most
# that long); while it has changes to encode the loop does not wait for records.
CHECKPOINT_SLICE_S = 0.005
EARLY_WITHIN_MS = 30_000  # a routed batch this close to the wall clock is counted at once
RESTART_PAUSE_S = 5.0  # after a failure, before new clients connect
STALL_S = 0.3  # a cycle of the counting loop this long is logged, with where the time went,
STALL_LOG_EVERY_S = 10.0  # at most this often

def _source_topics(config: FloodgateConfig, engine: ThresholdEngine) -> list[str]:
    """What the router reads: mail, settings, and policy events and deliveries when counted."""
    topics = config.topics
    sources = [topics.mail_events, topics.subject_settings]
    if config.worker.count_policy_events:
        sources.append(topics.policy_events)
    if engine.counts_deliveries:  # a threshold counts delivery attempts
        sources.append(topics.deliveries)
    return sources


class CountingLoop:
    def __init__(self, config: FloodgateConfig, metrics: WorkerMetrics,
                 clients: Clients = kafka_clients) -> None:
        self._config, self._metrics, self._clients = config, metrics, clients
        settings, topics = config.worker, config.topics
        self._engine = ThresholdEngine(config)
        self._subject_topic = topics.subject_events
        self._changelog = changelog_topic(settings.app_id)
        self._sources = _source_topics(config, self._engine)
        self._tick_s = settings.tick_interval_s
        self._lateness_ms = round(settings.live_lateness_s * 1000)
        self._stop = threading.Event()
        self._consumer_settings = counting_consumer_settings(config)
        self._producer_settings = counting_producer_settings(config)
        self._state = PartitionManager(settings, self._engine, self._changelog,
                                       restore_consumer_settings(config))
        self._outputs = WorkerOutputs(topics, metrics)
        self._pacer = Pacer(round(settings.max_source_lead_s * 1000), settings.max_held_entries,
                            metrics)
        self._lag = LagGauge(metrics)
        self._heap = HeapTrimmer()
        self.assigned = threading.Event()  # joined the group and got partitions (readiness)
        self._router: Router | None = None
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self._healthy = True  # False once the clients failed: revoking then skips the checkpoint
        self._writing: Checkpoint | None = None  # the checkpoint being written
        self._assigned_sources: set[Source] = set()
        self._life, self._routed = "", 0  # this life of the clients; batches it took early
        self._new_config: FloodgateConfig | None = None  # from SIGHUP, for the counting thread
        self._resubscribe = False  # the new config reads other source topics

    @property
    def consumer_settings(self) -> dict[str, Any]:
        """The counting consumer's librdkafka settings (Kafka security included)."""
        return dict(self._consumer_settings)

    # -- lifecycle ------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def reload(self, config: FloodgateConfig) -> None:
        """Count by ``config`` from the next cycle on (any thread may call this)."""
        self._new_config = config

    def _apply_config(self) -> None:
        """The new thresholds, classes and exemptions count from the next entry on; the
        subjects' windows stay (see README). Reading other source topics (a first threshold
        counting deliveries, policy events switched on) takes new clients, after a checkpoint."""
        config, self._new_config = self._new_config, None
        assert config is not None and self._router is not None
        engine = ThresholdEngine(config)
        sources = _source_topics(config, engine)
        self._config, self._engine = config, engine
        self._state.use_engine(engine)
        self._router.engine = engine
        self._router.directions = (DirectionRules(config.networks)
                                   if config.worker.count_policy_events else None)
        if sources != self._sources:
            log.info("config reload: the source topics are now %s; reconnecting",
                     ", ".join(sources))
            self._sources, self._resubscribe = sources, True

    def run(self) -> None:
        """The thread's body, until ``stop``. A failure of the Kafka clients (a fatal producer
        error after a broker restart, say) costs what was counted since the last checkpoint:
        the loop starts again with new clients, as a restarted worker would, and resumes from
        the changelog and the committed offsets. Raises when it keeps failing."""
        budget = RestartBudget()  # more failures than it allows: the worker exits
        while not self._stop.is_set():
            try:
                self._run_clients()
                if not self._resubscribe:
                    return
                self._resubscribe = False
            except Exception:
                if not budget.spend():
                    raise
                log.exception("the counting loop failed; starting it again in %.0f s "
                              "(failure %d of %d allowed in %.0f s)", RESTART_PAUSE_S,
                              budget.used, budget.limit, budget.window_s)
                self._metrics.restarts.inc()
                self._stop.wait(RESTART_PAUSE_S)

    def _run_clients(self) -> None:
        """One life of the consumer and producer."""
        self._healthy = True
        self._life, self._routed = uuid.uuid4().hex[:12], 0  # tags batches taken early
        self._writing = None  # a checkpoint of the last life's is not carried on
        self._producer, self._consumer = self._clients(self._producer_settings,
                                                       self._consumer_settings)
        self._outputs.bind(self._producer)
        try:
            self._count_until_stopped()
        except BaseException:
            self._healthy = False  # no checkpoint of what the failed clients left behind
            raise
        finally:
            self.assigned.clear()
            self._state.close_all()
            self._lag.ends.clear()
            self._assigned_sources.clear()
            self._pacer.forget(set(self._pacer.paused))
            self._close_clients()

    def _close_clients(self) -> None:
        assert self._consumer is not None and self._producer is not None
        try:
            self._consumer.close()
        except Exception as exc:
            log.warning("closing the counting consumer: %s", exc)
        try:
            self._producer.flush(10 if self._healthy else 0)
        except Exception as exc:
            log.warning("closing the counting producer: %s", exc)

    def _count_until_stopped(self) -> None:
        assert self._consumer is not None and self._producer is not None
        directions = (DirectionRules(self._config.networks)
                      if self._config.worker.count_policy_events else None)
        topics = self._config.topics
        self._router = Router(self._engine,
                              SubjectPartitioner(self._partition_count(self._subject_topic)),
                              self._lateness_ms, directions,
                              topics.policy_events if directions else None,
                              topics.deliveries if self._engine.counts_deliveries else None,
                              topics.subject_settings)
        self._consumer.subscribe([*self._sources, self._subject_topic],
                                 on_assign=self._on_assign, on_revoke=self._on_revoke,
                                 on_lost=self._on_lost)
        last_checkpoint = last_stall_log = time.monotonic()
        while not self._stop.is_set() and not self._resubscribe:
            if self._new_config is not None:
                self._apply_config()
            started = time.monotonic()
            messages = self._next_records()
            fetched = time.monotonic()
            if messages:
                self._handle(messages)
                self._pacer.pace(self._consumer, self._router, self._assigned_sources,
                                 self._state.held())
            handled = time.monotonic()
            self._send_routed()
            self._producer.poll(0)
            sent = time.monotonic()
            if self._writing is not None and self._writing.advance(CHECKPOINT_SLICE_S):
                self._written()
            # The next checkpoint waits for the last one to be written, unless the loop is
            # behind (a full batch read): then no one waits on a cycle and it is finished at
            # once. Live, finishing a large one at once (the end of a backlog) was a stall.
            if sent - last_checkpoint >= self._tick_s and (
                    self._writing is None or len(messages) >= BATCH):
                last_checkpoint = sent
                self._checkpoint()
                self._measure()
            checkpointed = time.monotonic()
            tick_due(self._state.partitions.values(), checkpointed, self._tick_s, self._metrics)
            gc_tuning.collect_if_due(checkpointed)
            ticked = time.monotonic()
            if ticked - started > STALL_S and ticked - last_stall_log >= STALL_LOG_EVERY_S:
                last_stall_log = ticked  # where detection time goes (see bench_worker)
                log.info("counting cycle took %.0f ms: fetch %.0f, route %.0f (%d records), "
                         "send and count %.0f, checkpoint and gauges %.0f, ticks %.0f",
                         (ticked - started) * 1000, (fetched - started) * 1000,
                         (handled - fetched) * 1000, len(messages), (sent - handled) * 1000,
                         (checkpointed - sent) * 1000, (ticked - checkpointed) * 1000)
        self._checkpoint(wait=True)

    def _next_records(self) -> list[Any]:
        """The records fetched so far, once there is one. ``consume(n, timeout)`` would wait
        the whole timeout for n records: on live traffic that wait is added to every
        message's detection time, while a backlog fills the batch either way."""
        assert self._consumer is not None
        writing = self._writing is not None and self._writing.encoding
        first = self._consumer.poll(0 if writing else POLL_S)
        if first is None:
            return []
        return [first, *self._consumer.consume(BATCH - 1, 0)]

    def _partition_count(self, topic: str) -> int:
        assert self._consumer is not None
        metadata = self._consumer.list_topics(topic, timeout=30)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise RuntimeError(f"topic {topic} does not exist (floodgate worker creates it; "
                               "was it deleted?)")
        return len(found.partitions)

    # -- the cycle ------------------------------------------------------------------------
    def _handle(self, messages: list[Any]) -> None:
        """One consume batch (confluent-kafka Messages: typed Any, their getters are hot)."""
        assert self._router is not None
        touched: set[int] = set()  # counting partitions with records to release
        subject_topic = self._subject_topic
        route = self._router.route
        routed = 0
        for message in messages:
            error = message.error()
            topic = message.topic()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._lag.at_end(topic, message.partition(), message.offset())
                    if topic != subject_topic:
                        self._router.at_end((topic, message.partition()))
                else:
                    log.warning("consumer: %s", error.str())
                continue
            if topic == subject_topic:
                self._take_counting_record(message, touched)
                continue
            source = (topic, message.partition())
            try:
                route(source, message.offset(), message.value(), message.key(),
                      message.timestamp()[1])
                routed += 1
            except ValidationError as exc:
                self._router.skipped(source, message.offset())
                self._outputs.set_aside(message, describe_validation_error(exc))
            except ValueError as exc:
                self._router.skipped(source, message.offset())
                self._outputs.set_aside(message, str(exc))
        if routed:
            self._metrics.consumed.labels("mail").inc(routed)
        for number in touched:
            self._release(self._state.partitions[number])

    def _send_routed(self) -> None:
        """Routed batches out to their counting partitions, each tagged with this life and
        a number (``ROUTED_HEADER``). A live batch (its mark within ``EARLY_WITHIN_MS`` of the
        wall clock) whose partition this worker holds is taken at once, when the partition
        allows it (``CountingPartition.route``), and what it releases is counted. A
        backlog's batches make the round trip: counted from Kafka in large batches they go
        faster (measured: bench_worker)."""
        assert self._router is not None
        early: dict[int, CountingPartition] = {}
        now = wall_ms()
        for number, batch, record in self._router.batches(now):
            self._routed += 1
            tag = routed_tag(self._life, self._routed)
            on_delivery = self._outputs.on_delivery
            partition = self._state.partitions.get(number)
            if partition is not None:
                live = batch.mark_ms is not None and now - batch.mark_ms <= EARLY_WITHIN_MS
                entries = partition.route(batch, tag, live)
                if entries is not None:
                    on_delivery = partial(self._on_routed_delivery, entries)
                    early[number] = partition
            self._metrics.routed.labels("early" if number in early else "kafka").inc()
            self._outputs.produce(self._subject_topic, record,
                                  partition=number, on_delivery=on_delivery,
                                  headers={KIND_HEADER: BATCH_KIND, ROUTED_HEADER: tag})
        for partition in early.values():
            self._release(partition)

    def _on_routed_delivery(self, entries: list[Entry], error: Any, message: Any) -> None:
        if error is not None:
            self._outputs.on_delivery(error, message)
        else:
            CountingPartition.routed_delivered(message.offset(), entries)

    def _take_counting_record(self, message: Any, touched: set[int]) -> None:
        partition = self._state.partitions.get(message.partition())
        if partition is None:
            return  # revoked while the record was in flight
        headers = dict(message.headers() or ())
        kind = headers.get(KIND_HEADER)
        try:
            if partition.take(message.offset(), kind, message.key() or b"",
                              message.value() or b"", headers.get(ROUTED_HEADER)):
                touched.add(partition.number)
            self._metrics.consumed.labels("subject-batch" if kind == BATCH_KIND
                                          else "subject-lift").inc()
        except ValidationError as exc:
            self._outputs.set_aside(message, describe_validation_error(exc))
        except ValueError as exc:
            self._outputs.set_aside(message, f"{(message.key() or b'')[:200]!r}: {exc}")

    def _release(self, partition: CountingPartition) -> None:
        released = partition.release(partial(self._outputs.set_aside_entry, partition.number))
        if released:
            self._metrics.counted.inc(len(released))
            self._metrics.release_delay.observe(  # the oldest: the longest wait
                max(0.0, time.time() - released[0].ts_ms / 1000))

    # -- checkpoints and gauges -----------------------------------------------------------
    def _checkpoint(self, wait: bool = False) -> None:
        """What is routed out, everything acknowledged, then a ``Checkpoint`` begun: written
        in the cycles that follow, or at once when ``wait`` (a revocation, the end). One still
        being written is completed first."""
        assert self._producer is not None and self._router is not None
        self._finish_writing()
        began = time.perf_counter()
        self._send_routed()
        changelog.flush(self._producer)  # routed batches, actions, dead letters
        undelivered = self._outputs.undelivered
        if undelivered:  # nothing of this checkpoint may be committed: start again
            raise changelog.ChangelogError(
                f"Kafka refused {len(undelivered)} record(s) of the worker's; first: "
                f"{undelivered[0]}")
        router = self._router
        positions = [(topic, number, position) for topic, number in router.sources()
                     if (position := router.position((topic, number))) is not None]
        self._writing = Checkpoint.begin(self._producer, self._consumer, self._changelog,
                                         self._subject_topic, self._state.partitions.values(),
                                         positions)
        self._writing.busy_s += time.perf_counter() - began
        if wait:
            self._finish_writing()

    def _finish_writing(self) -> None:
        """Complete the checkpoint being written, if one is."""
        if self._writing is not None:
            self._writing.finish()
            self._written()

    def _written(self) -> None:
        """The checkpoint being written is complete."""
        assert self._writing is not None
        self._metrics.checkpoint.observe(self._writing.busy_s)
        self._writing = None
        # what the checkpoint freed (its encoded states, the decoded subjects its commit
        # dropped) back to the system, not left resident in the heap
        took = self._heap.trim_if_due(time.monotonic())
        if took is not None:
            self._metrics.heap_trim.observe(took)

    def _measure(self) -> None:
        """Held and forced entries, and the consumer's lag."""
        self._metrics.held.set(self._state.held())
        self._metrics.forced.set(self._state.forced())
        self._lag.measure(self._consumer)

    # -- rebalancing ----------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        assert self._producer is not None
        expected = [(topic, n) for topic in self._sources
                    for n in range(self._partition_count(topic))]
        self._state.share_held(sum(tp.topic == self._subject_topic for tp in assigned))
        out = []
        for tp in assigned:
            if tp.topic == self._subject_topic:
                resume = self._state.open(tp.partition, expected, self._producer,
                                          self._outputs.publish)
                out.append(TopicPartition(tp.topic, tp.partition,
                                          resume if resume is not None else OFFSET_STORED))
            else:
                out.append(tp)
                self._assigned_sources.add((tp.topic, tp.partition))
        consumer.assign(out)
        # librdkafka keeps a partition's pause across a new assignment
        consumer.resume([tp for tp in out if tp.topic != self._subject_topic])
        self.assigned.set()
        log.info("%s %s", ASSIGNED_LINE,
                 ", ".join(f"{tp.topic}/{tp.partition}" for tp in assigned) or "none")

    def _on_revoke(self, consumer: Consumer, revoked: list[TopicPartition]) -> None:
        if self._healthy:
            self._checkpoint(wait=True)
        self._close(revoked)

    def _on_lost(self, consumer: Consumer, lost: list[TopicPartition]) -> None:
        log.warning("partitions lost (the group moved on without this worker): %s",
                    ", ".join(f"{tp.topic}/{tp.partition}" for tp in lost))
        self._close(lost)

    def _close(self, partitions: list[TopicPartition]) -> None:
        assert self._router is not None
        gone = {(tp.topic, tp.partition) for tp in partitions}
        if self._writing is not None:  # not written for partitions lost (their next owner
            # restores the last complete checkpoint); a revocation finished it first
            self._writing.forget({n for topic, n in gone if topic == self._subject_topic}, gone)
        for source in gone:
            self._lag.ends.pop(source, None)
        self._assigned_sources -= gone
        self._pacer.forget(gone)
        sources = [(tp.topic, tp.partition) for tp in partitions if tp.topic != self._subject_topic]
        self._router.forget(sources)
        for partition in self._state.partitions.values():
            for source in sources:
                partition.forget_source(source)
        for tp in partitions:
            if tp.topic == self._subject_topic:
                self._state.close(tp.partition)
