"""``floodgate tail``: follow a live mail log and publish its events to Kafka without loss.

The checkpoint (inode + offset, written atomically) only ever names a place
from which nothing is lost: the start of the oldest message not yet reported
(the tracker's ``resume_position``), and only once Kafka confirmed every
record produced from the lines before it. A ``kill -9`` at any moment
therefore loses nothing; a restart may publish again what it had already
published, with the same ``event_id``/``delivery_id``, which consumers drop.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from connectors.kafka.client_failures import RestartBudget, is_fatal
from connectors.kafka.produce import produce_waiting
from connectors.postfix_log.follow import FileFollower, Position, StartAt
from connectors.postfix_log.reader import LogReader
from connectors.postfix_log.tracker import Output
from connectors.postfix_log.tracker_stats import TrackerStats
from schemas.config import FloodgateConfig, Topics
from schemas.events import MailEvent
from schemas.time_ms import to_ms

log = logging.getLogger("floodgate.tail")
CHECKPOINT_EVERY_S = 1.0


class CheckpointError(RuntimeError):
    """The checkpoint file cannot be read or written."""


def load_checkpoint(path: Path) -> StartAt | None:
    try:
        data = json.loads(path.read_text())
        return StartAt(int(data["inode"]), int(data["offset"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint ({exc}); move it away to start "
                              "over from the beginning of the log") from None


def save_checkpoint(path: Path, at: StartAt) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as f:
        json.dump({"inode": at.inode, "offset": at.offset}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def partition_key(event: Output) -> str:
    """Records of one sender land on one partition: SASL account, else sender, else client.

    A delivery attempt goes under its message's sender too, so one sender's attempts keep
    the log's order: the worker orders attempts of one millisecond by their offsets, as
    replay does by the log (keyed by message, they crossed partitions, and the two could
    disagree on the evidence of an action).
    """
    return event.sasl_username or event.sender or event.client_ip or event.event_id


Restarted = tuple[LogReader, FileFollower, Producer]


@dataclass
class _Batch:
    resume: tuple[int, int]
    pending: int


class Tailer:
    def __init__(self, reader: LogReader, follower: FileFollower, producer: Producer,
                 topics: Topics, checkpoint: Path, stop: threading.Event,
                 restart: Callable[[], Restarted] | None = None) -> None:
        self._restart = restart  # a new reader, follower and producer from the checkpoint
        self._budget = RestartBudget()
        self.restarts = 0
        self._reader = reader
        self._follower = follower
        self._producer = producer
        self._topics = topics
        self._checkpoint = checkpoint
        self._stop = stop
        self._batches: deque[_Batch] = deque()
        self._saved: StartAt | None = None
        self._last_save = 0.0
        self.published = 0
        self.failed = 0
        self.parser_errors = 0
        self._new_config: FloodgateConfig | None = None  # from SIGHUP: applied between lines

    def reconfigure(self, config: FloodgateConfig) -> None:
        """Read by ``config`` (networks, spam replies, reply texts, re-injection services) from
        the next line on (any thread or signal handler may call this)."""
        self._new_config = config

    @property
    def stats(self) -> TrackerStats:
        return self._reader.tracker.stats

    def run(self) -> None:
        """Until ``stop``. A producer that failed for good (a fatal librdkafka error) is
        replaced: reading starts again at the checkpoint, which never passes a record Kafka
        has not acknowledged (some records go out twice; their event ids tell)."""
        while True:
            try:
                self._run_producer()
                return
            except Exception as exc:
                if self._restart is None or not is_fatal(exc) or not self._budget.spend():
                    raise
                log.error("the Kafka producer failed for good (%s); reading again from the "
                          "checkpoint with a new one (%d of %d allowed in %.0f s)", exc,
                          self._budget.used, self._budget.limit, self._budget.window_s)
                self.restarts += 1
                self._batches.clear()
                self._reader, self._follower, self._producer = self._restart()

    def _run_producer(self) -> None:
        for line, position in self._follower.lines():
            if line is not None:
                outputs = self._read(line, position)
                resume = self._reader.tracker.resume_position()
                after = (position[0], position[1] + len(line.encode("utf-8", "replace")))
                batch = _Batch(tuple(resume) if resume else after, 0)  # type: ignore[arg-type]
                self._batches.append(batch)
                for output in outputs:
                    self._publish(output, batch)
            for note in self._follower.notes:
                log.warning(note)
            self._follower.notes.clear()
            self._producer.poll(0)
            self._maybe_checkpoint(force=line is None)
        self._producer.flush(30)
        self._maybe_checkpoint(force=True)

    def _read(self, line: str, position: Position) -> list[Output]:
        if self._new_config is not None:
            config, self._new_config = self._new_config, None
            self._reader.reconfigure(config)
        try:
            return self._reader.feed_line(line, position)
        except Exception:  # a parser bug must not stop the mail log: skip the line, say so
            self.parser_errors += 1
            if self.parser_errors <= 10 or self.parser_errors % 1000 == 0:
                log.exception("a Floodgate bug: line skipped (%d so far), please report it: %r",
                              self.parser_errors, line[:300])
            return []

    def _publish(self, output: Output, batch: _Batch) -> None:
        topic = self._topics.mail_events if isinstance(output, MailEvent) else self._topics.deliveries
        value = output.model_dump_json(exclude_none=True).encode()
        batch.pending += 1

        generation = self.restarts

        def delivered(error: Any, _message: Any) -> None:
            if generation != self.restarts:
                return  # a replaced producer's: the checkpoint is read again anyway
            if error is not None:
                self.failed += 1
                log.error("Kafka refused a %s record: %s", topic, error)
                return  # the batch stays pending: the checkpoint never passes it
            batch.pending -= 1
            self.published += 1

        # Kafka slow or away: stop reading until it catches up
        produce_waiting(self._producer, topic, 0.5, self._stop.is_set, value=value,
                        key=partition_key(output).encode(), timestamp=to_ms(output.ts),
                        on_delivery=delivered)

    def _maybe_checkpoint(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._last_save < CHECKPOINT_EVERY_S:
            return
        resume: tuple[int, int] | None = None
        while self._batches and self._batches[0].pending == 0:
            resume = self._batches.popleft().resume
        if resume is None:
            return
        # Never move past a batch still waiting for Kafka, nor past an open message.
        if self._batches:
            resume = min(resume, self._batches[0].resume)
        inode = self._follower.inode_of(resume[0])
        if inode is None:
            return
        at = StartAt(inode, resume[1])
        if at != self._saved:
            save_checkpoint(self._checkpoint, at)
            self._saved = at
            self._follower.forget_before(resume[0])
        self._last_save = now
