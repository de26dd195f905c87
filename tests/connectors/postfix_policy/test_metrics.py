"""The request latency histogram, kept by hand for the hot path, reads as Prometheus's own."""

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connectors.postfix_policy.metrics import LATENCY_BUCKETS, LatencyHistogram


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {(s.name, s.labels.get("le", "")): s.value
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for s in family.samples if not s.name.endswith("_created")}


def test_buckets_count_and_sum_match_a_prometheus_histogram() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    mine = LatencyHistogram("floodgate_policy_request_seconds", "Time to answer",
                            LATENCY_BUCKETS)
    ours.register(mine)
    reference = Histogram("floodgate_policy_request_seconds", "Time to answer",
                          buckets=LATENCY_BUCKETS, registry=theirs)
    for seconds in (0.0, 0.00005, *LATENCY_BUCKETS, 0.0003, 0.0011, 2.5, 7.0):
        mine.observe(seconds)
        reference.observe(seconds)
    assert _samples(ours) == _samples(theirs)
    assert _samples(ours)[("floodgate_policy_request_seconds_bucket", "0.0001")] == 3
