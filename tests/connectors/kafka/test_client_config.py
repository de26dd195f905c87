"""The librdkafka settings every Floodgate producer and consumer starts from."""

from __future__ import annotations

import pytest

from connectors.kafka.client_config import consumer_config, producer_config
from connectors.kafka.errors import KafkaNotConfigured
from schemas.config import KafkaSettings


def test_producers_are_idempotent_fully_acknowledged_and_partition_as_java_clients_do() -> None:
    config = producer_config(KafkaSettings(bootstrap_servers="k:9092"))
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["partitioner"] == "murmur2_random"
    assert "max.in.flight.requests.per.connection" not in config  # librdkafka's 5 is safe then


def test_without_idempotence_one_request_in_flight_keeps_retries_in_order() -> None:
    config = producer_config(KafkaSettings(bootstrap_servers="k:9092", idempotent_producers=False))
    assert config["enable.idempotence"] is False
    assert config["max.in.flight.requests.per.connection"] == 1
    assert config["acks"] == "all"


def test_overrides_win_and_consumers_commit_only_what_they_handled() -> None:
    settings = KafkaSettings(bootstrap_servers="k:9092")
    assert producer_config(settings, **{"linger.ms": 50})["linger.ms"] == 50
    consumer = consumer_config(settings, "g")
    assert consumer["group.id"] == "g" and consumer["enable.auto.commit"] is False
    assert consumer["isolation.level"] == "read_committed"


def test_no_bootstrap_servers_is_a_clear_error() -> None:
    with pytest.raises(KafkaNotConfigured, match="bootstrap_servers"):
        producer_config(KafkaSettings())
