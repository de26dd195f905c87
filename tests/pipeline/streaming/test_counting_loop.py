"""The counting loop's answer to failing Kafka clients: new clients from the last checkpoint, a
few times; past that the worker stops (its supervisor takes over). The clients themselves are
exercised against a broker in test_worker*.py and tests/robustness/."""

from __future__ import annotations

import pytest

from connectors.kafka.client_failures import RestartBudget
from pipeline.streaming import counting_loop
from pipeline.streaming.counting_loop import CountingLoop
from pipeline.streaming.metrics import WorkerMetrics
from schemas.config import FloodgateConfig, KafkaSettings

ALLOWED = RestartBudget().limit


class Flaky(CountingLoop):
    """Clients that fail ``failures`` times, then run until stopped."""

    def __init__(self, failures: int, stop_on_failure: bool = False) -> None:
        super().__init__(FloodgateConfig(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1")),
                         WorkerMetrics())
        self.failures, self.lives, self.stop_on_failure = failures, 0, stop_on_failure

    def _run_clients(self) -> None:
        self.lives += 1
        if self.lives <= self.failures:
            if self.stop_on_failure:
                self.stop()  # the worker is told to stop while its clients fail
            raise SystemError("fatal producer error")


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counting_loop, "RESTART_PAUSE_S", 0.0)


def restarts(loop: CountingLoop) -> float:
    return loop._metrics.restarts._value.get()  # type: ignore[attr-defined]


def test_failed_clients_are_replaced_and_counted() -> None:
    loop = Flaky(failures=ALLOWED)
    loop.run()
    assert loop.lives == ALLOWED + 1
    assert restarts(loop) == ALLOWED


def test_a_loop_that_keeps_failing_gives_up() -> None:
    loop = Flaky(failures=ALLOWED + 1)
    with pytest.raises(SystemError):
        loop.run()
    assert loop.lives == ALLOWED + 1


def test_a_stop_during_a_failure_ends_the_loop_without_new_clients() -> None:
    loop = Flaky(failures=1, stop_on_failure=True)
    loop.run()
    assert loop.lives == 1
