import ipaddress
import random
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from schemas.events import ActionEvent, MailEvent, canonical_ip

BASE = {"event_id": "mx1:4Bx", "ts": "2026-11-27T13:00:00+01:00", "host": "mx1",
        "accepted": True, "source": "log"}


def test_time_is_normalised_to_utc_and_must_carry_a_zone() -> None:
    event = MailEvent(**BASE)
    assert event.ts == datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert event.ts.utcoffset() == timedelta(0)
    with pytest.raises(ValidationError, match="timezone"):
        MailEvent(**{**BASE, "ts": "2026-11-27T13:00:00"})


def test_sender_domain_and_recipient_count_are_derived() -> None:
    event = MailEvent(**BASE, sender="Bob@Mail.Example.NET.", recipients=["a@x.org", "b@x.org"])
    assert event.sender_domain == "mail.example.net"
    assert event.recipient_count == 2
    assert MailEvent(**BASE, sender="").sender_domain is None
    assert MailEvent(**BASE, recipients=["a@x.org"], recipient_count=5000).recipient_count == 5000


def test_client_ip_is_validated_and_normalised() -> None:
    assert MailEvent(**BASE, client_ip="[2001:DB8::0:1]").client_ip == "2001:db8::1"
    with pytest.raises(ValidationError, match="not an IPv4 or IPv6 address"):
        MailEvent(**BASE, client_ip="unknown")


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    event = MailEvent.model_validate_json(
        '{"event_id":"a","ts":"2026-11-27T12:00:00Z","host":"h","accepted":true,'
        '"source":"policy","added_in_v2":{"x":1}}')
    assert event.event_id == "a"


def test_input_is_bounded() -> None:
    with pytest.raises(ValidationError):
        MailEvent(**BASE, sender="a" * 600 + "@x.org")
    with pytest.raises(ValidationError):
        MailEvent(**BASE, recipients=["r@x.org"] * 10_001)


def test_action_key_is_type_and_subject() -> None:
    action = ActionEvent(
        action_id="id", ts=BASE["ts"], subject_type="sender", subject="a@x.org", action="block",
        threshold="t", state="active", origin="auto", triggered_at=BASE["ts"],
        expires_at="2026-11-27T14:00:00Z")
    assert action.key == "sender:a@x.org"
    assert ActionEvent.model_validate_json(action.model_dump_json()) == action


def test_client_addresses_are_written_as_python_writes_them() -> None:
    """The fast paths (a plain IPv4 address as given, IPv6 through the C library) give
    ``ipaddress``'s compressed form for every spelling of an address, and refuse what it
    refuses."""
    rng = random.Random(9)
    spellings = ["::ffff:1.2.3.4", "::1.2.3.4", "fe80::1%eth0", "0001::", "::", "1::2::3",
                 "12345::", "01.2.3.4", "1.2.3.256", "[10.0.0.1]", "IPv6:2001:db8::1", " ::1"]
    for _ in range(3_000):
        groups = [rng.choice([0, 0, rng.randrange(65536), rng.randrange(16)]) for _ in range(8)]
        address = ipaddress.IPv6Address(b"".join(g.to_bytes(2, "big") for g in groups))
        spellings += [address.exploded, address.compressed, address.exploded.upper()]
        spellings.append(".".join(str(rng.choice([0, rng.randrange(256)])) for _ in range(4)))
    for text in spellings:
        try:
            expected: str | None = str(ipaddress.ip_address(text.strip("[]")))
        except ValueError:
            expected = None
        if expected is None:
            with pytest.raises(ValueError, match="not an IPv4 or IPv6 address"):
                canonical_ip(text)
        else:
            assert canonical_ip(text) == expected, text
