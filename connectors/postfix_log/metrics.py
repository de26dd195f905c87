"""The log tailer's Prometheus metrics, read from its counters at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from connectors.http.observability import counter_families

if TYPE_CHECKING:
    from connectors.postfix_log.tail import Tailer


class TailCollector(Collector):
    def __init__(self, tailer: Tailer) -> None:
        self._tailer = tailer

    def collect(self) -> Iterator[CounterMetricFamily]:
        stats = self._tailer.stats  # the current reader's (a new producer brings a new reader)
        yield from counter_families("floodgate_tail", (
            ("lines", stats.lines, "Log lines read"),
            ("unparsed_lines", stats.unparsed, "Postfix lines not understood"),
            ("parser_errors", self._tailer.parser_errors, "Lines skipped by a parser bug"),
            ("mail_events", stats.mail_events, "MailEvents made"),
            ("delivery_events", stats.delivery_events, "DeliveryEvents made"),
            ("spam_verdicts", stats.verdicts, "Spam verdicts joined to messages"),
            ("published", self._tailer.published, "Records Kafka acknowledged"),
            ("refused", self._tailer.failed, "Records Kafka refused"),
            ("producer_restarts", self._tailer.restarts,
             "Producers replaced after a fatal error (reading again from the checkpoint)"),
        ))


def tail_registry(tailer: Tailer) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(TailCollector(tailer))
    return registry
