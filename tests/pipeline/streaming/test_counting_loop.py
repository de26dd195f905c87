"""The counting loop's answer to failing Kafka clients: new clients from the last checkpoint, a
few times; past that the worker stops (its supervisor takes over). The clients themselves are
exercised against a broker in test_worker*.py and tests/robustness/."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from connectors.kafka.client_failures import RestartBudget
from pipeline.streaming import counting_loop
from pipeline.streaming.counting_loop import CountingLoop
from pipeline.streaming.metrics import WorkerMetrics
from schemas.config import FloodgateConfig, KafkaSettings

ALLOWED = RestartBudget().limit
CONFIG = FloodgateConfig(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"))


class Idle:
    """A producer and consumer for a loop told to stop: topics exist, nothing to read."""

    def list_topics(self, topic: str, timeout: float) -> Any:
        found = SimpleNamespace(error=None, partitions={0: None})
        return SimpleNamespace(topics={topic: found})

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        pass

    def flush(self, timeout: float = 0) -> int:
        return 0

    def poll(self, timeout: float = 0) -> None:
        pass

    def close(self) -> None:
        pass


class Flaky:
    """Clients that fail ``failures`` times; the next ones find the loop told to stop."""

    def __init__(self, failures: int, stop_on_failure: bool = False) -> None:
        self.failures, self.lives, self.stop_on_failure = failures, 0, stop_on_failure
        self.metrics = WorkerMetrics()
        self.loop = CountingLoop(CONFIG, self.metrics, self.clients)

    def clients(self, producer: dict[str, Any], consumer: dict[str, Any]) -> tuple[Any, Any]:
        self.lives += 1
        if self.lives <= self.failures:
            if self.stop_on_failure:
                self.loop.stop()  # the worker is told to stop while its clients fail
            raise SystemError("fatal producer error")
        self.loop.stop()
        return Idle(), Idle()


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counting_loop, "RESTART_PAUSE_S", 0.0)


def restarts(metrics: WorkerMetrics) -> float:
    return metrics.restarts._value.get()  # type: ignore[attr-defined]


def test_failed_clients_are_replaced_and_counted() -> None:
    flaky = Flaky(failures=ALLOWED)
    flaky.loop.run()
    assert flaky.lives == ALLOWED + 1
    assert restarts(flaky.metrics) == ALLOWED


def test_a_loop_that_keeps_failing_gives_up() -> None:
    flaky = Flaky(failures=ALLOWED + 1)
    with pytest.raises(SystemError):
        flaky.loop.run()
    assert flaky.lives == ALLOWED + 1


def test_a_stop_during_a_failure_ends_the_loop_without_new_clients() -> None:
    flaky = Flaky(failures=1, stop_on_failure=True)
    flaky.loop.run()
    assert flaky.lives == 1
