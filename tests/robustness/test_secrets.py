"""Security: a Kafka password given through the environment never shows in what Floodgate
prints: config checks, the policy service's and the worker's logs (the broker here speaks no
SASL, so both also log their failed handshakes)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from connectors.kafka.embedded_broker import EmbeddedBroker, free_port
from tests.fixtures.processes import start, stop

pytestmark = pytest.mark.slow
SECRET = "s3cret-Floodgate-7f1c"


def test_the_kafka_password_stays_out_of_every_log(tmp_path: Path,
                                                   kafka_broker: EmbeddedBroker) -> None:
    config = tmp_path / "floodgate.yaml"
    config.write_text(
        f"kafka: {{bootstrap_servers: '{kafka_broker.bootstrap}', security_protocol: SASL_PLAINTEXT,"
        " sasl_mechanism: SCRAM-SHA-512, sasl_username: floodgate}\n"
        f"policy: {{listen: '127.0.0.1:{free_port()}', health_listen: '127.0.0.1:{free_port()}'}}\n"
        f"worker: {{data_dir: '{tmp_path / 'worker'}'}}\n")
    env = {**os.environ, "FLOODGATE_KAFKA__SASL_PASSWORD": SECRET}
    floodgate = [sys.executable, "-m", "pipeline.cli"]
    logs = []
    for name, args in (("check", ["check-config", str(config)]),
                       ("policy", ["policy-server", "--config", str(config)]),
                       ("worker", ["worker", "--config", str(config), "--log-level", "debug"])):
        log = tmp_path / f"{name}.log"
        process = start([*floodgate, *args], log, env)
        time.sleep(8 if name != "check" else 3)
        stop(process, signal.SIGTERM, timeout_s=20)
        logs.append(log.read_text(errors="replace"))
    assert "OK, 0 threshold(s)" in logs[0]
    assert "answering on" in logs[1]  # it ran, and tried to reach Kafka
    assert "floodgate#" in logs[1] and "floodgate#" in logs[2]  # the Kafka clients' own lines
    for text in logs:
        assert SECRET not in text
