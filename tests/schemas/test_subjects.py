"""The subject key ``type:value``: one spelling for records, state, lookups and operators."""

from __future__ import annotations

import pytest

from schemas.addresses import MAX_ADDRESS
from schemas.events import ActionEvent
from schemas.subjects import (
    client_subject,
    normalise_subject,
    parse_subject,
    split_subject_key,
    subject_key,
)
from schemas.vocabulary import SubjectType
from tests.fixtures.policy_requests import action


def test_a_key_splits_back_into_what_made_it() -> None:
    for kind, value in [(SubjectType.SENDER, "a:b@example.net"),
                        (SubjectType.CLIENT_IP, "2001:db8::1"),
                        (SubjectType.SASL_USERNAME, "alice")]:
        assert split_subject_key(subject_key(kind, value)) == (kind, value)


@pytest.mark.parametrize("key", ["sender", "sender:", "nonsense:x", ":x", ""])
def test_a_key_that_is_not_one_is_refused(key: str) -> None:
    with pytest.raises(ValueError):
        split_subject_key(key)


def test_an_action_s_key_is_the_subject_key() -> None:
    event: ActionEvent = action("block", "client_ip", "2001:db8::1")
    assert event.key == subject_key(SubjectType.CLIENT_IP, "2001:db8::1") == "client_ip:2001:db8::1"


def test_senders_and_domains_take_their_one_spelling_others_stay_as_given() -> None:
    assert normalise_subject(SubjectType.SENDER, '"Alice+x"@Example.NET', "+") == "alice@example.net"
    assert normalise_subject(SubjectType.SENDER_DOMAIN, "Bücher.Example.") == "xn--bcher-kva.example"
    assert normalise_subject(SubjectType.SASL_USERNAME, "Alice") == "Alice"
    assert normalise_subject(SubjectType.SENDER, "") is None
    assert normalise_subject(SubjectType.SENDER, None) is None


def test_an_operator_s_subject_is_parsed_into_the_same_spelling() -> None:
    assert parse_subject("sender: Alice@Example.NET") == (SubjectType.SENDER, "alice@example.net")
    with pytest.raises(ValueError, match="type one of"):
        parse_subject("user:alice")
    with pytest.raises(ValueError, match="no value"):
        parse_subject("sender:  ")
    with pytest.raises(ValueError, match=f"longer than {MAX_ADDRESS}"):
        parse_subject("sender:" + "a" * (MAX_ADDRESS + 1))


def test_a_network_subject_has_one_spelling() -> None:
    assert parse_subject("client_net:2001:DB8:1:2:0:0:0:7/64") == (
        SubjectType.CLIENT_NET, "2001:db8:1:2::/64")
    assert parse_subject("client_net:198.51.100.77/24") == (
        SubjectType.CLIENT_NET, "198.51.100.0/24")
    for bad in ("client_net:198.51.100.7", "client_net:garbage/24", "client_net:10.0.0.0/33",
                "client_net:10.0.0.0/32", "client_net:::/0"):
        with pytest.raises(ValueError):
            parse_subject(bad)
    assert client_subject("2001:db8:1:2::7", 24, 64) == (SubjectType.CLIENT_NET,
                                                         "2001:db8:1:2::/64")
    assert client_subject("192.0.2.7", 32, 64) == (SubjectType.CLIENT_IP, "192.0.2.7")


@pytest.mark.parametrize(("text", "message"), [
    ("client_ip:10.0.0.0/8", "is a network: write client_net:10.0.0.0/8"),
    ("client_ip:[10.1.2.3]", "write it bare"),  # Postfix's own log form
    ("client_ip:IPv6:2001:db8::1", "write it bare"),
    ("client_ip:999.1.1.1", "is not a client address"),
    ("client_ip:10.0.0.1x", "is not a client address"),
    ("sender_domain:exa mple..com", "is not a domain name"),
    ("sender:nobody", "is not an address"),
    ("sender:a@exa mple..com", "is not a domain name"),
])
def test_a_subject_that_could_never_match_is_refused_saying_what_would(
        text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(".", r"\.")):
        parse_subject(text)


def test_an_operator_s_subject_is_what_the_policy_service_matches() -> None:
    """Each accepted spelling, added as an action, is enforced on the request it names."""
    from pipeline.engine.policy_decision import PolicyResponder
    from schemas.config import Exempt, PolicySettings
    from tests.fixtures.policy_requests import NOW, request, view_of

    for text, attributes in (
            ("client_ip:2001:DB8:0:0::1", {"client_address": "2001:db8::1"}),
            ("client_ip: 192.0.2.7", {"client_address": "192.0.2.7"}),
            ("client_net:10.1.2.3/16", {"client_address": "10.1.200.9"}),
            ("sender_domain:Example.NET.", {"sender": "bob@example.net"}),
            ("sender:Bob@Example.NET", {"sender": "bob@example.net"})):
        kind, value = parse_subject(text)
        view = view_of(action("defer", kind.value, value))
        answer = PolicyResponder(PolicySettings(), Exempt(), view).answer(
            request(sasl_username="", **attributes), NOW)
        assert answer.wire.startswith(b"action=DEFER"), (text, value)
