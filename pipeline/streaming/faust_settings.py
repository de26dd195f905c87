"""The Kafka connection settings of the one KafkaSettings model, in Faust's (aiokafka's) terms,
so the worker reaches a SASL/TLS cluster exactly as the confluent-kafka clients do."""

from __future__ import annotations

import ssl
from typing import Any

import faust

from schemas.config import KafkaSettings


def broker_urls(settings: KafkaSettings) -> list[str]:
    if not settings.bootstrap_servers:
        raise ValueError("kafka.bootstrap_servers is not set")
    return [f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",")]


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.ssl_ca_location)
    if settings.ssl_certificate_location:
        context.load_cert_chain(settings.ssl_certificate_location, settings.ssl_key_location)
    return context


def broker_credentials(settings: KafkaSettings) -> Any:
    """None for PLAINTEXT; Faust's SSL or SASL credentials otherwise."""
    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings) if protocol in ("SSL", "SASL_SSL") else None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    password = settings.sasl_password.get_secret_value() if settings.sasl_password else None
    return faust.SASLCredentials(username=settings.sasl_username, password=password,
                                 mechanism=settings.sasl_mechanism or "PLAIN",
                                 ssl_context=context)
