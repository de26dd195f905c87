"""The whole chain on one host: Postfix log -> tail -> Kafka -> worker -> actions -> responder -> Postfix.

Alice may send 5 messages a minute. She sends a burst through a real Postfix;
once her 5th message reaches the log, the worker fires, the responder learns
it from the action topic, and her 6th message is refused with a 4xx. A shadow
threshold (3 messages per sender: block) fires on the way, is published and
listed as shadow, and is never applied: the 4th and 5th messages pass, and the
6th gets the enforcing defer, not the stronger shadow block.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from schemas.config import KafkaSettings
from schemas.events import ActionEvent
from tests.fixtures.http_probe import scrape
from tests.fixtures.mail_chain import mail_chain, swaks
from tests.fixtures.postfix_instance import PostfixInstance, needs_postfix
from tests.fixtures.topic_reader import read

pytestmark = needs_postfix
REPO = Path(__file__).resolve().parents[2]


def send(postfix: PostfixInstance, n: int) -> subprocess.CompletedProcess[str]:
    return swaks(postfix, "alice", f"friend{n}@gmail.example")


def test_the_burst_over_the_threshold_is_refused(kafka_settings: KafkaSettings,
                                                 tmp_path: Path) -> None:
    thresholds = ("  - {name: five, key: sasl_username, window: 1m, messages: 5, action: defer, "
                  "duration: 10m}\n"
                  "  - {name: three-shadow, key: sender, window: 1m, messages: 3, action: block, "
                  "duration: 10m, mode: shadow}\n")
    with mail_chain(kafka_settings, tmp_path, thresholds, ["alice"]) as chain:
        postfix, config, topics = chain.postfix, chain.config, chain.topics
        policy_port, health_port = chain.policy_port, chain.health_port
        worker_health, tail_health = chain.worker_health, chain.tail_health
        for n in range(5):
            done = send(postfix, n)
            assert done.returncode == 0, done.stdout[-2000:]
        fifth_sent = time.monotonic()
        actions = wait_for_actions(kafka_settings, topics["actions"], 120)
        detected_s = time.monotonic() - fifth_sent
        action, shadow = actions["five"], actions["three-shadow"]
        assert (action.subject, action.action.value, action.enforced) == (
            "alice@example.net", "defer", True)
        assert action.evidence is not None and action.evidence.messages == 5
        assert (shadow.subject, shadow.action.value, shadow.enforced) == (
            "alice@example.net", "block", False)
        assert shadow.evidence is not None and shadow.evidence.messages == 3
        wait_responder_knows(policy_port, 30)  # it reads the action topic on its own
        wait_metric(health_port, 'floodgate_policy_actions_in_force{action="shadow_block"}', 30)
        listed = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "actions", "list", "--config", str(config)],
            cwd=REPO, capture_output=True, text=True, timeout=120)
        rows = {line.split()[0]: line.split()[1:3] for line in listed.stdout.splitlines()[1:]}
        assert rows["sender:alice@example.net"] == ["block", "shadow"], listed.stdout
        assert rows["sasl_username:alice@example.net"] == ["defer", "enforce"]
        sixth = send(postfix, 5)
        assert sixth.returncode != 0 and "<** 450 4.7.1 " in sixth.stdout, sixth.stdout[-2000:]
        assert "Sending deferred for sasl_username alice@example.net: too much mail" in sixth.stdout
        print(f"fifth message to action on the topic: {detected_s:.1f} s")
        policy = scrape(health_port)
        deadline = time.monotonic() + 5  # the in-force gauge is refreshed once a second
        while not policy.get('floodgate_policy_actions_in_force{action="defer"}') and \
                time.monotonic() < deadline:
            time.sleep(0.2)
            policy = scrape(health_port)
        assert policy['floodgate_policy_requests_total{answer="DEFER"}'] >= 1
        assert policy['floodgate_policy_requests_total{answer="DUNNO"}'] >= 5
        assert policy['floodgate_policy_actions_in_force{action="defer"}'] == 1
        assert policy["floodgate_policy_request_seconds_count"] >= 6
        worker = scrape(worker_health)
        assert worker['floodgate_worker_actions_total{action="defer",state="active"}'] == 1
        assert worker['floodgate_worker_records_total{topic_kind="mail"}'] >= 5
        tail = scrape(tail_health)
        assert tail["floodgate_tail_mail_events_total"] >= 5  # the sixth may not be read yet
        assert tail["floodgate_tail_published_total"] >= 5
        for text in (policy, worker, tail):  # no subject ever becomes a label
            assert not any("alice" in name or "127.0.0.1" in name for name in text)
        # The operator's what-if on the same day's raw log gives the worker's very actions,
        # shadow and enforcing alike (the sixth message was refused: it never counts).
        replayed = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "replay", str(postfix.maillog), "--config",
             str(config), "--format", "jsonl"], cwd=REPO, capture_output=True, text=True,
            timeout=120)
        assert replayed.returncode == 0, replayed.stderr
        fired = [ActionEvent.model_validate_json(line) for line in replayed.stdout.splitlines()]
        assert sorted((a.action_id, a.action.value, a.enforced, a.expires_at) for a in fired
                      if a.state.value == "active") == sorted(
            (a.action_id, a.action.value, a.enforced, a.expires_at) for a in actions.values())


def wait_responder_knows(port: int, deadline_s: float) -> None:
    """Ask the responder as Postfix would until it defers alice."""
    request = (b"request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\n"
               b"sasl_username=alice@example.net\nsender=alice@example.net\n\n")
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(request)
            if connection.recv(4096).startswith(b"action=DEFER"):
                return
        time.sleep(0.2)
    raise AssertionError("the responder never learned the action")


def wait_for_actions(settings: KafkaSettings, topic: str, deadline_s: float
                     ) -> dict[str, ActionEvent]:
    """The first two actions on the topic, by threshold."""
    records = read(settings, topic, 2, 2, deadline_s)
    assert len(records) == 2, f"{len(records)} actions on {topic} within {deadline_s} s"
    actions = [ActionEvent.model_validate_json(record) for record in records]
    return {action.threshold or "": action for action in actions}


def wait_metric(port: int, name: str, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while not scrape(port).get(name):
        assert time.monotonic() < deadline, f"{name} never showed"
        time.sleep(0.2)
