import pytest

from pipeline.engine.counting import (
    CountedMail,
    Exemptions,
    in_scope,
    is_countable,
    subject_of,
    unit_flags,
    unit_id,
    units,
)
from pipeline.engine.evaluator import ThresholdEngine
from schemas.config import Exempt, FloodgateConfig
from schemas.events import MailEvent
from schemas.vocabulary import DELIVERY_UNIT, FLAG_BITS, Flag, SubjectType
from tests.pipeline.engine.builders import delivery, mail, threshold

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


BOUNCED, REFUSED = FLAG_BITS[Flag.BOUNCED], FLAG_BITS[Flag.REMOTE_REFUSED]


@pytest.mark.parametrize(("status", "response", "flags"), [
    ("sent", "250 2.0.0 Ok: queued as 4XyZ", DELIVERY_UNIT),
    ("bounced", "host mx.example.com[192.0.2.1] said: 550 5.1.1 <bob@example.com>: User unknown "
                "(in reply to RCPT TO command)", DELIVERY_UNIT | BOUNCED | REFUSED),
    ("bounced", "host aspmx.l.google.com[192.0.2.2] said: 550-5.1.1 The email account that you "
                "tried to reach does not exist", DELIVERY_UNIT | BOUNCED | REFUSED),
    ("deferred", "host mx.example.com[192.0.2.1] said: 421 4.7.0 Try again later",
     DELIVERY_UNIT | REFUSED),
    ("bounced", "Domain example.com does not accept mail (nullMX)", DELIVERY_UNIT | BOUNCED),
    # no remote answer: the network, not the receiver, refused
    ("deferred", "connect to mx.example.com[192.0.2.1]:25: Connection refused", DELIVERY_UNIT),
    ("deferred", "host mx.example.com[192.0.2.1] said: 2.0.0 odd", DELIVERY_UNIT),
    ("deferred", "lost connection with host mx.example.com[192.0.2.1] said: 550 fake",
     DELIVERY_UNIT),  # the prefix must be Postfix's, at the start
    # refused at the greeting: the clearest sign of a blocklisted sender
    ("deferred", "host mx.example.com[192.0.2.1] refused to talk to me: 554 5.7.1 Service "
                 "unavailable; Client host [198.51.100.7] blocked", DELIVERY_UNIT | REFUSED),
    ("bounced", "host mx.example.com[192.0.2.1] refused to talk to me: 550 5.7.1 go away",
     DELIVERY_UNIT | BOUNCED | REFUSED),
    ("deferred", "lost connection with host mx.example.com[192.0.2.1] while receiving the "
                 "initial server greeting", DELIVERY_UNIT),
    ("deferred", "conversation with mx.example.com[192.0.2.1] timed out while receiving the "
                 "initial server greeting", DELIVERY_UNIT),
])
def test_what_a_delivery_attempt_is_flagged_with(status: str, response: str, flags: int) -> None:
    assert unit_flags(delivery(status=status, response=response)) == flags


@pytest.mark.parametrize(("fields", "counts"), [
    ({"status": "sent"}, True),
    ({"status": "deferred"}, True),
    ({"status": "bounced"}, True),
    ({"status": "expired"}, False),  # the end of earlier attempts, not one of its own
    # Postfix did not try (the destination had just failed): the answer counted once, for
    # the attempt that got it
    ({"status": "deferred", "response": "delivery temporarily suspended: host mx.example.com"
      "[192.0.2.1] refused to talk to me: 421 4.7.0 later"}, False),
    ({"status": "deferred", "response": "delivery temporarily suspended: connect to "
      "mx.example.com[192.0.2.1]:25: Connection refused"}, False),
    ({"status": "sent", "mta_generated": True}, False),  # a bounce notice Postfix sent
    ({"status": "sent", "sasl_username": "monitoring"}, False),
])
def test_which_delivery_attempts_count(fields: dict[str, object], counts: bool) -> None:
    assert is_countable(delivery(**fields), EXEMPT) is counts


def test_a_delivery_counts_once_per_attempt_and_only_for_deliveries_thresholds() -> None:
    first, retry = delivery(status="deferred"), delivery(status="sent")
    assert unit_id(first) != unit_id(retry) and unit_id(first) != first.event_id
    volume = threshold(name="volume", key="sasl_username")
    bounces = threshold(name="bounces", key="client_ip", count="deliveries", flagged="bounced",
                        flagged_units=5, messages=10)
    engine = ThresholdEngine(FloodgateConfig(thresholds=[volume, bounces]))
    assert engine.counts_deliveries
    assert [s.key for s in engine.subjects(first)] == ["client_ip:10.0.0.5"]
    assert {s.key for s in engine.subjects(mail())} == {"sasl_username:alice"}
    counted = CountedMail.of(first)
    assert in_scope(bounces, counted.direction, counted.sender_domain, counted.flags)
    assert not in_scope(volume, counted.direction, counted.sender_domain, counted.flags)
    assert not in_scope(bounces, counted.direction, counted.sender_domain, 0)


UNKNOWN = FLAG_BITS[Flag.UNKNOWN_RECIPIENT]


@pytest.mark.parametrize(("fields", "flags"), [
    ({"reject_reason": "550 5.1.1 <x@example.net>: Recipient address rejected: User unknown in "
                       "virtual mailbox table"}, UNKNOWN),
    ({"reject_reason": "450 4.1.1 <x@example.org>: Recipient address rejected: unverified "
                       "address: host mx[192.0.2.1] said: 550 5.1.1 no such user"}, UNKNOWN),
    ({"reject_reason": "554 5.7.1 <x@example.org>: Relay access denied"}, None),
    # the recipient is the client's text: only the server's own code and status decide
    ({"reject_reason": "554 5.7.1 <550 5.1.1@example.org>: Relay access denied"}, None),
    ({"reject_reason": "550 5.1.10 odd"}, None),
    ({"reject_reason": "550 5.1.1 spam", "spam": True}, FLAG_BITS[Flag.SPAM]),
    ({"reject_reason": None}, None),
])
def test_a_recipient_refused_as_unknown_is_the_only_refusal_that_counts_besides_spam(
        fields: dict[str, object], flags: int | None) -> None:
    refused = mail(accepted=False, recipients=["x@example.net"], **fields)
    assert is_countable(refused, NO_EXEMPTIONS) is (flags is not None)
    if flags is not None:
        assert unit_flags(refused) == flags


def test_refused_recipients_count_only_for_unknown_recipient_thresholds() -> None:
    volume = threshold(name="volume", count="recipients")
    spam = threshold(name="spam", count="recipients", spams=3)
    harvest = threshold(name="harvest", count="recipients", flagged="unknown_recipient",
                        flagged_units=10, messages=20)
    engine = ThresholdEngine(FloodgateConfig(thresholds=[volume, spam, harvest]))
    unknown = CountedMail.of(mail(accepted=False, reject_reason="550 5.1.1 <x@y>: User unknown"))
    accepted = CountedMail.of(mail(recipients=["a@x.org", "b@x.org"]))
    for t, counts_refused in ((volume, False), (spam, False), (harvest, True)):
        assert in_scope(t, unknown.direction, unknown.sender_domain, unknown.flags) is \
            counts_refused
        assert in_scope(t, accepted.direction, accepted.sender_domain, accepted.flags)
    assert units(harvest, accepted) == 2 and units(harvest, unknown) == 1
    assert [s.key for s in engine.subjects(
        mail(accepted=False, reject_reason="550 5.1.1 <x@y>: User unknown"))] == [
        "sasl_username:alice"]
