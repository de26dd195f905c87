"""The PolicyEvent publisher never takes the policy service down: a producer that fails for good is
replaced and the events Kafka had not acknowledged are sent again, counted once. The real
producer against a killed and restarted broker: tests/robustness/test_broker_restart.py."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from connectors.postfix_policy.policy_events import PolicyEventPublisher, policy_event_json
from connectors.postfix_policy.policy_protocol import Answer
from schemas.config import KafkaSettings
from schemas.events import ActionEvent, PolicyEvent, PolicyRequest
from schemas.time_ms import from_ms, to_ms
from tests.pipeline.engine.builders import T0

FATAL = KafkaException(KafkaError(KafkaError._FATAL, "sequence desynchronization", fatal=True))
Report = Callable[[object, object], None]


class FakeProducer:
    """Keeps what was produced with its delivery report; ``fail`` makes poll raise as librdkafka
    does after a fatal error."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Report]] = []
        self.fail = False

    def produce(self, topic: str, value: bytes, key: bytes, timestamp: int,
                on_delivery: Report) -> None:
        if self.fail:
            raise FATAL
        self.sent.append((value, on_delivery))

    def poll(self, timeout: float) -> int:
        if self.fail:
            raise FATAL
        return 0

    def acknowledge(self, error: object = None) -> None:
        for _, report in self.sent:
            report(error, None)


@pytest.fixture
def producers(monkeypatch: pytest.MonkeyPatch) -> list[FakeProducer]:
    made: list[FakeProducer] = []

    def new(self: Any) -> FakeProducer:
        made.append(FakeProducer())
        return made[-1]

    monkeypatch.setattr(PolicyEventPublisher, "_new_producer", new)
    return made


def publisher(buffer_limit: int = 100) -> PolicyEventPublisher:
    return PolicyEventPublisher(KafkaSettings(bootstrap_servers="127.0.0.1:1"), "policy", "mx1",
                                buffer_limit)


def publish(p: PolicyEventPublisher, n: int) -> None:
    for i in range(n):
        p.publish({"request": "smtpd_access_policy", "protocol_state": "RCPT",
                   "instance": f"i{i}", "sender": "alice@example.net",
                   "recipient": f"r{i}@example.com"}, Answer(b"action=DUNNO\n\n", None), 1_000 + i)


def test_acknowledged_events_are_counted(producers: list[FakeProducer]) -> None:
    p = publisher()
    publish(p, 3)
    producers[0].acknowledge()
    assert (p.published, p.failed, p.dropped) == (3, 0, 0)


def test_a_failed_producer_is_replaced_and_its_unacknowledged_events_sent_again(
        producers: list[FakeProducer]) -> None:
    p = publisher()
    publish(p, 5)
    producers[0].sent[0][1](None, None)  # one got through before the failure
    producers[0].fail = True
    p.poll()
    assert len(producers) == 2 and p.replaced == 1
    assert [value for value, _ in producers[1].sent] == [v for v, _ in producers[0].sent[1:]]
    producers[0].acknowledge(KafkaError(KafkaError._FATAL))  # the old one's late reports
    assert p.failed == 0
    producers[1].acknowledge()
    publish(p, 1)
    producers[1].sent[-1][1](None, None)
    assert (p.published, p.failed, p.dropped) == (6, 0, 0)


def test_an_event_acknowledged_by_both_producers_counts_once(producers: list[FakeProducer]) -> None:
    p = publisher()
    publish(p, 2)
    producers[0].fail = True
    publish(p, 1)  # produce itself raises: replaced at once
    producers[0].acknowledge()  # the old one did deliver its two
    producers[1].acknowledge()
    assert (p.published, p.replaced) == (3, 1)


def test_refusals_of_the_current_producer_count_and_a_full_buffer_drops(
        producers: list[FakeProducer]) -> None:
    p = publisher(buffer_limit=2)
    publish(p, 3)
    assert p.dropped == 1
    producers[0].acknowledge(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    assert (p.published, p.failed) == (0, 2)


def test_the_event_json_is_what_the_contract_model_writes() -> None:
    """``policy_event_json`` skips the model on the hot path: its bytes must be the model's,
    for any request the server can read (unknown attributes, one named ``other``, quotes,
    control characters, non-ASCII, no instance) and any answer."""
    rng = random.Random(3)
    names = [*(n for n in PolicyRequest.model_fields if n != "other"), "other", "x_custom",
             "Sender", "ccert_subject"]
    values = ["", "alice@example.net", 'a"b\\c', "\x00\x1f\x7f", "Bücher\u2028end", "=", "CN=a=b",
              "\ufffd", "x" * 3000]
    action = ActionEvent(action_id="a-1", ts=T0, subject_type="sasl_username", subject="bob",
                         action="block", threshold="burst", state="active", origin="auto",
                         triggered_at=T0, expires_at=T0 + timedelta(minutes=5))
    answers = [Answer(b"action=DUNNO\n\n", None),
               Answer(b"action=REJECT 5.7.1 too much mail\n\n", action)]
    for n in range(2_000):
        attributes = {rng.choice(names): rng.choice(values) for _ in range(rng.randrange(0, 12))}
        answer, now_ms = rng.choice(answers), to_ms(T0) + rng.randrange(0, 5_000) * 7
        request = PolicyRequest(**{k: v for k, v in attributes.items()
                                   if k in PolicyRequest.model_fields and k != "other"},
                                other={k: v for k, v in attributes.items()
                                       if k not in PolicyRequest.model_fields or k == "other"})
        expected = PolicyEvent(
            event_id=f"mx1/policy/{request.instance or '-'}/{request.protocol_state}/"
                     f"{request.recipient}"[:2000],
            ts=from_ms(now_ms), host="mx1", request=request, answer=answer.line,
            action_id=answer.action.action_id if answer.action else None)
        assert policy_event_json("mx1", attributes, answer, now_ms) == \
            expected.model_dump_json().encode(), (n, attributes)
