"""Create topics with explicit partition counts (never rely on broker auto-creation).

Faust refuses to count into a table whose changelog has a different partition
count from its source topic, and a broker's auto-created default rarely
matches: create every topic up front.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from connectors.kafka.client_config import common_config
from schemas.config import FloodgateConfig, KafkaSettings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int = 1
    config: dict[str, str] = field(default_factory=dict)  # e.g. cleanup.policy=compact


class TopicError(RuntimeError):
    """A topic could not be created."""


def ensure_topics(settings: KafkaSettings, specs: list[TopicSpec], timeout_s: float = 30.0) -> None:
    """Create each topic that does not exist yet; existing topics are left as they are."""
    admin = AdminClient(common_config(settings))
    futures = admin.create_topics(
        [NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication_factor,
                  config=s.config) for s in specs],
        operation_timeout=timeout_s, request_timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while not all(f.done() for f in futures.values()) and time.monotonic() < deadline:
        admin.poll(0.2)  # hands the client's log lines (broker unreachable, ...) to logging
    for name, future in futures.items():
        try:
            future.result(max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise TopicError(f"cannot create topic {name}: no answer from Kafka in "
                             f"{timeout_s:.0f} s") from None
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise TopicError(f"cannot create topic {name}: {error.str()}") from None


def changelog_topic(app_id: str) -> str:
    """The worker's counting state: one partition per counting partition."""
    return f"{app_id}-counts-changelog"


def floodgate_topics(config: FloodgateConfig) -> list[TopicSpec]:
    """Every topic Floodgate uses, for creation when missing: the worker's partition count
    (the worker's internal topic must be co-partitioned with its sources), the dead letters
    in one. Operators who create them first keep their own settings."""
    topics, partitions = config.topics, config.worker.partitions
    return [TopicSpec(name, partitions) for name in (
        topics.mail_events, topics.subject_events, topics.actions, topics.policy_events,
        topics.deliveries)] + [
        TopicSpec(topics.dead_letter, 1),
        # the worker's state: one partition per counting partition, the newest value per key
        TopicSpec(changelog_topic(config.worker.app_id), partitions,
                  config={"cleanup.policy": "compact"}),
    ]
