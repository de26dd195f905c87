"""A repeat offender, live: Postfix log -> tail -> Kafka -> worker -> actions -> responder ->
Postfix, with an escalation ladder.

Alice may send 3 messages a minute. Her first burst is deferred for 5 s; the first message
she gets through after that fires again and takes the ladder's first step (deferred for
8 s); the first one after that, its second step (blocked). The policy service answers 4xx,
4xx, then 5xx; each ActionEvent names its step, and ``floodgate replay`` on the same raw log
gives the worker's very actions.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from schemas.config import KafkaSettings
from schemas.events import ActionEvent
from tests.fixtures.mail_chain import mail_chain, swaks
from tests.fixtures.postfix_instance import PostfixInstance, needs_postfix
from tests.fixtures.topic_reader import read_all, read_until

pytestmark = needs_postfix
REPO = Path(__file__).resolve().parents[2]
THRESHOLDS = (
    "  - {name: three, key: sasl_username, window: 1m, messages: 3, action: defer, "
    "duration: 5s, escalate: [{after: 2, within: 1h, action: defer, duration: 8s}, "
    "{after: 3, within: 1h, action: block, duration: 10m}]}\n")


def answer(port: int) -> bytes:
    """What the policy service answers for alice's next message."""
    request = (b"request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\n"
               b"sasl_username=alice@example.net\nsender=alice@example.net\n\n")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(request)
        return connection.recv(4096)


def wait_answer(port: int, starts: bytes, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while not answer(port).startswith(starts):
        assert time.monotonic() < deadline, f"the policy service never answered {starts!r}"
        time.sleep(0.2)


def _active(records: list[bytes]) -> list[ActionEvent]:
    actions = [ActionEvent.model_validate_json(r) for r in records]
    return sorted((a for a in actions if a.state.value == "active"), key=lambda a: a.ts)


def wait_actions(settings: KafkaSettings, topic: str, count: int) -> list[ActionEvent]:
    """The actions that started so far (not their expiries), once there are ``count``."""
    actions = _active(read_until(settings, topic, 2, lambda got: len(_active(got)) >= count,
                                 120))
    assert len(actions) == count, f"{len(actions)} actions, expected {count}"
    return actions


def send_once_let_through(postfix: PostfixInstance, policy_port: int, n: int) -> None:
    """After the action in force expired (the policy service says DUNNO again, and a margin
    so the log's time is past the action's end too), one message that gets through."""
    wait_answer(policy_port, b"action=DUNNO", 60)
    time.sleep(1.5)
    done = swaks(postfix, "alice", f"friend{n}@gmail.example")
    assert done.returncode == 0, done.stdout[-2000:]


def test_a_repeat_offender_is_deferred_then_deferred_longer_then_blocked(
        kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    with mail_chain(kafka_settings, tmp_path, THRESHOLDS, ["alice"]) as chain:
        postfix, port, topic = chain.postfix, chain.policy_port, chain.topics["actions"]
        for n in range(3):
            done = swaks(postfix, "alice", f"friend{n}@gmail.example")
            assert done.returncode == 0, done.stdout[-2000:]
        [first] = wait_actions(kafka_settings, topic, 1)
        wait_answer(port, b"action=DEFER 4.7.1", 30)
        deferred = swaks(postfix, "alice", "friend3@gmail.example")
        assert "<** 450 4.7.1 " in deferred.stdout, deferred.stdout[-2000:]

        send_once_let_through(postfix, port, 4)
        second = wait_actions(kafka_settings, topic, 2)[-1]
        wait_answer(port, b"action=DEFER 4.7.1", 30)
        send_once_let_through(postfix, port, 5)
        third = wait_actions(kafka_settings, topic, 3)[-1]
        wait_answer(port, b"action=REJECT 5.7.1", 30)
        blocked = swaks(postfix, "alice", "friend6@gmail.example")
        assert "<** 554 5.7.1 " in blocked.stdout, blocked.stdout[-2000:]

        ladder = [(a.action.value, round((a.expires_at - a.triggered_at).total_seconds()),
                   a.evidence.escalation.step if a.evidence and a.evidence.escalation else None)
                  for a in (first, second, third)]
        assert ladder == [("defer", 5, None), ("defer", 8, 1), ("block", 600, 2)]
        assert third.evidence is not None and third.evidence.escalation is not None
        assert third.evidence.escalation.firing == 3

        replayed = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "replay", str(postfix.maillog), "--config",
             str(chain.config), "--format", "jsonl"], cwd=REPO, capture_output=True, text=True,
            timeout=120)
        assert replayed.returncode == 0, replayed.stderr
        from_replay = [ActionEvent.model_validate_json(line)
                       for line in replayed.stdout.splitlines()]
        from_worker = [ActionEvent.model_validate_json(r)
                       for r in read_all(kafka_settings, topic, 2, 3, 30)]
        assert sorted(_identity(a) for a in from_replay if a.state.value == "active") == sorted(
            _identity(a) for a in from_worker if a.state.value == "active")


def _identity(action: ActionEvent) -> tuple[object, ...]:
    escalation = action.evidence.escalation if action.evidence else None
    return (action.action_id, action.action.value, action.expires_at,
            escalation.step if escalation else None)
