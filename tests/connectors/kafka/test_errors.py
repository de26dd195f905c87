"""One hierarchy of Kafka problems: the pre-flight catches them all, and nothing else."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from connectors.kafka import errors


def test_every_kafka_problem_is_caught_by_the_one_tuple() -> None:
    for problem in (errors.KafkaNotConfigured, errors.KafkaUnreachable, errors.TopicError,
                    errors.NotConfirmed):
        assert issubclass(problem, errors.KafkaProblem)
        assert isinstance(problem("x"), errors.KAFKA_FAILURES)
    assert isinstance(KafkaException(KafkaError(KafkaError._TRANSPORT)), errors.KAFKA_FAILURES)
    assert not isinstance(ValueError("x"), errors.KAFKA_FAILURES)
    assert isinstance(errors.KafkaNotConfigured("x"), ValueError)  # config errors stay ValueErrors
