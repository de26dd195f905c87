"""Addresses a process cannot listen on are named, with the setting, before anything runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.kafka.embedded_broker import free_port
from schemas.config import KafkaSettings
from tests.fixtures.processes import REPO, own_topics

SINGLE_HOST = REPO / "deploy" / "examples" / "single-host.yaml"


def floodgate(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env},
                          capture_output=True, text=True, timeout=120)


def test_up_checks_its_ports_before_starting_anything(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = floodgate(["up", "--config", str(SINGLE_HOST), "--state-dir", str(tmp_path / "s")],
                         {"FLOODGATE_POLICY__LISTEN": f"127.0.0.1:{port}",
                          "FLOODGATE_POLICY__HEALTH_LISTEN": f"127.0.0.1:{free_port()}",
                          "FLOODGATE_WORKER__HEALTH_LISTEN": f"127.0.0.1:{free_port()}"},
                         tmp_path)
    assert done.returncode == 1
    assert f"policy.listen 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "nothing was started" in done.stderr
    assert not (tmp_path / "s").exists()  # no broker, no child, no state


def test_up_refuses_two_settings_on_one_address(tmp_path: Path) -> None:
    same = f"127.0.0.1:{free_port()}"
    done = floodgate(["up", "--config", str(SINGLE_HOST), "--state-dir", str(tmp_path / "s")],
                     {"FLOODGATE_POLICY__LISTEN": f"127.0.0.1:{free_port()}",
                      "FLOODGATE_POLICY__HEALTH_LISTEN": same,
                      "FLOODGATE_WORKER__HEALTH_LISTEN": same}, tmp_path)
    assert done.returncode == 1
    assert f"worker.health_listen and policy.health_listen are both {same}" in done.stderr


@pytest.mark.slow
def test_a_worker_whose_health_port_is_taken_names_it(kafka_settings: KafkaSettings,
                                                      tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = floodgate(["worker", "--config", str(SINGLE_HOST)],
                         {"FLOODGATE_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
                          **own_topics(),
                          "FLOODGATE_WORKER__DATA_DIR": str(tmp_path / "worker"),
                          "FLOODGATE_WORKER__HEALTH_LISTEN": f"127.0.0.1:{port}"}, tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]
    assert (f"cannot serve /livez, /readyz and /metrics on 127.0.0.1:{port}: Address already "
            "in use (worker.health_listen)") in done.stderr
    assert "Traceback" not in done.stderr
