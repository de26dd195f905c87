"""The one Kafka pre-flight of every command that needs Kafka.

Kafka is asked first, so an unreachable or unset broker is one clear line
within seconds, naming the address tried, instead of a long wait; then the
command's own Kafka set-up runs inside the same guard. Any Kafka problem in
either ends the command: ``main`` prints the message and exits 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from connectors.kafka.errors import KAFKA_FAILURES
from connectors.kafka.reachability import require_kafka
from pipeline.cli.command_failed import CommandFailed
from schemas.config import KafkaSettings


@contextmanager
def kafka_preflight(settings: KafkaSettings, *also: type[Exception]) -> Iterator[None]:
    """``require_kafka``, then the block; a Kafka problem, or one of ``also`` (the command's
    own set-up errors), raises ``CommandFailed`` with its message."""
    try:
        require_kafka(settings)
        yield
    except (*KAFKA_FAILURES, *also) as exc:
        raise CommandFailed(str(exc)) from None


def ask_kafka(settings: KafkaSettings) -> None:
    """The pre-flight alone, for a command whose Kafka clients start later."""
    with kafka_preflight(settings):
        pass
