"""Demo traffic asks the policy service as Postfix would, and records refusals as refused."""

from __future__ import annotations

import random

import pytest

from connectors.demo_traffic import DemoMail, as_answered, mail_event, policy_question
from pipeline.engine.counting import Exemptions, is_countable
from schemas.config import Exempt


def test_the_question_is_an_end_of_message_request_for_the_mail() -> None:
    event = mail_event(DemoMail(0, "compromised", False), 1_800_000_000_000, random.Random(1))
    question = policy_question(event)
    assert question["protocol_state"] == "END-OF-MESSAGE"
    assert (question["sasl_username"], question["sender"], question["client_address"]) == (
        "compromised", "compromised@example.net", event.client_ip)
    assert question["queue_id"] == event.queue_id and question["recipient"] == event.recipients[0]


@pytest.mark.parametrize(("answer", "accepted"), [
    ("DUNNO", True), ("WARN watched", True), ("HOLD quarantined", True),
    ("DEFER 4.7.1 Too much mail", False), ("REJECT 5.7.1 Sending suspended", False),
])
def test_refused_mail_is_recorded_refused_and_never_counts(answer: str, accepted: bool) -> None:
    event = mail_event(DemoMail(0, "spammer", True), 1_800_000_000_000, random.Random(1))
    answered = as_answered(event, answer)
    assert answered.accepted is accepted
    assert is_countable(answered, Exemptions(Exempt())) is accepted
    if not accepted:
        assert answered.reject_reason == answer and answered.spam is False  # our own refusal
