"""One spelling of addresses and domains: the log's quoted form, the policy request's bare
form and both IDN forms of a domain are the same subject."""

from __future__ import annotations

import pytest

from pipeline.engine.policy_decision import subject_keys
from schemas.addresses import domain_of, normal_address, normal_domain
from schemas.config import Exempt
from schemas.subjects import normalise_subject
from schemas.thresholds import Threshold
from schemas.vocabulary import SubjectType


@pytest.mark.parametrize(("logged", "requested"), [
    ('"a b"@X.example', "a b@x.example"),
    ('"a\\"b"@x.example', 'a"b@x.example'),
    ('"a\\\\b"@x.example', "a\\b@x.example"),
    ("Alice@Bücher.Example.", "alice@xn--bcher-kva.example"),
])
def test_the_log_s_form_and_the_policy_request_s_form_are_one_subject(logged: str,
                                                                      requested: str) -> None:
    assert normal_address(logged) == normal_address(requested)
    assert normalise_subject(SubjectType.SENDER, logged) == normal_address(requested)


def test_idn_domains_fold_to_their_ascii_form() -> None:
    assert normal_domain("BÜCHER.example") == "xn--bcher-kva.example" == normal_domain(
        "xn--bcher-kva.EXAMPLE.")
    assert domain_of("a@bücher.example") == "xn--bcher-kva.example"
    assert domain_of("") is None and domain_of("postmaster") is None
    assert normal_domain("a" * 70 + "ü.example").endswith("ü.example")  # IDNA refuses: kept


def test_config_accepts_both_idn_forms_and_quoted_exempt_senders() -> None:
    threshold = Threshold(name="t", key="sender_domain", window="30s", messages=5, action="defer",
                          duration="15m", sender_domains=["bücher.example"])
    assert threshold.sender_domains == ["xn--bcher-kva.example"]
    exempt = Exempt(senders=['"Alerts Team"@Bücher.example', "@xn--bcher-kva.example"])
    assert exempt.senders == ["alerts team@xn--bcher-kva.example", "@xn--bcher-kva.example"]


def test_the_policy_service_looks_up_the_log_s_subjects() -> None:
    keys = subject_keys({"sender": "a b@bücher.example", "client_address": "10.0.0.5"})
    assert keys[:2] == ["sender:a b@xn--bcher-kva.example",
                        "sender_domain:xn--bcher-kva.example"]
    logged = '"a b"@BÜCHER.example'
    assert f"sender:{normalise_subject(SubjectType.SENDER, logged)}" == keys[0]


def test_address_extensions_fold_when_the_delimiters_are_set() -> None:
    assert normal_address("Alice+News@x.example", "+") == "alice@x.example"
    assert normal_address('"alice-list+x"@x.example', "+-") == "alice@x.example"
    assert normal_address("+only@x.example", "+") == "+only@x.example"  # nothing before it
    assert normal_address("alice+news@x.example") == "alice+news@x.example"  # off by default


def test_folded_extensions_count_exempt_and_enforce_as_one_address() -> None:
    from pipeline.engine.evaluator import ThresholdEngine
    from schemas.config import FloodgateConfig
    from tests.fixtures.policy_requests import action, answer, view_of
    from tests.pipeline.engine.builders import mail
    config = FloodgateConfig(addresses={"extension_delimiters": "+"},
                             exempt={"senders": ["alerts+ops@example.net"]},
                             thresholds=[{"name": "s", "key": "sender", "window": "30s",
                                          "messages": 2, "action": "defer", "duration": "1m"}])
    engine = ThresholdEngine(config)
    assert [s.value for s in engine.subjects(mail(sender="Bob+a@example.net"))] == [
        "bob@example.net"]
    assert engine.subjects(mail(sender="alerts+other@example.net")) == []
    view = view_of(action("defer", "sender", "bob@example.net"))
    assert answer(view, delimiters="+", sender="bob+news@example.net").startswith(b"action=DEFER")
    assert answer(view, sender="bob+news@example.net") == b"action=DUNNO\n\n"


def test_a_network_set_answers_for_every_spelling_of_an_address() -> None:
    from schemas.addresses import NetworkSet, client_address

    networks = NetworkSet(["10.0.0.0/8", "2001:db8::/32"], cache=2)
    assert networks.contains("10.1.2.3") and networks.contains("2001:db8::1")
    assert networks.contains("::ffff:10.0.0.1")  # an IPv4-mapped peer
    assert networks.contains("fe80::1%eth0") is False
    assert not networks.contains("192.0.2.1") and not networks.contains("garbage")
    assert not networks.contains(None) and not NetworkSet([]).contains("10.0.0.1")
    for _ in range(3):  # answers stay right past the cache's bound
        assert networks.contains("10.9.9.9") and not networks.contains("11.0.0.1")
    assert client_address("[IPv6:2001:DB8:0:0::1]") == "2001:db8::1"
    assert client_address("unknown") is None
