"""The policy service's Prometheus metrics, read from its counters at scrape time."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from connectors.http.observability import counter_families

if TYPE_CHECKING:
    from connectors.postfix_policy.action_feed import ActionFeed
    from connectors.postfix_policy.policy_events import PolicyEventPublisher
    from connectors.postfix_policy.server import ServerStats

SettingsCounts = Callable[[], tuple[int, int]]  # settings records read, subjects exempt now
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1.0)


class PolicyCollector(Collector):
    def __init__(self, stats: ServerStats, publisher: PolicyEventPublisher, feed: ActionFeed,
                 actions_in_force: Callable[[], dict[str, int]],
                 settings: SettingsCounts | None = None) -> None:
        self._stats, self._publisher, self._feed = stats, publisher, feed
        self._actions_in_force = actions_in_force
        self._settings = settings or (lambda: (0, 0))

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._stats
        answers = CounterMetricFamily("floodgate_policy_requests", "Policy requests by answer",
                                      labels=["answer"])
        for answer, count in sorted(stats.answers.items()):
            answers.add_metric([answer], count)
        yield answers
        yield GaugeMetricFamily("floodgate_policy_connections_open", "Open client connections",
                                value=stats.open_connections)
        yield from counter_families("floodgate_policy", (
            ("connections", stats.connections, "Client connections accepted"),
            ("connections_refused", stats.refused_connections, "Connections over the limit"),
            ("clients_refused", stats.refused_clients, "Connections from outside allow_clients"),
            ("protocol_errors", stats.protocol_errors, "Connections closed for protocol errors"),
            ("timeouts", stats.timeouts, "Connections closed idle or half-sent"),
            ("internal_errors", stats.internal_errors, "Requests answered by the fail-safe"),
            ("events_published", self._publisher.published, "PolicyEvents Kafka acknowledged"),
            ("events_dropped", self._publisher.dropped, "PolicyEvents dropped: buffer full"),
            ("events_failed", self._publisher.failed, "PolicyEvents Kafka refused"),
            ("event_producers_replaced", self._publisher.replaced,
             "Producers replaced after a fatal error (their unacknowledged events re-sent)"),
            ("action_records", self._feed.records, "Action records read"),
            ("action_records_bad", self._feed.bad_records, "Unreadable action records"),
        ))
        in_force = GaugeMetricFamily("floodgate_policy_actions_in_force",
                                     "Actions the service enforces now", labels=["action"])
        for action, count in sorted(self._actions_in_force().items()):
            in_force.add_metric([action], count)
        yield in_force
        records, exempt = self._settings()
        yield CounterMetricFamily("floodgate_policy_settings_records",
                                  "Subject-settings records read", value=records)
        yield GaugeMetricFamily("floodgate_policy_settings_exempt_subjects",
                                "Subjects the settings topic exempts now", value=exempt)
        yield GaugeMetricFamily("floodgate_policy_ready", "1 once the action view caught up",
                                value=1 if self._feed.caught_up.is_set() else 0)


class LatencyHistogram(Collector):
    """``floodgate_policy_request_seconds``: observed on every request, so a bucket is a
    list slot bumped under the event loop's single thread (a Prometheus ``Histogram``
    takes a lock per observation, five times the cost); cumulated when scraped."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]) -> None:
        self._name, self._documentation, self._bounds = name, documentation, buckets
        self._counts = [0] * (len(buckets) + 1)  # the last: above every bound
        self._sum = 0.0

    def observe(self, seconds: float) -> None:
        self._counts[bisect_left(self._bounds, seconds)] += 1
        self._sum += seconds

    def collect(self) -> Iterator[HistogramMetricFamily]:
        counts, total = list(self._counts), self._sum  # one moment's figures
        cumulative, running = [], 0
        for bound, count in zip((*map(floatToGoString, self._bounds), "+Inf"), counts,
                                strict=True):
            running += count
            cumulative.append((bound, running))
        yield HistogramMetricFamily(self._name, self._documentation, buckets=cumulative,
                                    sum_value=total)


def policy_registry(collector: PolicyCollector) -> tuple[CollectorRegistry, LatencyHistogram]:
    registry = CollectorRegistry()
    registry.register(collector)
    latency = LatencyHistogram("floodgate_policy_request_seconds",
                               "Time to answer a policy request", LATENCY_BUCKETS)
    registry.register(latency)
    return registry, latency
