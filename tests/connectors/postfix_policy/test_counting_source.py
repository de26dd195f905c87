"""Policy requests as a counting source: the same event id as the log, refusals not accepted."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors.postfix_policy.counting_source import mail_event_from_policy
from connectors.postfix_policy.policy_protocol import is_refusal
from schemas.config import Networks
from schemas.direction import DirectionRules
from schemas.events import PolicyEvent, PolicyRequest
from schemas.vocabulary import Direction, EventSource
from tests.pipeline.engine.builders import T0

RULES = DirectionRules(Networks(internal=["10.0.0.0/8"], local_domains=["example.net"]))


def policy(answer: str = "DUNNO", **attributes: str) -> PolicyEvent:
    values = {"request": "smtpd_access_policy", "protocol_state": "END-OF-MESSAGE",
              "queue_id": "4Fx1Q2", "sender": "alice@example.net", "recipient": "",
              "recipient_count": "3", "size": "1234", "client_address": "10.0.0.5",
              "sasl_username": "alice", "instance": "a1.b2.c3"}
    values.update(attributes)
    return PolicyEvent(event_id="mx1/policy/x", ts=T0, host="mx1",
                       request=PolicyRequest(**values), answer=answer)


def test_end_of_message_becomes_the_log_connectors_message() -> None:
    mail = mail_event_from_policy(policy(), RULES)
    assert mail is not None
    assert mail.event_id == "mx1/4Fx1Q2"  # what connectors/postfix_log gives host mx1, qid 4Fx1Q2
    assert (mail.recipient_count, mail.size, mail.sasl_username) == (3, 1234, "alice")
    assert mail.direction is Direction.OUTBOUND
    assert mail.accepted and mail.source is EventSource.POLICY and mail.spam is None


@pytest.mark.parametrize("state", ["RCPT", "DATA", "CONNECT", ""])
def test_other_stages_are_not_messages(state: str) -> None:
    assert mail_event_from_policy(policy(protocol_state=state), RULES) is None


@pytest.mark.parametrize(("answer", "refused"), [
    ("DUNNO", False), ("HOLD held by floodgate", False), ("WARN over limit", False),
    ("REJECT 5.7.1 too much mail", True), ("DEFER 4.7.1 slow down", True),
    ("defer_if_permit later", True), ("450 4.7.1 later", True), ("", False),
])
def test_refusals_are_not_accepted(answer: str, refused: bool) -> None:
    assert is_refusal(answer) is refused
    mail = mail_event_from_policy(policy(answer), RULES)
    assert mail is not None and mail.accepted is not refused


def test_a_single_recipient_decides_the_direction() -> None:
    mail = mail_event_from_policy(policy(recipient="bob@example.net", recipient_count="1",
                                         client_address="203.0.113.9", sasl_username=""), RULES)
    assert mail is not None and mail.direction is Direction.INBOUND


def test_values_that_are_not_valid_raise() -> None:
    with pytest.raises(ValidationError):
        mail_event_from_policy(policy(client_address="not-an-ip"), RULES)


def test_a_claimed_recipient_count_is_bounded() -> None:
    mail = mail_event_from_policy(policy(recipient_count="9" * 18), RULES)
    assert mail is not None and mail.recipient_count == 100_000
