"""Which way a message goes: ours by SASL, local submission or an internal network."""

from __future__ import annotations

from schemas.config import Networks
from schemas.direction import DirectionRules
from schemas.vocabulary import Direction

RULES = DirectionRules(Networks(internal=["10.0.0.0/8", "2001:db8::/32"],
                                local_domains=["example.net"]))


def test_our_clients_mail_to_others_is_outbound_to_our_domains_internal() -> None:
    assert RULES.classify("10.1.2.3", None, False, ["x@remote.example"]) is Direction.OUTBOUND
    assert RULES.classify("2001:db8::5", None, False, ["x@example.net"]) is Direction.INTERNAL
    assert RULES.classify(None, "alice", False, ["x@remote.example"]) is Direction.OUTBOUND
    assert RULES.classify(None, None, True, []) is Direction.OUTBOUND


def test_others_mail_to_our_domains_is_inbound_else_unknown() -> None:
    assert RULES.classify("192.0.2.1", None, False, ["x@example.net"]) is Direction.INBOUND
    assert RULES.classify("192.0.2.1", None, False, ["x@remote.example"]) is Direction.UNKNOWN
    assert RULES.classify("not an address", None, False, []) is Direction.UNKNOWN


def test_one_recipient_outside_our_domains_makes_the_mail_remote_wherever_it_is_listed() -> None:
    # Rules without local domains: every recipient is elsewhere.
    no_local = DirectionRules(Networks(internal=["10.0.0.0/8"]))
    for recipients in (["x@example.net", "y@remote.example"], ["y@remote.example", "x@example.net"],
                       ["x@example.net", "no-at-sign"], ["x@EXAMPLE.NET."]):
        remote = recipients != ["x@EXAMPLE.NET."]
        assert RULES.classify("10.1.2.3", None, False, recipients) is (
            Direction.OUTBOUND if remote else Direction.INTERNAL)
        assert RULES.classify("192.0.2.1", None, False, recipients) is (
            Direction.UNKNOWN if remote else Direction.INBOUND)
        assert no_local.classify("10.1.2.3", None, False, recipients) is Direction.OUTBOUND
        assert no_local.classify("192.0.2.1", None, False, recipients) is Direction.UNKNOWN
    assert RULES.classify("192.0.2.1", None, False, iter(["x@example.net"])) is Direction.INBOUND
    assert no_local.classify("192.0.2.1", None, False, []) is Direction.UNKNOWN
