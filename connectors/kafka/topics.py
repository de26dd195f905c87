"""Create topics with explicit partition counts (never rely on broker auto-creation).

Faust refuses to count into a table whose changelog has a different partition
count from its source topic, and a broker's auto-created default rarely
matches: create every topic up front.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
)

from connectors.kafka.client_config import common_config
from connectors.kafka.errors import TopicError
from schemas.config import FloodgateConfig, KafkaSettings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int = 1
    config: dict[str, str] = field(default_factory=dict)  # e.g. cleanup.policy=compact
    exact_partitions: bool = False  # co-partitioned with the worker's counting partitions



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


DAY_MS = 86_400_000
WEEK = {"retention.ms": str(7 * DAY_MS)}


def floodgate_topics(config: FloodgateConfig, replication_factor: int = 1) -> list[TopicSpec]:
    """Every topic Floodgate uses, as it should be on a production cluster: the worker's
    partition count (its internal topic and changelog are co-partitioned), the dead letters
    in one; events kept a week, routed copies a day, the actions compacted (the latest
    state per subject kept) with 30 days of history, the counting state compacted."""
    topics, partitions, rf = config.topics, config.worker.partitions, replication_factor
    return [
        TopicSpec(topics.mail_events, partitions, rf, dict(WEEK)),
        TopicSpec(topics.policy_events, partitions, rf, dict(WEEK)),
        TopicSpec(topics.deliveries, partitions, rf, dict(WEEK)),
        TopicSpec(topics.subject_events, partitions, rf, {"retention.ms": str(DAY_MS)},
                  exact_partitions=True),
        TopicSpec(topics.actions, partitions, rf, {
            "cleanup.policy": "compact,delete", "retention.ms": str(30 * DAY_MS),
            "min.compaction.lag.ms": str(3_600_000)}),
        TopicSpec(topics.dead_letter, 1, rf, {"retention.ms": str(30 * DAY_MS)}),
        settings_topic(config, rf),
        TopicSpec(changelog_topic(config.worker.app_id), partitions, rf,
                  {"cleanup.policy": "compact"}, exact_partitions=True),
    ]


def settings_topic(config: FloodgateConfig, replication_factor: int = 1) -> TopicSpec:
    """Each subject's latest settings, kept for ever (compacted): the worker routes them to
    the counting partitions itself, so any partition count does."""
    return TopicSpec(config.topics.subject_settings, config.worker.partitions,
                     replication_factor, {"cleanup.policy": "compact"})


def broker_count(settings: KafkaSettings, timeout_s: float = 10.0) -> int:
    return len(AdminClient(common_config(settings)).list_topics(timeout=timeout_s).brokers)


def default_replication(settings: KafkaSettings) -> int:
    """3 copies, or as many as there are brokers."""
    return max(1, min(3, broker_count(settings)))


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


@dataclass(frozen=True)
class TopicProblem:
    topic: str
    text: str
    fatal: bool  # the worker cannot count right with it (missing, partitions, compaction)

    def __str__(self) -> str:
        return f"{self.topic}: {self.text}"

    @property
    def line(self) -> str:
        """As the commands print it: ``ERROR: topic NAME: ...`` or ``warning: ...``."""
        return f"{'ERROR' if self.fatal else 'warning'}: topic {self}"


def describe(settings: KafkaSettings, names: list[str], timeout_s: float = 10.0
             ) -> dict[str, TopicState]:
    """The topics of ``names`` that exist, with their partitions, replicas and settings."""
    admin = AdminClient(common_config(settings))
    metadata = admin.list_topics(timeout=timeout_s)
    found = {name: metadata.topics[name] for name in names
             if name in metadata.topics and metadata.topics[name].error is None}
    configs: dict[str, dict[str, str]] = {name: {} for name in found}
    if found:
        futures = admin.describe_configs([ConfigResource("topic", name) for name in found],
                                         request_timeout=timeout_s)
        for resource, future in futures.items():
            entries = future.result(timeout_s)
            configs[resource.name] = {key: str(entry.value) for key, entry in entries.items()
                                      if entry.value is not None}
    return {name: TopicState(name, len(topic.partitions),
                             min((len(p.replicas) for p in topic.partitions.values()), default=0),
                             configs[name])
            for name, topic in found.items()}


def check_topics(specs: list[TopicSpec], states: dict[str, TopicState]) -> list[TopicProblem]:
    """What differs from the specs: a missing topic, the partitions of a co-partitioned one,
    compaction (fatal); other partition counts, fewer replicas, another retention (to fix,
    but counting works)."""
    problems = []
    for spec in specs:
        state = states.get(spec.name)
        if state is None:
            problems.append(TopicProblem(spec.name, "missing", True))
            continue
        if state.partitions != spec.partitions:
            problems.append(TopicProblem(spec.name, f"{state.partitions} partitions, "
                                                    f"{spec.partitions} wanted", spec.exact_partitions))
        if state.replication_factor < spec.replication_factor:
            problems.append(TopicProblem(spec.name, f"{state.replication_factor} replica(s), "
                                                    f"{spec.replication_factor} wanted", False))
        for key, wanted in spec.config.items():
            have = state.config.get(key)
            if have is not None and set(have.split(",")) != set(wanted.split(",")):
                problems.append(TopicProblem(spec.name, f"{key}={have}, {wanted} wanted",
                                             key == "cleanup.policy"))
    return problems


def survey_topics(settings: KafkaSettings, specs: list[TopicSpec], create: bool
                  ) -> tuple[dict[str, TopicState], list[TopicProblem]]:
    """The topics as they are (created first from ``specs`` where missing, if ``create``),
    and how they differ from ``specs``."""
    if create:
        ensure_topics(settings, specs)
    states = describe(settings, [spec.name for spec in specs])
    return states, check_topics(specs, states)


def prepare_topics(config: FloodgateConfig) -> list[TopicProblem]:
    """What the worker and ``up`` do before counting: create the missing topics as production
    needs them (3 replicas, or one per broker if fewer; compaction and retention), and say
    how the others differ."""
    specs = floodgate_topics(config, default_replication(config.kafka))
    return survey_topics(config.kafka, specs, create=True)[1]
