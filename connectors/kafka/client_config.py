"""librdkafka settings for confluent-kafka clients, built from the one KafkaSettings model.

Every producer uses ``murmur2_random``, the partitioner of the Java client and
of aiokafka (Faust), so a subject's records land on the same partition whoever
writes them; librdkafka's default would scatter them.
"""

from __future__ import annotations

import socket
from typing import Any

from connectors.kafka.client_logs import kafka_logger
from connectors.kafka.errors import KafkaNotConfigured
from schemas.config import KafkaSettings


def common_config(settings: KafkaSettings) -> dict[str, Any]:
    if not settings.bootstrap_servers:
        raise KafkaNotConfigured(
            "kafka.bootstrap_servers is not set (set it in the config or "
            "FLOODGATE_KAFKA__BOOTSTRAP_SERVERS)")
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": settings.client_id,
        "security.protocol": settings.security_protocol.lower(),
        "logger": kafka_logger(),  # to Python logging, throttled, instead of raw stderr
    }
    optional = {
        "sasl.mechanism": settings.sasl_mechanism,
        "sasl.username": settings.sasl_username,
        "sasl.password": settings.sasl_password.get_secret_value() if settings.sasl_password else None,
        "ssl.ca.location": settings.ssl_ca_location,
        "ssl.certificate.location": settings.ssl_certificate_location,
        "ssl.key.location": settings.ssl_key_location,
    }
    config.update({k: v for k, v in optional.items() if v is not None})
    return config


def producer_config(settings: KafkaSettings, **overrides: Any) -> dict[str, Any]:
    """A fully acknowledged producer that keeps its records' order through retries:
    idempotent, or else one request in flight (its retries may then duplicate a record)."""
    config = common_config(settings)
    config.update({
        "partitioner": "murmur2_random",
        "enable.idempotence": settings.idempotent_producers,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
    })
    if not settings.idempotent_producers:
        config["max.in.flight.requests.per.connection"] = 1
    config.update(overrides)
    return config


def consumer_config(settings: KafkaSettings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """A group consumer that commits only what the caller says it has handled."""
    config = common_config(settings)
    config.update({
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
    })
    config.update(overrides)
    return config


def static_member(group_id: str, instance: str | None = None) -> dict[str, Any]:
    """Settings for a group member that comes back within seconds after a restart, even one
    that never said goodbye (Ctrl-C during its first join, ``kill -9``): static membership.

    With ``group.instance.id`` the coordinator hands a restarted member the identity and
    partitions of its previous life at once (Apache Kafka >= 2.3, and Tansu), instead of
    waiting for the old member: without it Kafka waits up to the old member's rebalance
    timeout (``max.poll.interval.ms``, 5 minutes by default), and Tansu was seen not to let a
    new member in at all after the old one left mid-join. The id must be unique among the
    group's live members: by default the host's name and the group; ``instance`` names a
    second process of the same group on the same host. A live duplicate is fenced by the
    broker (a fatal error the caller reports). A member that stops for good is dropped
    after ``session.timeout.ms`` (static members do not leave the group on close)."""
    name = instance or f"{socket.gethostname()}-{group_id}"
    return {"group.instance.id": name[:249],
            "session.timeout.ms": 10_000, "heartbeat.interval.ms": 1_000}
