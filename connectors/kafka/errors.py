"""Kafka problems an operator can act on: one hierarchy for every Kafka client of Floodgate.

Every command catches ``KAFKA_FAILURES`` (these and the client library's own
``KafkaException``) in one place, the CLI's pre-flight, and prints the message:
what was wrong, where, and what to do.
"""

from __future__ import annotations

from confluent_kafka import KafkaException


class KafkaProblem(RuntimeError):
    """Kafka cannot be used as configured, or not right now."""


class KafkaNotConfigured(KafkaProblem, ValueError):
    """The config names no brokers (or not in a usable way)."""


class KafkaUnreachable(KafkaProblem):
    """No answer from the brokers in time: the message names them."""


class TopicError(KafkaProblem):
    """A topic is missing, or differs from what counting needs, and cannot be fixed here."""


class NotConfirmed(KafkaProblem):
    """Kafka did not confirm every record in time."""


KAFKA_FAILURES: tuple[type[Exception], ...] = (KafkaProblem, KafkaException)
