"""What ships in deploy/: configs that load, a compose file that holds together (no Docker
engine here: it is parsed and checked), hardened systemd units, a Postfix snippet that fails open."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.kafka.access import access_table
from connectors.kafka.topics import floodgate_topics
from pipeline.cli import build_parser
from pipeline.cli.check_config import memory_line
from pipeline.streaming.sizing import worker_memory_mib
from schemas.config_file import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
INSTALLED = "/opt/floodgate/bin/floodgate"


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path: Path) -> None:
    config = load_config(path, {})
    assert config.thresholds


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose" / "docker-compose.yml").read_text())
    return data


def test_compose_runs_kafka_in_kraft_mode() -> None:
    kafka = compose()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "CONTROLLER://" in env["KAFKA_LISTENERS"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # topics come from `topics`


def test_compose_creates_every_topic_with_compacted_actions() -> None:
    script = compose()["services"]["topics"]["command"][0]
    created = {line.split("--topic ")[1].split()[0]: line for line in script.splitlines()
               if line.strip().startswith("create --topic")}
    config = load_config(DEPLOY / "compose" / "floodgate.yaml", {})
    topics = config.topics
    changelog = f"{config.worker.app_id}-counts-changelog"
    assert set(created) == {topics.mail_events, topics.subject_events, topics.policy_events,
                            topics.deliveries, topics.dead_letter, topics.actions, changelog,
                            topics.subject_settings}
    assert set(created) == {spec.name for spec in floodgate_topics(config)}  # as the worker would
    assert "cleanup.policy=compact" in created[topics.actions]
    assert "cleanup.policy=compact" in created[changelog]
    assert "cleanup.policy=compact" in created[topics.subject_settings]
    for name, line in created.items():
        if name != topics.dead_letter:
            assert f"--partitions {config.worker.partitions}" in line  # co-partitioned
    for spec in floodgate_topics(config):  # the settings `floodgate topics create` uses
        for key, value in spec.config.items():
            assert f"--config {key}={value}" in created[spec.name]


def test_compose_services_run_real_commands_and_publish_on_loopback_only() -> None:
    services = compose()["services"]
    parser = build_parser()
    for name in ("worker", "policy", "siem", "demo-traffic"):
        service = services[name]
        command = service["command"]
        assert command[0] == "floodgate"
        args = parser.parse_args(command[1:])  # a typo'd option would exit here
        assert args.config == "/etc/floodgate/floodgate.yaml"
        assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert service["environment"]["FLOODGATE_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:")
    dockerfile = (DEPLOY / "compose" / "Dockerfile").read_text()
    assert "\nUSER floodgate\n" in dockerfile


@pytest.mark.parametrize("unit", sorted((DEPLOY / "systemd").glob("*.service")), ids=lambda p: p.name)
def test_systemd_units_are_hardened_and_run_floodgate(unit: Path) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(unit)
    service = parser["Service"]
    assert service["DynamicUser"] == "yes"  # never root
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["CapabilityBoundingSet"] == ""
    assert service["Restart"] in ("on-failure", "always")
    command = shlex.split(service["ExecStart"])
    assert command[0] == INSTALLED  # where the README installs it
    build_parser().parse_args(command[1:])
    assert service["EnvironmentFile"] == "-/etc/floodgate/floodgate.env"  # secrets


def test_every_long_running_command_has_a_unit_and_the_readme_installs_where_they_run() -> None:
    commands = set()
    for unit in (DEPLOY / "systemd").glob("*.service"):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read(unit)
        commands.add(shlex.split(parser["Service"]["ExecStart"])[1])
    assert commands == {"worker", "policy-server", "tail", "siem", "console"}
    readme = (DEPLOY / "README.md").read_text()
    assert "python3.11 -m venv /opt/floodgate" in readme
    assert "/opt/floodgate/bin/pip install -r deploy/requirements.lock" in readme


@pytest.mark.parametrize("name", ["examples/single-host.yaml", "examples/isp-cluster.yaml",
                                  "compose/floodgate.yaml"])
def test_deployment_configs_serve_health_and_metrics_for_every_process(name: str) -> None:
    config = load_config(DEPLOY / name, {})
    listens = [config.worker.health_listen, config.policy.health_listen, config.tail.health_listen]
    assert all(listens) and len(set(listens)) == 3  # on, and on ports of their own


def test_the_image_is_pinned_and_probed() -> None:
    dockerfile = (DEPLOY / "compose" / "Dockerfile").read_text()
    base = dockerfile.split("\nFROM ", 1)[1].split()[0]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base)  # a patch release, not a moving tag
    assert "pip install --no-cache-dir -r requirements.lock" in dockerfile
    assert "pip install --no-cache-dir --no-deps ." in dockerfile
    assert "\nHEALTHCHECK " in dockerfile
    pins = {}
    for line in (DEPLOY / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            assert pinned, f"{line}: not pinned"
            pins[name.lower().replace("_", "-")] = pinned
    for requirement in ("confluent-kafka", "faust-streaming", "aiokafka", "rocksdict", "pydantic",
                        "pyyaml", "prometheus-client"):
        assert requirement in pins


def test_compose_probes_each_service_with_a_health_port_and_shows_actions() -> None:
    services = compose()["services"]
    config = load_config(DEPLOY / "compose" / "floodgate.yaml", {})
    ports = {"worker": config.worker.health_listen, "policy": config.policy.health_listen}
    for name, listen in ports.items():
        port = str(listen).rsplit(":", 1)[1]
        assert services[name]["environment"]["FLOODGATE_HEALTH_URL"] == (
            f"http://127.0.0.1:{port}/readyz")
    demo = services["demo-traffic"]["command"]
    assert demo[:2] == ["floodgate", "demo-traffic"]
    build_parser().parse_args(demo[1:])


def test_postfix_snippet_fails_open_at_end_of_data() -> None:
    snippet = (DEPLOY / "postfix" / "main.cf.snippet").read_text()
    assert "smtpd_end_of_data_restrictions =" in snippet
    assert "default_action=DUNNO" in snippet
    assert "check_policy_service { inet:127.0.0.1:10040" in snippet


def test_the_licence_pyproject_names_ships_with_the_code() -> None:
    root = DEPLOY.parent
    pyproject = (root / "pyproject.toml").read_text()
    assert 'license = "Apache-2.0"' in pyproject and 'license-files = ["LICENSE"]' in pyproject
    text = (root / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_the_long_running_services_reload_their_config_on_sighup() -> None:
    for name in ("worker", "policy", "tail"):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read(DEPLOY / "systemd" / f"floodgate-{name}.service")
        assert parser["Service"]["ExecReload"] == "/bin/kill -HUP $MAINPID"


def test_the_readmes_customer_class_examples_are_valid_configs() -> None:
    import yaml

    from schemas.config import FloodgateConfig

    readme = (DEPLOY.parent / "README.md").read_text()
    blocks = [block.split("```", 1)[0] for block in readme.split("```yaml\n")[1:]]
    classed = [block for block in blocks if block.startswith("classes:")]
    assert classed
    for block in classed:
        config = FloodgateConfig.model_validate(yaml.safe_load(block))
        assert len(config.classes.known) > 1


def test_the_guide_s_acl_table_is_what_each_process_does() -> None:
    """The deployment guide quotes ``floodgate topics acls`` for the example cluster."""
    guide = (DEPLOY / "README.md").read_text()
    config = load_config(DEPLOY / "examples" / "isp-cluster.yaml", {})
    table = "\n".join(access_table(config))
    assert table in guide


def test_the_worker_unit_holds_a_worker_with_every_partition_of_the_example() -> None:
    """MemoryMax is above what check-config says a worker holding all 24 partitions of
    isp-cluster.yaml needs (the guide's sizing rule), and the guide quotes that line."""
    config = load_config(DEPLOY / "examples" / "isp-cluster.yaml", {})
    need = worker_memory_mib(config.worker, config.worker.partitions)
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(DEPLOY / "systemd" / "floodgate-worker.service")
    limit = parser["Service"]["MemoryMax"]
    units = {"K": 1 / 1024, "M": 1, "G": 1024}
    assert need < float(limit[:-1]) * units[limit[-1]] < need * 1.25, (need, limit)
    guide = (DEPLOY / "README.md").read_text()
    assert memory_line(config) in guide and f"MemoryMax={limit}" in guide
