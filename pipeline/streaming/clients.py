"""The counting loop's Kafka clients: their settings, and how a new life of them is made
(passed to ``CountingLoop`` so tests can hand it their own)."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer

from connectors.kafka.client_config import consumer_config, producer_config, static_member
from schemas.config import FloodgateConfig

# A new life's clients (producer, consumer) from the producer's and the consumer's settings.
Clients = Callable[[dict[str, Any], dict[str, Any]], tuple[Producer, Consumer]]


def kafka_clients(producer_settings: dict[str, Any],
                  consumer_settings: dict[str, Any]) -> tuple[Producer, Consumer]:
    return Producer(producer_settings), Consumer(consumer_settings)


def worker_instance(config: FloodgateConfig) -> str:
    """This worker's static member name in its groups: the host and its state folder, which
    no two live workers share (RocksDB locks it), and which a restarted worker keeps."""
    folder = str(Path(config.worker.data_dir).resolve())
    return f"{socket.gethostname()}-{hashlib.sha256(folder.encode()).hexdigest()[:10]}"


def counting_consumer_settings(config: FloodgateConfig) -> dict[str, Any]:
    """The group consumer of the sources and ``subject-events`` (group ``worker.app_id``): a
    static member, so a restarted worker (``kill -9`` included) is given its partitions back
    at once; a dead one's move to the others after 10 s without heartbeats."""
    group = config.worker.app_id
    return consumer_config(config.kafka, group, **{
        **static_member(group, worker_instance(config)),
        "enable.partition.eof": True,
        "max.poll.interval.ms": 900_000,  # a restore of a large partition runs in the callback
        "fetch.wait.max.ms": config.worker.fetch_wait_ms,
        "queued.max.messages.kbytes": 65_536,
    })


def counting_producer_settings(config: FloodgateConfig) -> dict[str, Any]:
    """Routed batches, actions, dead letters and the changelog."""
    return producer_config(config.kafka, **{
        "linger.ms": 5, "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 262_144})


def restore_consumer_settings(config: FloodgateConfig) -> dict[str, Any]:
    """Reads a changelog partition on assignment (no offsets stored)."""
    return consumer_config(config.kafka, f"{config.worker.app_id}-restore", **{
        "enable.auto.offset.store": False, "fetch.wait.max.ms": config.worker.fetch_wait_ms})
