"""SASL/TLS settings reach the worker's Faust (aiokafka) client as they reach confluent-kafka."""

from __future__ import annotations

import faust
import pytest
from pydantic import SecretStr

from connectors.kafka.client_config import common_config
from pipeline.streaming.app import Worker
from pipeline.streaming.faust_settings import broker_credentials, broker_urls
from schemas.config import FloodgateConfig, KafkaSettings


def test_plaintext_has_no_credentials() -> None:
    settings = KafkaSettings(bootstrap_servers="k1:9092, k2:9092")
    assert broker_urls(settings) == ["kafka://k1:9092", "kafka://k2:9092"]
    assert broker_credentials(settings) is None


def test_sasl_ssl_reaches_both_clients() -> None:
    settings = KafkaSettings(bootstrap_servers="k1:9093", security_protocol="SASL_SSL",
                             sasl_mechanism="SCRAM-SHA-512", sasl_username="floodgate",
                             sasl_password=SecretStr("s3cret"))
    credentials = broker_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password, credentials.mechanism.value) == (
        "floodgate", "s3cret", "SCRAM-SHA-512")
    assert credentials.ssl_context is not None
    confluent = common_config(settings)
    assert (confluent["security.protocol"], confluent["sasl.mechanism"],
            confluent["sasl.username"], confluent["sasl.password"]) == (
        "sasl_ssl", "SCRAM-SHA-512", "floodgate", "s3cret")
    worker = Worker(FloodgateConfig(kafka=settings))  # the Faust app and the counting loop
    assert isinstance(worker.app.conf.broker_credentials, faust.SASLCredentials)
    assert worker.app.conf.broker_credentials.username == "floodgate"
    counting = worker.counting.consumer_settings
    assert (counting["security.protocol"], counting["sasl.password"]) == ("sasl_ssl", "s3cret")
    assert "s3cret" not in repr(settings)  # the secret does not leak into logs


def test_ssl_without_sasl() -> None:
    credentials = broker_credentials(KafkaSettings(bootstrap_servers="k:9093",
                                                   security_protocol="SSL"))
    assert isinstance(credentials, faust.SSLCredentials)


def test_no_bootstrap_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="bootstrap_servers"):
        broker_urls(KafkaSettings())
