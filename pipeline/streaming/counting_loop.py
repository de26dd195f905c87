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
4. every ``worker.tick_interval_s``: a checkpoint (``changelog``: changes,
   marker, local RocksDB, then the offsets commit); in the same interval,
   each partition's expiries and idle sweep at its watermark, partitions at
   different moments so the work does not pile up in one cycle.

Nothing in Faust's per-record stream or table machinery is on this path.
Records that cannot be used go to the dead-letter topic and the loop goes on.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_STORED, Consumer, KafkaError, Producer, TopicPartition
from pydantic import ValidationError

from connectors.kafka.client_config import consumer_config, producer_config
from connectors.kafka.client_failures import RestartBudget
from connectors.kafka.produce import produce_waiting
from connectors.kafka.topics import changelog_topic
from pipeline.engine.evaluator import ThresholdEngine
from pipeline.streaming import changelog, gc_tuning
from pipeline.streaming.counter import SubjectCounter
from pipeline.streaming.counting_partition import CountingPartition
from pipeline.streaming.event_order import Entry, EventOrder, OrderCheckpoint, Source
from pipeline.streaming.metrics import WorkerMetrics
from pipeline.streaming.partition_store import PartitionStore
from pipeline.streaming.router import Router, SubjectPartitioner
from pipeline.streaming.store_options import StoreOptions
from schemas.config import FloodgateConfig
from schemas.direction import DirectionRules
from schemas.events import ActionEvent, DeadLetter
from schemas.subject_batch import BATCH_KIND, KIND_HEADER, ROUTED_HEADER, routed_tag
from schemas.time_ms import to_ms
from schemas.validation import describe_validation_error

log = logging.getLogger("floodgate.worker")

BATCH = 5_000  # records per cycle at most
ASSIGNED_LINE = "counting partitions assigned:"  # logged at each assignment (tests wait for it)
POLL_S = 0.05  # longest wait for a first record (ticks run between waits)
EARLY_WITHIN_MS = 30_000  # a routed batch this close to the wall clock is counted at once
RESTART_PAUSE_S = 5.0  # after a failure, before new clients connect
STALL_S = 0.3  # a cycle of the counting loop this long is logged, with where the time went,
STALL_LOG_EVERY_S = 10.0  # at most this often


def _phase(number: int) -> float:
    """Where in the tick interval a counting partition's ticks fall: spread over it."""
    return (number * 0.618034) % 1.0


def counting_dir(data_dir: str) -> Path:
    """The counting partitions' RocksDB stores, under ``worker.data_dir``."""
    return Path(data_dir) / "counting"


@dataclass
class _Cycle:
    """What one consume cycle touched."""

    partitions: set[int] = field(default_factory=set)


class CountingLoop:
    def __init__(self, config: FloodgateConfig, metrics: WorkerMetrics) -> None:
        self._config = config
        settings, topics = config.worker, config.topics
        self._metrics = metrics
        self._engine = ThresholdEngine(config)
        self._subject_topic = topics.subject_events
        self._changelog = changelog_topic(settings.app_id)
        self._sources = [topics.mail_events]
        if settings.count_policy_events:
            self._sources.append(topics.policy_events)
        if self._engine.counts_deliveries:  # a threshold counts delivery attempts
            self._sources.append(topics.deliveries)
        self._data = counting_dir(settings.data_dir)
        self._options = StoreOptions.sized(settings.rocksdb_write_buffer_mib,
                                           settings.rocksdb_block_cache_mib).to_rocksdict()
        self._tick_s = settings.tick_interval_s
        self._lateness_ms = round(settings.live_lateness_s * 1000)
        self._max_held = settings.max_held_entries
        self._held_per_partition = self._max_held
        self._partitions: dict[int, CountingPartition] = {}
        self._stop = threading.Event()
        self._consumer_settings = consumer_config(config.kafka, settings.app_id, **{
            "enable.partition.eof": True,
            # heartbeats come from librdkafka's own thread; 30 s outlives a short broker
            # outage (as the Faust worker's session did) and moves a dead worker's partitions
            "session.timeout.ms": 30_000,
            "heartbeat.interval.ms": 3_000,
            "max.poll.interval.ms": 900_000,  # a restore of a large partition runs in the callback
            "fetch.wait.max.ms": settings.fetch_wait_ms,
            "queued.max.messages.kbytes": 65_536,
        })
        self._restore_settings = consumer_config(config.kafka, f"{settings.app_id}-restore", **{
            "enable.auto.offset.store": False, "fetch.wait.max.ms": settings.fetch_wait_ms})
        self.assigned = threading.Event()  # joined the group and got partitions (readiness)
        self._router: Router | None = None
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self._healthy = True  # False once the clients failed: revoking then skips the checkpoint
        # where the consumer found each partition's end: librdkafka's position stays unknown
        # for a partition that had nothing to read since its assignment (restart after catch-up)
        self._ends: dict[tuple[str, int], int] = {}
        self._lead_ms = round(settings.max_source_lead_s * 1000)
        self._assigned_sources: set[Source] = set()
        self._paused: set[Source] = set()  # ahead of the slowest source (see ``_pace``)
        self._undelivered: list[str] = []  # routed batches, actions, dead letters Kafka refused
        self._life, self._routed = "", 0  # this life of the clients; batches it took early

    @property
    def consumer_settings(self) -> dict[str, Any]:
        """The counting consumer's librdkafka settings (Kafka security included)."""
        return dict(self._consumer_settings)

    # -- lifecycle ------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """The thread's body, until ``stop``. A failure of the Kafka clients (a fatal producer
        error after a broker restart, say) costs what was counted since the last checkpoint:
        the loop starts again with new clients, as a restarted worker would, and resumes from
        the changelog and the committed offsets. Raises when it keeps failing."""
        budget = RestartBudget()  # more failures than it allows: the worker exits
        while not self._stop.is_set():
            try:
                self._run_clients()
                return
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
        kafka = self._config.kafka
        self._healthy = True
        self._undelivered = []
        self._life, self._routed = uuid.uuid4().hex[:12], 0  # tags batches taken early
        self._producer = Producer(producer_config(kafka, **{
            "linger.ms": 5, "queue.buffering.max.messages": 500_000,
            "queue.buffering.max.kbytes": 262_144}))
        self._consumer = Consumer(self._consumer_settings)
        try:
            self._count_until_stopped()
        except BaseException:
            self._healthy = False  # no checkpoint of what the failed clients left behind
            raise
        finally:
            self.assigned.clear()
            for partition in list(self._partitions.values()):
                partition.store.close()
            self._partitions.clear()
            self._ends.clear()
            self._assigned_sources.clear()
            self._paused.clear()
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
        subject_partitions = self._partition_count(self._subject_topic)
        directions = (DirectionRules(self._config.networks)
                      if self._config.worker.count_policy_events else None)
        topics = self._config.topics
        self._router = Router(self._engine, SubjectPartitioner(subject_partitions),
                              self._lateness_ms, directions,
                              topics.policy_events if directions else None,
                              topics.deliveries if self._engine.counts_deliveries else None)
        self._consumer.subscribe([*self._sources, self._subject_topic],
                                 on_assign=self._on_assign, on_revoke=self._on_revoke,
                                 on_lost=self._on_lost)
        last_checkpoint = last_stall_log = time.monotonic()
        while not self._stop.is_set():
            started = time.monotonic()
            messages = self._next_records()
            fetched = time.monotonic()
            if messages:
                self._handle(messages)
                self._pace()
            handled = time.monotonic()
            self._send_routed()
            self._producer.poll(0)
            sent = time.monotonic()
            if sent - last_checkpoint >= self._tick_s:
                last_checkpoint = sent
                self._checkpoint()
                self._measure()
            checkpointed = time.monotonic()
            self._tick_due(checkpointed)
            gc_tuning.collect_if_due(checkpointed)
            ticked = time.monotonic()
            if ticked - started > STALL_S and ticked - last_stall_log >= STALL_LOG_EVERY_S:
                last_stall_log = ticked  # where detection time goes (see bench_worker)
                log.info("counting cycle took %.0f ms: fetch %.0f, route %.0f (%d records), "
                         "send and count %.0f, checkpoint and gauges %.0f, ticks %.0f",
                         (ticked - started) * 1000, (fetched - started) * 1000,
                         (handled - fetched) * 1000, len(messages), (sent - handled) * 1000,
                         (checkpointed - sent) * 1000, (ticked - checkpointed) * 1000)
        self._checkpoint()

    def _next_records(self) -> list[Any]:
        """The records fetched so far, once there is one. ``consume(n, timeout)`` would wait
        the whole timeout for n records: on live traffic that wait is added to every
        message's detection time, while a backlog fills the batch either way."""
        assert self._consumer is not None
        first = self._consumer.poll(POLL_S)
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
        cycle = _Cycle()
        subject_topic = self._subject_topic
        route = self._router.route
        routed = 0
        for message in messages:
            error = message.error()
            topic = message.topic()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._ends[(topic, message.partition())] = message.offset()
                    if topic != subject_topic:
                        self._router.at_end((topic, message.partition()))
                else:
                    log.warning("consumer: %s", error.str())
                continue
            if topic == subject_topic:
                self._take_counting_record(message, cycle)
                continue
            source = (topic, message.partition())
            try:
                route(source, message.offset(), message.value() or b"")
                routed += 1
            except ValidationError as exc:
                self._router.skipped(source, message.offset())
                self._set_aside(message, describe_validation_error(exc))
            except ValueError as exc:
                self._router.skipped(source, message.offset())
                self._set_aside(message, str(exc))
        if routed:
            self._metrics.consumed.labels("mail").inc(routed)
        for number in cycle.partitions:
            self._release(self._partitions[number])

    def _pace(self) -> None:
        """Once three quarters of ``max_held_entries`` are held, pause the source partitions
        that run ahead of the slowest (``max_source_lead_s``); resume them once it has come
        half way, or the held entries are down to half. Past the bound itself entries would
        be counted out of order; this comes first. librdkafka drops a paused partition's
        prefetched records and fetches them again from the next unread offset on resume:
        pausing costs fetches, so it waits until memory is at stake."""
        assert self._router is not None and self._consumer is not None
        held = sum(p.order.held for p in self._partitions.values())
        pause = resume = set()
        if held > self._max_held * 3 // 4:
            pause = self._router.ahead(self._assigned_sources, self._lead_ms) - self._paused
        if self._paused:
            resume = (self._paused if held <= self._max_held // 2 else
                      self._paused - self._router.ahead(self._assigned_sources,
                                                        self._lead_ms // 2))
        if pause:
            self._consumer.pause([TopicPartition(t, p) for t, p in pause])
        if resume:
            self._consumer.resume([TopicPartition(t, p) for t, p in resume])
        if pause or resume:
            self._paused = (self._paused | pause) - resume
            self._metrics.paused.set(len(self._paused))

    def _send_routed(self) -> None:
        """Routed batches out to their counting partitions, each tagged with this life and
        a number (``ROUTED_HEADER``). A live batch (its mark within ``EARLY_WITHIN_MS`` of the
        wall clock) whose partition this worker holds is taken at once, when the partition
        allows it (``CountingPartition.route``), and what it releases is counted. A
        backlog's batches make the round trip: counted from Kafka in large batches they go
        faster (measured: bench_worker)."""
        assert self._router is not None and self._producer is not None
        early: dict[int, CountingPartition] = {}
        wall_ms = int(time.time() * 1000)
        for number, batch in self._router.batches(wall_ms):
            self._routed += 1
            tag = routed_tag(self._life, self._routed)
            on_delivery = self._on_delivery
            partition = self._partitions.get(number)
            if partition is not None:
                live = batch.mark_ms is not None and wall_ms - batch.mark_ms <= EARLY_WITHIN_MS
                entries = partition.route(batch, tag, live)
                if entries is not None:
                    on_delivery = partial(self._on_routed_delivery, entries)
                    early[number] = partition
            self._metrics.routed.labels("early" if number in early else "kafka").inc()
            self._produce(self._subject_topic, batch.model_dump_json().encode(),
                          partition=number, on_delivery=on_delivery,
                          headers={KIND_HEADER: BATCH_KIND, ROUTED_HEADER: tag})
        for partition in early.values():
            self._release(partition)

    def _take_counting_record(self, message: Any, cycle: _Cycle) -> None:
        partition = self._partitions.get(message.partition())
        if partition is None:
            return  # revoked while the record was in flight
        headers = dict(message.headers() or ())
        kind = headers.get(KIND_HEADER)
        try:
            if partition.take(message.offset(), kind, message.key() or b"",
                              message.value() or b"", headers.get(ROUTED_HEADER)):
                cycle.partitions.add(partition.number)
            self._metrics.consumed.labels("subject-batch" if kind == BATCH_KIND
                                          else "subject-lift").inc()
        except ValidationError as exc:
            self._set_aside(message, describe_validation_error(exc))
        except ValueError as exc:
            self._set_aside(message, f"{(message.key() or b'')[:200]!r}: {exc}")

    def _release(self, partition: CountingPartition) -> None:
        released = partition.release(partial(self._set_aside_entry, partition.number))
        if released:
            self._metrics.counted.inc(len(released))
            self._metrics.release_delay.observe(  # the oldest: the longest wait
                max(0.0, time.time() - released[0].mail.ts_ms / 1000))

    # -- output ---------------------------------------------------------------------------
    def _on_delivery(self, error: Any, message: Any) -> None:
        if error is not None:
            self._undelivered.append(f"{message.topic()}: {error}")

    def _on_routed_delivery(self, entries: list[Entry], error: Any, message: Any) -> None:
        if error is not None:
            self._on_delivery(error, message)
        else:
            CountingPartition.routed_delivered(message.offset(), entries)

    def _produce(self, topic: str, value: bytes, key: bytes | None = None,
                 partition: int | None = None, headers: dict[str, bytes] | None = None,
                 timestamp_ms: int | None = None, on_delivery: Any = None) -> None:
        assert self._producer is not None
        extra: dict[str, Any] = {"on_delivery": on_delivery or self._on_delivery}
        if partition is not None:
            extra["partition"] = partition
        if headers:
            extra["headers"] = headers
        if timestamp_ms is not None:
            extra["timestamp"] = timestamp_ms
        produce_waiting(self._producer, topic, value=value, key=key, **extra)

    def _publish(self, action: ActionEvent) -> None:
        self._metrics.actions.labels(action.action.value, action.state.value).inc()
        self._produce(self._config.topics.actions, action.model_dump_json().encode(),
                      key=action.key.encode(), timestamp_ms=to_ms(action.ts))

    def _dead_letter(self, topic: str, partition: int, offset: int, error: str,
                     raw: bytes) -> None:
        dead = DeadLetter(ts=datetime.now(UTC), source_topic=topic, partition=partition,
                          offset=offset, error=error[:2000],
                          raw_base64=base64.b64encode(raw).decode())
        self._produce(self._config.topics.dead_letter, dead.model_dump_json().encode(),
                      key=f"{topic}:{partition}".encode())
        self._metrics.dead_letters.inc()
        log.warning("dead-lettered %s/%d@%d: %s", topic, partition, offset, error[:300])

    def _set_aside(self, message: Any, error: str) -> None:
        self._dead_letter(message.topic(), message.partition(), message.offset(), error,
                          message.value() or b"")

    def _set_aside_entry(self, number: int, entry: Entry, error: str) -> None:
        """An entry that cannot be counted, named by the source record it came from (its
        subject-events record may not be stored yet: see ``CountingPartition.route``)."""
        self._dead_letter(entry.source[0], entry.source[1], entry.offset,
                          f"subject {entry.subject[:200]!r} (counting partition {number}): "
                          f"{error}", entry.subject.encode())

    # -- checkpoints and ticks ------------------------------------------------------------
    def _checkpoint(self) -> None:
        """Changes to the changelog, then markers, then RocksDB, then the offsets commit."""
        with self._metrics.checkpoint.time():
            self._write_checkpoint()

    def _write_checkpoint(self) -> None:
        assert self._producer is not None and self._consumer is not None
        assert self._router is not None
        self._send_routed()
        changelog.flush(self._producer)  # routed batches, actions, dead letters
        if self._undelivered:  # nothing of this checkpoint may be committed: start again
            raise changelog.ChangelogError(
                f"Kafka refused {len(self._undelivered)} record(s) of the worker's; first: "
                f"{self._undelivered[0]}")
        busy = [p for p in self._partitions.values() if p.touched or p.store.pending]
        delivery = changelog.Delivery()
        changes = {}
        for partition in busy:
            changes[partition.number] = partition.store.changes()
            changelog.write_changes(self._producer, self._changelog, partition.number,
                                    changes[partition.number], delivery)
        changelog.flush(self._producer)
        markers = {}
        for partition in busy:
            markers[partition.number] = partition.marker()
            changelog.write_marker(self._producer, self._changelog, partition.number,
                                   markers[partition.number], delivery)
        changelog.flush(self._producer)
        delivery.check()
        commits = []
        for partition in busy:
            partition.store.write(changes[partition.number], {
                "changelog_next": delivery.last[partition.number] + 1,
                "marker": markers[partition.number]})
            partition.touched = False
            resume = markers[partition.number]["resume"]
            if resume is not None:
                commits.append(TopicPartition(self._subject_topic, partition.number, resume))
        for topic, number in self._router.sources():
            position = self._router.position((topic, number))
            if position is not None:
                commits.append(TopicPartition(topic, number, position))
        if commits:
            try:
                self._consumer.commit(offsets=commits, asynchronous=False)
            except Exception as exc:  # a rebalance under way: the next checkpoint commits
                log.warning("offset commit failed: %s", exc)

    def _tick_due(self, now: float) -> None:
        """Expiries and the idle sweep, at its watermark, of each partition whose turn it is.
        Each partition has its own phase within ``tick_interval_s`` (``_open``): ticking them
        all at once stalled live counting for up to 0.1 s a second (bench_worker)."""
        for partition in self._partitions.values():
            if partition.next_tick > now:
                continue
            # its next moment after now: one interval on, more after a long cycle
            partition.next_tick += self._tick_s * ((now - partition.next_tick) // self._tick_s + 1)
            watermark = partition.order.watermark()
            if watermark is None:
                continue
            frontier = partition.order.frontier
            report = partition.counter.tick(watermark, frontier[0] if frontier else None)
            self._metrics.dropped_subjects.inc(report.dropped)

    def _measure(self) -> None:
        """Held and forced entries, and the consumer's lag."""
        self._metrics.held.set(sum(p.order.held for p in self._partitions.values()))
        self._metrics.forced.set(sum(p.order.forced for p in self._partitions.values()))
        self._measure_lag()

    def _measure_lag(self) -> None:
        assert self._consumer is not None
        try:
            assignment = self._consumer.assignment()
            positions = self._consumer.position(assignment)
        except Exception:  # between assignments
            return
        lag: dict[str, int] = {}
        for tp in positions:
            position = tp.offset if tp.offset >= 0 else self._ends.get((tp.topic, tp.partition), -1)
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high is not None and high >= 0 and position >= 0:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - position)
        for topic, behind in lag.items():
            self._metrics.lag.labels(topic).set(behind)

    # -- rebalancing ----------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, assigned: list[TopicPartition]) -> None:
        assert self._producer is not None
        sources = [self._all_partitions(topic) for topic in self._sources]
        expected = [s for group in sources for s in group]
        counting = sum(tp.topic == self._subject_topic for tp in assigned)
        # the bound on held entries is the worker's, shared by the partitions it holds
        self._held_per_partition = max(1_000, self._max_held // max(1, counting))
        out = []
        for tp in assigned:
            if tp.topic == self._subject_topic:
                resume = self._open(tp.partition, expected)
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

    def _all_partitions(self, topic: str) -> list[Source]:
        return [(topic, n) for n in range(self._partition_count(topic))]

    def _open(self, number: int, expected: list[Source]) -> int | None:
        """Open and restore a counting partition; the offset to resume reading it from."""
        assert self._producer is not None
        store = PartitionStore(self._data / f"p{number}", self._options,
                               self._config.worker.decoded_subjects)
        marker = changelog.restore(store, self._producer, self._restore_settings,
                                   self._changelog, number)
        try:
            checkpoint = OrderCheckpoint.from_json(marker.get("order") or {})
        except ValueError as exc:
            log.error("partition %d: %s; counting resumes without it", number, exc)
            checkpoint = OrderCheckpoint()
        order = EventOrder(expected, checkpoint, self._held_per_partition)
        counter = SubjectCounter(self._engine, store, self._publish)
        partition = CountingPartition(number, store, order, counter,
                                      lift_offset=int(marker.get("lift_offset", -1)))
        partition.next_tick = time.monotonic() + self._tick_s * _phase(number)
        self._partitions[number] = partition
        resume = marker.get("resume")
        return resume if isinstance(resume, int) else None

    def _on_revoke(self, consumer: Consumer, revoked: list[TopicPartition]) -> None:
        if self._healthy:
            self._checkpoint()
        self._close(revoked)

    def _on_lost(self, consumer: Consumer, lost: list[TopicPartition]) -> None:
        log.warning("partitions lost (the group moved on without this worker): %s",
                    ", ".join(f"{tp.topic}/{tp.partition}" for tp in lost))
        self._close(lost)

    def _close(self, partitions: list[TopicPartition]) -> None:
        assert self._router is not None
        for tp in partitions:
            self._ends.pop((tp.topic, tp.partition), None)
            self._assigned_sources.discard((tp.topic, tp.partition))
            self._paused.discard((tp.topic, tp.partition))
        self._metrics.paused.set(len(self._paused))
        sources = [(tp.topic, tp.partition) for tp in partitions if tp.topic != self._subject_topic]
        self._router.forget(sources)
        for partition in self._partitions.values():
            for source in sources:
                partition.forget_source(source)
        for tp in partitions:
            if tp.topic == self._subject_topic and tp.partition in self._partitions:
                self._partitions.pop(tp.partition).store.close()
