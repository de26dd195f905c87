"""The console's state on a real broker: it reads the last hour (not older), counts mail and
policy answers, sets bad records aside, and publishes lifts and adds that the action topic
and its own list show at once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer

from connectors.kafka.client_config import producer_config
from connectors.kafka.settings_records import SettingsFeed
from connectors.kafka.topics import prepare_topics
from connectors.postfix_policy.action_feed import ActionFeed
from pipeline.console.live_state import ConsoleState, OperatorError
from schemas.config import FloodgateConfig, KafkaSettings
from schemas.events import ActionEvent, MailEvent, PolicyEvent, PolicyRequest
from schemas.vocabulary import ActionState, Direction, EventSource

pytestmark = pytest.mark.slow


def wait_for(check: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.2)


def mail(user: str, ts_ms: int, spam: bool = False) -> MailEvent:
    return MailEvent(event_id=f"t/{uuid.uuid4().hex}", ts=datetime.fromtimestamp(ts_ms / 1000, UTC),
                     host="mx", queue_id=uuid.uuid4().hex[:10], client_ip="10.1.2.3",
                     sasl_username=user, sender=f"{user}@example.net",
                     recipients=["x@y.example"], direction=Direction.OUTBOUND, accepted=True,
                     spam=spam, source=EventSource.LOG)


def test_console_state_on_a_broker(kafka_settings: KafkaSettings) -> None:
    tag = uuid.uuid4().hex[:6]
    config = FloodgateConfig.model_validate({
        "kafka": kafka_settings.model_dump(),
        "topics": {name: f"console-{name}-{tag}" for name in
                   ("mail_events", "deliveries", "policy_events", "actions", "dead_letter",
                    "subject_events", "subject_settings")},
        "classes": {"default": "consumer", "names": ["consumer", "business"]},
        "thresholds": [{"name": "burst", "key": "sasl_username", "window": "30s",
                        "messages": 60, "action": "defer", "duration": "15m"}],
        "worker": {"partitions": 2}})
    prepare_topics(config)
    producer = Producer(producer_config(kafka_settings))
    now = int(time.time() * 1000)
    old = now - 2 * 3_600_000  # before the hour the console reads
    for user, ts, count in (("ancient", old, 5), ("busy", now - 60_000, 30), ("calm", now - 30_000, 3)):
        for _ in range(count):
            producer.produce(config.topics.mail_events, mail(user, ts).model_dump_json().encode(),
                             key=user.encode(), timestamp=ts)
    producer.produce(config.topics.mail_events, b"{not json", timestamp=now)
    for answer in ("DUNNO", "DUNNO", "DEFER 4.7.1 Too much mail"):
        policy = PolicyEvent(event_id=uuid.uuid4().hex, ts=datetime.fromtimestamp(now / 1000, UTC),
                             host="mx", request=PolicyRequest(sasl_username="busy"), answer=answer)
        producer.produce(config.topics.policy_events, policy.model_dump_json().encode(),
                         timestamp=now)
    assert producer.flush(30) == 0

    state = ConsoleState(config)
    state.start()
    try:
        wait_for(lambda: state.ready and state.status()["mail_counted"] == 33
                 and state.status()["bad_records"] == 1)
        # Kafka starts the readers at the hour's first record; Tansu answers ListOffsets by
        # time with offset 0, so there the old records are read too, and left out by their time.
        assert state.status()["mail_too_old"] in (0, 5)
        rows = state.top(300)["dimensions"]["sasl_username"]["rows"]
        assert [(r["value"], r["messages"]) for r in rows] == [("busy", 30), ("calm", 3)]
        wait_for(lambda: sum(b["dunno"] + b["defer"] for b in state.answers()["series"]) == 3
                 or state.answers()["requests_per_second_last_minute"] > 0, 15)

        # an operator's action, then its lift: at once in the list, and on the topic for all
        with pytest.raises(OperatorError, match="both required"):
            state.add("sasl_username:busy", "block", "2h", "ann", " ")
        for never in ("client_ip:[10.1.2.3]", "client_ip:10.0.0.0/8", "client_ip:999.1.1.1"):
            with pytest.raises(OperatorError, match=r"client_ip:192\.0\.2\.7|client_net:"):
                state.add(never, "block", "2h", "ann", "would never apply")
        added = state.add("sasl_username:busy", "block", "2h", "ann", "ticket 42")
        assert [a["action_id"] for a in state.actions("BUS")["actions"]] == [added.action_id]
        assert state.actions("nobody")["actions"] == []
        # its settings: shown with the action and in Top subjects, and what it gets
        with pytest.raises(OperatorError, match="unknown class 'gold'"):
            state.set_settings("sasl_username:busy", "gold", "", "", False, "ann", "upsell")
        with pytest.raises(OperatorError, match=r"THRESHOLD\.FIELD=N"):
            state.set_settings("sasl_username:busy", "", "burst=5", "", False, "ann", "x")
        state.set_settings("sasl_username:busy", "business", "burst.messages=600", "", False,
                           "ann", "ticketing system")
        [row] = state.actions("")["actions"]
        assert row["settings"]["class"] == "business"
        assert row["settings"]["overrides"] == {"burst": "messages=600"}
        top_row = state.top(300)["dimensions"]["sasl_username"]["rows"][0]
        assert top_row["value"] == "busy" and top_row["settings"]["reason"] == "ticketing system"
        shown = state.subject_settings("sasl_username:busy")
        assert shown["effective"] == ["burst: >= 600 messages in 30s (override)"]
        assert state.unset_settings("sasl_username:busy", "ann", "no longer") == \
            "sasl_username:busy"
        assert state.subject_settings("sasl_username:busy")["settings"] is None
        lifts = state.lift("sasl_username:busy", "bob", "customer called", reset=True)
        assert state.actions("")["actions"] == []
        with pytest.raises(OperatorError, match="no action in force"):
            state.lift("sasl_username:busy", "bob", "again", reset=False)
    finally:
        state.stop()

    seen: list[ActionEvent] = []
    feed = ActionFeed(kafka_settings, config.topics.actions,
                      lambda event, _p, _o: seen.append(event) if event else None)
    feed.start()
    try:
        assert feed.caught_up.wait(60)
    finally:
        feed.stop()
    assert [(a.state, a.actor, a.reason) for a in seen] == [
        (ActionState.ACTIVE, "ann", "ticket 42"), (ActionState.LIFTED, "bob", "customer called")]
    assert seen[1].reset and seen[1].action_id == lifts[0].action_id == added.action_id
    changes: list[tuple[str | None, bytes | None]] = []
    settings_feed = SettingsFeed(kafka_settings, config.topics.subject_settings,
                                 lambda key, value: changes.append((key, value)))
    settings_feed.start()
    try:
        assert settings_feed.caught_up.wait(60)
    finally:
        settings_feed.stop()
    assert [(key, value is None) for key, value in changes] == [
        ("sasl_username:busy", False), ("sasl_username:busy", True)]
