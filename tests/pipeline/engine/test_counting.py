import pytest

from pipeline.engine.counting import (
    CountedMail,
    Exemptions,
    in_scope,
    is_countable,
    subject_of,
    units,
)
from pipeline.engine.evaluator import ThresholdEngine
from schemas.config import Exempt, FloodgateConfig
from schemas.events import MailEvent
from schemas.vocabulary import SubjectType
from tests.pipeline.engine.builders import mail, threshold

NO_EXEMPTIONS = Exemptions(Exempt())


@pytest.mark.parametrize(("fields", "counts"), [
    ({}, True),
    ({"accepted": False, "spam": True}, True),   # refused as spam: the abuse we look for
    ({"accepted": False, "spam": None, "reject_reason": "Relay access denied"}, False),
    ({"accepted": False, "spam": False}, False),  # e.g. deferred by an active Floodgate action
    ({"sender": ""}, True),     # MAIL FROM:<> from a client is the client's mail
    ({"sender": "double-bounce@example.net"}, True),
    ({"mta_generated": True}, False),  # Postfix made it (a bounce, a delay notice)
    ({"sender": None}, True),
])
def test_which_messages_count(fields: dict[str, object], counts: bool) -> None:
    assert is_countable(mail(**fields), NO_EXEMPTIONS) is counts


EXEMPT = Exemptions(Exempt(
    client_ips=["192.0.2.0/24", "2001:db8::/32"],
    senders=["alerts@example.org", "@lists.example.com"],
    sasl_usernames=["monitoring"]))


@pytest.mark.parametrize("fields", [
    {"client_ip": "192.0.2.77"},
    {"client_ip": "2001:db8::25"},
    {"sasl_username": "monitoring"},
])
def test_mail_of_exempt_accounts_and_networks_never_counts(fields: dict[str, object]) -> None:
    assert not is_countable(mail(**fields), EXEMPT)
    assert is_countable(mail(), EXEMPT)


@pytest.mark.parametrize("sender", ["Alerts@Example.ORG", "anyone@lists.example.com"])
def test_an_exempt_sender_keeps_only_its_sender_and_domain_out(sender: str) -> None:
    engine = ThresholdEngine(FloodgateConfig(
        exempt=Exempt(senders=["alerts@example.org", "@lists.example.com"]),
        thresholds=[threshold(name=k, key=k) for k in
                    ("sasl_username", "sender", "sender_domain", "client_ip")]))
    event = mail(sender=sender)
    assert {s.type for s in engine.subjects(event)} == {
        SubjectType.SASL_USERNAME, SubjectType.CLIENT_IP}


def test_direction_and_sender_domain_scope() -> None:
    outbound_only = threshold(direction="outbound", sender_domains=["example.net"])
    def scope(event: MailEvent) -> tuple[str, str | None]:
        return event.direction, event.sender_domain

    assert in_scope(outbound_only, *scope(mail()))
    assert not in_scope(outbound_only, *scope(mail(direction="inbound")))
    assert not in_scope(outbound_only, *scope(mail(sender="x@other.org")))
    assert in_scope(threshold(direction="any"), *scope(mail(direction="unknown")))


def test_subjects_are_normalised() -> None:
    event = mail(sender="Alice@Example.NET", client_ip="2001:DB8:0:0::1")
    assert subject_of(SubjectType.SENDER, event) == "alice@example.net"
    assert subject_of(SubjectType.SENDER_DOMAIN, event) == "example.net"
    assert subject_of(SubjectType.CLIENT_IP, event) == "2001:db8::1"
    assert subject_of(SubjectType.SASL_USERNAME, mail(sasl_username=None)) is None


def test_units_per_count_mode() -> None:
    event = mail(recipients=["a@x.org", "b@x.org", "c@x.org"])
    assert units(threshold(count="messages"), CountedMail.of(event)) == 1
    assert units(threshold(count="recipients"), CountedMail.of(event)) == 3
    assert CountedMail.of(mail(recipients=[], recipient_count=0)).recipients == 1
