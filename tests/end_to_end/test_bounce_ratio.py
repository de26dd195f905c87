"""A bought list, caught by what the receivers answer: Postfix log -> tail -> Kafka (deliveries)
-> worker -> actions -> responder -> Postfix.

Mallory and Bob each send 8 messages through a real Postfix, which relays them to a test sink.
The sink answers ``550 5.1.1`` for Mallory's list addresses, so five of her deliveries bounce;
all of Bob's are delivered. A bounce-ratio threshold (>= 4 bounced among >= 6 deliveries)
defers Mallory and leaves Bob alone; a shadow threshold on remote refusals fires for her
sender address and is never applied. ``floodgate replay`` on the same raw log gives the
worker's very actions.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from schemas.config import KafkaSettings
from schemas.events import ActionEvent
from schemas.vocabulary import Flag
from tests.fixtures.mail_chain import mail_chain, swaks
from tests.fixtures.postfix_instance import PostfixInstance, needs_postfix
from tests.fixtures.topic_reader import read, read_all

pytestmark = needs_postfix
REPO = Path(__file__).resolve().parents[2]
# Mallory's list: the sink refuses the "hard" addresses (5 of 8), in this order.
MALLORY_TO = ["hard0", "ok1", "hard2", "hard3", "ok4", "hard5", "hard6", "ok7"]


def send(postfix: PostfixInstance, user: str, to: str) -> subprocess.CompletedProcess[str]:
    return swaks(postfix, user, f"{to}@list.example")


def deliveries_logged(maillog: Path) -> int:
    """Delivery attempts Postfix logged to the sink (relay=127.0.0.1...)."""
    text = maillog.read_text(errors="replace") if maillog.exists() else ""
    return sum(1 for line in text.splitlines()
               if "relay=127.0.0.1[127.0.0.1]" in line and "status=" in line)


def test_a_sender_whose_mail_bounces_is_deferred_and_one_with_the_same_volume_is_not(
        kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    thresholds = (
        "  - {name: bought-list, key: sasl_username, window: 10m, count: deliveries, "
        "messages: 6, flagged: bounced, flagged_units: 4, action: defer, duration: 10m}\n"
        "  - {name: pushback, key: sender, window: 10m, count: deliveries, messages: 6, "
        "flagged: remote_refused, flagged_units: 4, action: block, duration: 10m, "
        "mode: shadow}\n")
    with mail_chain(kafka_settings, tmp_path, thresholds, ["mallory", "bob"]) as chain:
        postfix, sink, config, topics = chain.postfix, chain.sink, chain.config, chain.topics
        through: list[str] = []  # mallory's recipients whose message Postfix accepted
        for n, to in enumerate(MALLORY_TO):
            for user, rcpt in (("mallory", to), ("bob", f"friend{n}")):
                done = send(postfix, user, rcpt)
                if user == "mallory" and done.returncode != 0:
                    # caught while still sending: her deliveries already crossed the ratio
                    assert n >= 6 and "<** 450 4.7.1 " in done.stdout, done.stdout[-2000:]
                    continue
                assert done.returncode == 0, done.stdout[-2000:]
                if user == "mallory":
                    through.append(rcpt)
        deadline = time.monotonic() + 60  # Postfix delivers (and bounces) on its own time
        while deliveries_logged(postfix.maillog) < 8 + len(through):
            assert time.monotonic() < deadline, postfix.maillog.read_text()[-3000:]
            time.sleep(0.2)
        assert sorted(sink.stats.recipients) == sorted(
            [f"friend{n}@list.example" for n in range(8)]
            + [f"{to}@list.example" for to in through if to.startswith("ok")])

        records = read(kafka_settings, topics["actions"], 2, 2, 120)
        fired = {a.threshold: a for a in map(ActionEvent.model_validate_json, records)}
        defer, shadow = fired["bought-list"], fired["pushback"]
        assert (defer.subject, defer.action.value, defer.enforced) == (
            "mallory@example.net", "defer", True)
        assert (shadow.subject, shadow.action.value, shadow.enforced) == (
            "mallory@example.net", "block", False)
        for action, flag in ((defer, Flag.BOUNCED), (shadow, Flag.REMOTE_REFUSED)):
            evidence = action.evidence
            assert evidence is not None and evidence.flagged is flag
            assert evidence.messages >= 6 and evidence.spams >= 4  # deliveries, flagged ones
            assert evidence.messages - evidence.spams <= 3  # only three of hers went through

        # Her next message is deferred at the end of DATA (the shadow block is not applied);
        # Bob, with as many deliveries and no bounce, still sends.
        deadline = time.monotonic() + 30  # the responder reads the action topic on its own
        while "<** 450 4.7.1 " not in (again := send(postfix, "mallory", "ok8")).stdout:
            assert again.returncode == 0, again.stdout[-2000:]  # passed, not refused otherwise
            assert time.monotonic() < deadline, "the responder never applied the defer"
            time.sleep(0.5)
        assert "Sending deferred for sasl_username mallory@example.net: too many bounces" in again.stdout
        assert send(postfix, "bob", "friend8").returncode == 0

        replayed = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "replay", str(postfix.maillog), "--config",
             str(config), "--format", "jsonl"], cwd=REPO, capture_output=True, text=True,
            timeout=120)
        assert replayed.returncode == 0, replayed.stderr
        from_replay = [ActionEvent.model_validate_json(line)
                       for line in replayed.stdout.splitlines()]
        from_worker = [ActionEvent.model_validate_json(record) for record in
                       read_all(kafka_settings, topics["actions"], 2, 2, 30)]
        assert sorted(_identity(a) for a in from_replay) == sorted(
            _identity(a) for a in from_worker)
        assert not any("bob" in a.subject for a in from_worker)


def _identity(action: ActionEvent) -> tuple[object, ...]:
    evidence = action.evidence
    return (action.action_id, action.state.value, action.action.value, action.enforced,
            action.expires_at, evidence.messages if evidence else None,
            evidence.spams if evidence else None)
