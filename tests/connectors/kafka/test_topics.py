"""``floodgate topics create|check``: every topic as production needs it, and what is wrong
with topics made by hand said before the worker counts on them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.kafka.topics import TopicSpec, TopicState, check_topics, ensure_topics
from schemas.config import KafkaSettings
from tests.fixtures.processes import REPO, own_topics

SINGLE_HOST = REPO / "deploy" / "examples" / "single-host.yaml"


def test_check_tells_fatal_from_fixable() -> None:
    specs = [TopicSpec("actions", 4, 3, {"cleanup.policy": "compact,delete",
                                         "retention.ms": "2592000000"}),
             TopicSpec("subjects", 4, 3, exact_partitions=True),
             TopicSpec("mail", 4, 3), TopicSpec("gone", 1)]
    states = {"actions": TopicState("actions", 4, 1, {"cleanup.policy": "delete",
                                                      "retention.ms": "604800000"}),
              "subjects": TopicState("subjects", 6, 3, {}),
              "mail": TopicState("mail", 12, 3, {})}
    problems = {(p.topic, p.text): p.fatal for p in check_topics(specs, states)}
    assert problems == {
        ("actions", "1 replica(s), 3 wanted"): False,
        ("actions", "cleanup.policy=delete, compact,delete wanted"): True,  # stale actions kept
        ("actions", "retention.ms=604800000, 2592000000 wanted"): False,
        ("subjects", "6 partitions, 4 wanted"): True,  # not co-partitioned with the counts
        ("mail", "12 partitions, 4 wanted"): False,  # more partitions only spread the work
        ("gone", "missing"): True,
    }
    assert check_topics(specs[:1], {"actions": TopicState(
        "actions", 4, 3, {"cleanup.policy": "delete,compact", "retention.ms": "2592000000"})}) == []


@pytest.mark.slow
def test_create_then_check_on_a_broker(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    env = {**os.environ, "FLOODGATE_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
           **own_topics()}

    def floodgate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pipeline.cli", "topics", *args, "--config",
                               str(SINGLE_HOST)], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=120)

    before = floodgate("check")
    assert before.returncode == 1 and "8 topics: 8 error(s)" in before.stderr
    created = floodgate("create")
    assert created.returncode == 0, created.stderr
    rows = {line.split()[0]: line.split()[1:] for line in created.stdout.splitlines()[1:]}
    actions = env["FLOODGATE_TOPICS__ACTIONS"]
    assert rows[actions] == ["4", "1", "compact,delete", "30", "d"]  # one broker: one copy
    assert rows[env["FLOODGATE_TOPICS__MAIL_EVENTS"]] == ["4", "1", "-", "7", "d"]
    assert rows[f"{env['FLOODGATE_WORKER__APP_ID']}-counts-changelog"][:3] == ["4", "1", "compact"]
    assert rows[env["FLOODGATE_TOPICS__SUBJECT_SETTINGS"]][:3] == ["4", "1", "compact"]
    assert floodgate("check").returncode == 0
    # a changelog made by hand with other partitions: the worker would restore the wrong state
    env["FLOODGATE_WORKER__APP_ID"] += "x"
    ensure_topics(kafka_settings, [TopicSpec(f"{env['FLOODGATE_WORKER__APP_ID']}-counts-changelog",
                                             2)])
    wrong = floodgate("check")
    assert wrong.returncode == 1
    assert "ERROR: " in wrong.stderr and "-counts-changelog: 2 partitions, 4 wanted" in wrong.stderr
