import random

import pytest

from pipeline.engine.policy_decision import PolicyResponder, reason_of, subject_keys
from schemas.addresses import client_address, client_network, domain_of
from schemas.config import Exempt, PolicySettings
from schemas.events import ActionEvent, Evidence
from schemas.subjects import SENDER_KEYS, normalise_subject, subject_key
from schemas.vocabulary import SubjectType
from tests.fixtures.policy_requests import NOW, action, answer, request, view_of
from tests.pipeline.engine.builders import T0


def test_keys_cover_every_subject_normalised() -> None:
    assert subject_keys(request()) == ["sasl_username:alice", "sender:alice@example.net",
                                       "sender_domain:example.net", "client_ip:10.0.0.5"]
    assert subject_keys({"sender": "", "client_address": "unknown"}) == []


def test_each_action_maps_to_its_postfix_reply() -> None:
    assert answer(view_of()) == b"action=DUNNO\n\n"
    assert answer(view_of(action("block", "sender", "alice@example.net"))).startswith(
        b"action=REJECT 5.7.1 Sending suspended for sender alice@example.net")
    assert answer(view_of(action("defer", "sasl_username", "alice"))).startswith(
        b"action=DEFER 4.7.1 Sending deferred for sasl_username alice: too much mail; try "
        b"again after "
        b"2026-11-27T12:15:00Z")
    assert answer(view_of(action("defer", "client_ip", "10.0.0.5")),
                  PolicySettings(defer_reply="DEFER_IF_PERMIT")).startswith(
        b"action=DEFER_IF_PERMIT 4.7.1")
    assert answer(view_of(action("quarantine", "sender_domain", "example.net"))).startswith(
        b"action=HOLD Held for review")
    assert answer(view_of(action("warn", "sasl_username", "alice"))).startswith(b"action=WARN ")


def test_strongest_action_in_force_wins() -> None:
    view = view_of(action("warn", "sasl_username", "alice", "w"),
                   action("block", "client_ip", "10.0.0.5", "b"),
                   action("defer", "sender", "alice@example.net", "d"))
    assert answer(view).startswith(b"action=REJECT")
    view.apply(action("block", "client_ip", "10.0.0.5", "b", state="lifted"))
    assert answer(view).startswith(b"action=DEFER")
    expired_by_time = view_of(action("block", "sasl_username", "alice", minutes=1))
    assert answer(expired_by_time) == b"action=DUNNO\n\n"  # ended at NOW, record or not


def test_a_shadow_action_is_counted_in_the_view_but_never_applied() -> None:
    view = view_of(action("block", "sasl_username", "alice", "s", enforced=False))
    assert answer(view) == b"action=DUNNO\n\n"
    assert view.census() == {"shadow_block": 1}
    view.apply(action("defer", "client_ip", "10.0.0.5", "d"))
    assert answer(view).startswith(b"action=DEFER")  # the enforcing one, not the stronger shadow
    assert view.census() == {"shadow_block": 1, "defer": 1}


def test_an_exempt_account_or_network_always_passes() -> None:
    view = view_of(action("block", "sasl_username", "alice"))
    assert answer(view, exempt=Exempt(sasl_usernames=["alice"])) == b"action=DUNNO\n\n"
    assert answer(view, exempt=Exempt(client_ips=["10.0.0.0/8"])) == b"action=DUNNO\n\n"


def test_an_exempt_sender_written_into_mail_from_does_not_lift_the_account_s_action() -> None:
    view = view_of(action("defer", "sasl_username", "alice", "d"),
                   action("block", "sender", "alerts@isp.example", "b"))
    exempt = Exempt(senders=["alerts@isp.example"])
    assert answer(view, exempt=exempt, sender="alerts@isp.example").startswith(b"action=DEFER")
    assert answer(view_of(action("block", "sender_domain", "isp.example")), exempt=exempt,
                  sasl_username="", sender="alerts@isp.example") == b"action=DUNNO\n\n"
    assert subject_keys(request(sender="alerts@isp.example"), sender_exempt=True) == [
        "sasl_username:alice", "client_ip:10.0.0.5"]


def test_hostile_subject_cannot_break_the_reply() -> None:
    view = view_of(action("block", "sender", "x\r\naction=ok@evil.example"))
    wire = answer(view, sender="x\r\naction=OK@evil.example")
    assert wire.startswith(b"action=REJECT ") and wire.count(b"\n") == 2 and b"\r" not in wire


def _settings(subject: str, exempt: bool = True) -> bytes:
    from datetime import UTC, datetime

    from schemas.subject_settings import SubjectSettings
    return SubjectSettings(subject=subject, exempt=exempt, actor="ops", reason="ours",
                           at=datetime(2026, 11, 27, tzinfo=UTC)).to_json()


def test_exemptions_from_the_settings_topic_apply_as_their_records_arrive() -> None:
    from pipeline.engine.policy_decision import PolicyResponder, SettingsExemptions

    live = SettingsExemptions()  # empty when the responder is made: records come later
    view = view_of(action("block", "sasl_username", "alice"),
                   action("defer", "sender", "alice@example.net", "d"))
    responder = PolicyResponder(PolicySettings(), Exempt(), view, live=live)
    assert responder.answer(request(), NOW).wire.startswith(b"action=REJECT")
    live.apply("sasl_username:alice", _settings("sasl_username:alice"))
    assert responder.answer(request(), NOW).wire == b"action=DUNNO\n\n"  # the whole request
    live.apply("sasl_username:alice", None)  # its tombstone
    assert responder.answer(request(), NOW).wire.startswith(b"action=REJECT")
    # an exempt sender only leaves its own subject out of the lookup, as in counting
    live.apply("sasl_username:alice", _settings("sasl_username:alice", exempt=False))
    view.apply(action("block", "sasl_username", "alice", state="lifted"))
    live.apply("sender:alice@example.net", _settings("sender:alice@example.net"))
    assert responder.answer(request(), NOW).wire == b"action=DUNNO\n\n"
    # a record the worker would set aside changes nothing here either
    live.apply("sender:alice@example.net", b'{"exempt": false}')
    live.apply("sender:alice@example.net", _settings("sender:bob@example.org", exempt=False))
    assert len(live) == 1 and live.bad_records == 2
    live.apply("sender:alice@example.net", _settings("sender:alice@example.net", exempt=False))
    assert responder.answer(request(), NOW).wire.startswith(b"action=DEFER")


def test_an_action_on_a_network_applies_to_every_address_inside_it() -> None:
    view = view_of(action("defer", "client_net", "2001:db8:1:2::/64", "n6"),
                   action("block", "client_net", "198.51.100.0/24", "n4"))
    assert view.network_shapes == {(6, 64), (4, 24)}
    fresh = answer(view, sasl_username="", client_address="2001:db8:1:2:ffff::9")
    assert fresh.startswith(b"action=DEFER 4.7.1 ") and b"client_net 2001:db8:1:2::/64" in fresh
    assert answer(view, sasl_username="", client_address="IPv6:2001:db8:1:3::9") == \
        b"action=DUNNO\n\n"  # the next /64: another customer
    assert answer(view, client_address="198.51.100.250").startswith(b"action=REJECT")
    assert answer(view, client_address="198.51.101.1") == b"action=DUNNO\n\n"
    view.apply(action("defer", "client_net", "2001:db8:1:2::/64", "n6", state="lifted"))
    assert view.network_shapes == {(4, 24)}
    assert answer(view, client_address="2001:db8:1:2::9") == b"action=DUNNO\n\n"
    # exemptions by CIDR keep working for a network's addresses
    assert answer(view, exempt=Exempt(client_ips=["198.51.100.0/25"]),
                  client_address="198.51.100.3") == b"action=DUNNO\n\n"


def test_keys_of_a_request_include_the_networks_in_use() -> None:
    assert subject_keys(request(client_address="2001:db8::5"), networks=[(6, 64), (4, 24)]) == [
        "sasl_username:alice", "sender:alice@example.net", "sender_domain:example.net",
        "client_ip:2001:db8::5", "client_net:2001:db8::/64"]


def _fired(kind: str, threshold: str | None = "burst", **evidence: object) -> ActionEvent:
    base = action(kind, "sasl_username", "alice")
    fields: dict[str, object] = {"window_start": T0, "window_end": T0, "messages": 10,
                                 "spams": 0, "recipients": 10, "count": "messages",
                                 "limit_messages": 10, "limit_spams": 0, **evidence}
    proof = Evidence.model_validate(fields) if evidence else None
    return base.model_copy(update={"threshold": threshold, "evidence": proof})


@pytest.mark.parametrize(("evidence", "reason"), [
    ({"limit_spams": 0}, "too much mail"),
    ({"limit_spams": 5}, "too much spam"),
    ({"count": "deliveries", "flagged": "bounced", "limit_spams": 20}, "too many bounces"),
    ({"count": "deliveries", "flagged": "remote_refused", "limit_spams": 5},
     "too many refusals by receiving mail servers"),
    ({"count": "recipients", "flagged": "unknown_recipient", "limit_spams": 12},
     "too many unknown recipients"),
    ({"baseline": 1.5}, "far more mail than usual"),
])
def test_the_reply_says_why(evidence: dict[str, object], reason: str) -> None:
    assert reason_of(_fired("defer", **evidence)) == reason
    wire = answer(view_of(_fired("defer", **evidence)))
    assert wire.startswith(f"action=DEFER 4.7.1 Sending deferred for sasl_username alice: "
                           f"{reason}; try again after".encode())
    assert reason_of(_fired("block", threshold=None)) == "held by the mail operator"


def test_a_threshold_s_own_reply_follows_the_action_s_class() -> None:
    replies = {"burst": "4.7.1 {subject}: call support about {reason} (ref {action_id})"}
    view = view_of(_fired("defer", limit_spams=0))
    responder = PolicyResponder(PolicySettings(), Exempt(), view, replies=replies)
    assert responder.answer(request(), NOW).wire.startswith(
        b"action=DEFER 4.7.1 alice: call support about too much mail (ref a1)")
    view.apply(_fired("block", limit_spams=0).model_copy(update={"action_id": "a2"}))
    assert responder.answer(request(), NOW).wire.startswith(
        b"action=REJECT 5.7.1 alice: call support about too much mail (ref a2)")
    # another threshold's action keeps the policy texts
    other = view_of(_fired("defer", threshold="other", limit_spams=0))
    assert PolicyResponder(PolicySettings(), Exempt(), other, replies=replies).answer(
        request(), NOW).wire.startswith(b"action=DEFER 4.7.1 Sending deferred for")


def test_a_network_exempted_by_its_settings_record_passes_from_any_address_inside() -> None:
    from pipeline.engine.policy_decision import SettingsExemptions

    live = SettingsExemptions()
    view = view_of(action("block", "sasl_username", "alice"))
    responder = PolicyResponder(PolicySettings(), Exempt(), view, live=live)
    live.apply("client_net:2001:db8:9::/48", _settings("client_net:2001:db8:9::/48"))
    assert live.network_shapes == {(6, 48)}
    assert responder.answer(request(client_address="2001:db8:9:7::1"), NOW).wire == \
        b"action=DUNNO\n\n"  # trusted infrastructure: the whole request
    assert responder.answer(request(client_address="2001:db8:a::1"), NOW).wire.startswith(
        b"action=REJECT")
    live.apply("client_net:2001:db8:9::/48", None)
    assert live.network_shapes == frozenset()


def _keys_one_kind_at_a_time(attributes: dict[str, str], sender_exempt: bool, delimiters: str,
                             networks: frozenset[tuple[int, int]]) -> list[str]:
    """``subject_keys`` spelt plainly: each subject type's raw value through
    ``normalise_subject`` (the spelling counting uses), in the type order."""
    sender = attributes.get("sender", "")
    raw = {SubjectType.SASL_USERNAME: attributes.get("sasl_username", ""),
           SubjectType.SENDER: sender, SubjectType.SENDER_DOMAIN: domain_of(sender) or "",
           SubjectType.CLIENT_IP: client_address(attributes.get("client_address", ""))}
    keys = []
    for kind, value in raw.items():
        subject = None if sender_exempt and kind in SENDER_KEYS else \
            normalise_subject(kind, value, delimiters)
        if subject:
            keys.append(subject_key(kind, subject))
    address = raw[SubjectType.CLIENT_IP]
    for version, length in networks if address else ():
        network = client_network(address, length, length) \
            if version == (4 if "." in address else 6) else None
        if network is not None:
            keys.append(subject_key(SubjectType.CLIENT_NET, network))
    return keys


def test_keys_are_spelt_as_counting_spells_them() -> None:
    rng = random.Random(11)
    senders = ["", "Alice@Example.NET", "a+tag@x.org", '"A b"@x.org', "x@Bücher.example.",
               "noat", "@", "a@", "A-B@x.org."]
    accounts = ["", "alice", "Bob@Corp", " spaced "]
    addresses = ["", "unknown", "10.0.0.5", "[10.0.0.6]", "IPv6:2001:db8::1", "2001:DB8::2",
                 "not-an-ip"]
    shapes = [frozenset(), frozenset({(4, 24)}), frozenset({(6, 64), (4, 16)})]
    for _ in range(2_000):
        attributes = {"sender": rng.choice(senders), "sasl_username": rng.choice(accounts),
                      "client_address": rng.choice(addresses)}
        attributes = {k: v for k, v in attributes.items() if v or rng.random() < 0.5}
        exempt, delimiters, networks = rng.random() < 0.2, rng.choice(["", "+", "+-"]), \
            rng.choice(shapes)
        assert subject_keys(attributes, exempt, delimiters, networks) == \
            _keys_one_kind_at_a_time(attributes, exempt, delimiters, networks), attributes
