"""Real Postfix asks ``floodgate policy-server`` at end of data; actions come through Kafka.

Operators add actions with ``floodgate actions add``; the responder reads them
from the action topic and Postfix enforces them: 5xx for block, 4xx for defer,
the hold queue for quarantine, a logged warning for warn. Lifting goes the
same way. Every request is published as a PolicyEvent.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from connectors.kafka.client_config import consumer_config
from connectors.kafka.embedded_broker import free_port
from connectors.kafka.topics import TopicSpec, ensure_topics
from connectors.postfix_log.reader import LogReader, open_log_lines
from schemas.config import KafkaSettings, Networks
from schemas.direction import DirectionRules
from schemas.events import MailEvent, PolicyEvent
from tests.fixtures.postfix_instance import PostfixInstance, needs_postfix
from tests.fixtures.processes import start_floodgate, stop
from tests.fixtures.smtp_sink import SmtpSink

pytestmark = needs_postfix
REPO = Path(__file__).resolve().parents[3]
Stack = tuple[Path, PostfixInstance, SmtpSink, dict[str, str]]


def floodgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture
def stack(kafka_settings: KafkaSettings, tmp_path: Path) -> Iterator[Stack]:
    topics = {"actions": f"actions-{uuid.uuid4().hex[:6]}",
              "policy_events": f"policy-{uuid.uuid4().hex[:6]}"}
    ensure_topics(kafka_settings, [TopicSpec(t, 3) for t in topics.values()])
    policy_port, health_port = free_port(), free_port()
    config = tmp_path / "floodgate.yaml"
    config.write_text(
        f"kafka: {{bootstrap_servers: '{kafka_settings.bootstrap_servers}'}}\n"
        f"topics: {json.dumps(topics)}\n"
        f"policy: {{listen: '127.0.0.1:{policy_port}', health_listen: '127.0.0.1:{health_port}', "
        f"state_dir: '{tmp_path / 'policy-state'}'}}\n")
    for subject, kind in (("blocked", "block"), ("slow", "defer"), ("held", "quarantine"),
                          ("noisy", "warn")):
        done = floodgate("actions", "add", f"sender:{subject}@example.net", "--action", kind,
                         "--for", "1h", "--reason", "test", "--actor", "ops-test",
                         "--config", str(config))
        assert done.returncode == 0, done.stderr
    log = tmp_path / "policy.log"
    command = ["policy-server", "--config", str(config)]
    server = start_floodgate(command, log)
    sink = SmtpSink(free_port())
    sink.start()
    postfix = PostfixInstance(free_port(), free_port(), sink.port, policy_port=policy_port)
    try:
        deadline = time.monotonic() + 90
        while not ready(f"http://127.0.0.1:{health_port}/readyz"):
            assert time.monotonic() < deadline, log.read_text()
            assert server.poll() is None, log.read_text()
            time.sleep(0.5)
        postfix.start()
        yield config, postfix, sink, topics
        # A restarted responder answers from its stored view before reading the topic again.
        stop(server)
        server = start_floodgate(command, log)
        assert first_answer(policy_port, "slow@example.net").startswith(b"action=DEFER")
    finally:
        postfix.stop()
        sink.stop()
        stop(server)
        shutil.rmtree(postfix.dir, ignore_errors=True)


def first_answer(port: int, sender: str) -> bytes:
    """The answer to the first request a (re)started responder can take."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
                connection.sendall(f"request=smtpd_access_policy\nsender={sender}\n\n".encode())
                return connection.recv(4096)
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "the responder did not come back"
            time.sleep(0.1)


def send(postfix: PostfixInstance, sender: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{postfix.smtp_port}", "--local-interface", "127.0.0.2",
         "--from", sender, "--to", "someone@gmail.example", "--timeout", "20"],
        capture_output=True, text=True, timeout=60)


def test_postfix_enforces_actions_from_the_topic(
    stack: Stack, kafka_settings: KafkaSettings
) -> None:
    config, postfix, sink, topics = stack
    blocked = send(postfix, "blocked@example.net")
    # Postfix puts its own words between code and text: "554 5.7.1 <END-OF-MESSAGE>: ..."
    assert blocked.returncode != 0 and "<** 554 5.7.1 " in blocked.stdout
    assert "Sending suspended for sender blocked@example.net" in blocked.stdout
    slow = send(postfix, "slow@example.net")
    assert slow.returncode != 0 and "<** 450 4.7.1 " in slow.stdout
    # an operator's action (actions add): the reply says so
    assert ("Sending deferred for sender slow@example.net: held by the mail operator; try again "
            "after") in slow.stdout
    assert send(postfix, "held@example.net").returncode == 0
    assert send(postfix, "noisy@example.net").returncode == 0
    assert send(postfix, "fine@example.net").returncode == 0

    held = [json.loads(line) for line in postfix.queue_ids()]
    assert [(m["queue_name"], m["sender"]) for m in held] == [("hold", "held@example.net")]
    deadline = time.monotonic() + 30
    while len(sink.stats.recipients) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sink.stats.messages == 2  # noisy (warned) and fine
    assert "warn: END-OF-MESSAGE" in postfix.maillog.read_text()
    # Read back from Postfix's log, Floodgate's own refusals are refused mail, never spam.
    reader = LogReader(DirectionRules(Networks()))
    mails = [e for e in [*reader.read(open_log_lines(str(postfix.maillog))), *reader.finish()]
             if isinstance(e, MailEvent)]
    refused = {m.sender: m for m in mails if not m.accepted}
    assert set(refused) == {"blocked@example.net", "slow@example.net"}
    assert all(m.spam is False for m in refused.values())
    assert reader.tracker.stats.own_refusals == 2

    listed = floodgate("actions", "list", "--config", str(config))
    assert listed.returncode == 0 and "sender:slow@example.net" in listed.stdout
    slow = next(line for line in listed.stdout.splitlines() if "sender:slow@" in line)
    assert "ops-test" in slow and slow.endswith(" test"), listed.stdout  # who and why
    refused = floodgate("actions", "lift", "sender:blocked@example.net", "--config", str(config))
    assert refused.returncode == 2 and "--reason" in refused.stderr  # why is required
    lifted = floodgate("actions", "lift", "sender:blocked@example.net", "--reason", "paid",
                       "--config", str(config))
    assert lifted.returncode == 0, lifted.stderr
    deadline = time.monotonic() + 20
    while send(postfix, "blocked@example.net").returncode != 0:
        assert time.monotonic() < deadline, "the lift did not reach the responder"
        time.sleep(0.5)

    consumer = Consumer(consumer_config(kafka_settings, f"check-{uuid.uuid4().hex[:6]}"))
    consumer.assign([TopicPartition(topics["policy_events"], p, 0) for p in range(3)])
    expected = {("blocked@example.net", "REJECT"), ("slow@example.net", "DEFER"),
                ("held@example.net", "HOLD"), ("noisy@example.net", "WARN"),
                ("fine@example.net", "DUNNO"), ("blocked@example.net", "DUNNO")}
    answers: set[tuple[str, str]] = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not expected <= answers:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            event = PolicyEvent.model_validate_json(message.value())
            answers.add((event.request.sender, event.answer.split(" ")[0]))
    consumer.close()
    assert expected <= answers
