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
