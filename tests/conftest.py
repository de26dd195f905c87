"""Shared fixtures: a real Kafka-compatible broker (Tansu) on a free port, per test session,
and the table of reliability figures printed at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.kafka.embedded_broker import EmbeddedBroker
from schemas.config import KafkaSettings
from tests.figures import Figures

FIGURES = pytest.StashKey[Figures]()


@pytest.fixture(autouse=True)
def policy_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's policy service keeps its actions under its own tmp_path, never in the
    machine's default /var/lib/floodgate/policy (processes the test starts inherit this)."""
    path = tmp_path / "policy-state"
    monkeypatch.setenv("FLOODGATE_POLICY__STATE_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """Tansu with in-memory storage, stopped by PID at the end of the session."""
    log = Path(tmp_path_factory.mktemp("broker")) / "tansu.log"
    broker = EmbeddedBroker(log)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_settings(kafka_broker: EmbeddedBroker) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_broker.bootstrap, client_id="floodgate-test")


@pytest.fixture
def figures(pytestconfig: pytest.Config) -> Figures:
    return pytestconfig.stash.setdefault(FIGURES, Figures())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    figures = config.stash.get(FIGURES, None)
    if figures and figures.rows:
        terminalreporter.section("reliability figures measured in this run")
        for line in figures.table():
            terminalreporter.write_line(line)
