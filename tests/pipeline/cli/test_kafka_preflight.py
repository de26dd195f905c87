"""Every command that needs Kafka says, within seconds and without a traceback, that the
broker it tried does not answer, naming it; or that none is set."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.processes import REPO

EXAMPLE = REPO / "deploy" / "examples" / "floodgate.yaml"
COMMANDS = [["actions", "list"], ["actions", "lift", "sasl_username:alice", "--reason", "test"],
            ["actions", "add", "sasl_username:alice", "--action", "block", "--for", "1h",
             "--reason", "test"],
            ["worker"], ["siem", "--format", "ecs"], ["demo-traffic"]]


def floodgate(args: list[str], bootstrap: str | None) -> tuple[int, str, float]:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    if bootstrap is not None:
        env["FLOODGATE_KAFKA__BOOTSTRAP_SERVERS"] = bootstrap
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", *args, "--config", str(EXAMPLE)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stderr, time.monotonic() - began


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_refused_port_is_said_at_once(args: list[str], tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, err, seconds = floodgate(args, f"127.0.0.1:{port}")
    assert code == 1, err
    assert f"Kafka at 127.0.0.1:{port}: connection refused on 127.0.0.1:{port}" in err
    assert "Traceback" not in err
    assert seconds < 8  # no waiting: starting Python is most of it


def test_a_broker_that_does_not_answer_is_named_within_ten_seconds() -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        code, err, seconds = floodgate(["actions", "list"], f"127.0.0.1:{port}")
    assert code == 1, err
    assert f"Kafka at 127.0.0.1:{port} did not answer within 10 s" in err
    assert "Traceback" not in err
    assert seconds < 15  # 10 s to answer, the rest to start Python


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_no_broker_set_is_said_at_once(args: list[str]) -> None:
    code, err, seconds = floodgate(args, None)
    assert code == 1 and "kafka.bootstrap_servers is not set" in err, err
    assert "Traceback" not in err and seconds < 10
