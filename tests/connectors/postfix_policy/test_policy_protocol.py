import pytest

from connectors.postfix_policy.policy_protocol import (
    MAX_ATTRIBUTES,
    MAX_LINE,
    ProtocolError,
    RequestReader,
    reply,
    to_policy_request,
)

REQUEST = (b"request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\n"
           b"sender=alice@example.net\nccert_subject=CN=a=b\nx_custom=1\n\n")


def test_values_split_on_the_first_equals_sign() -> None:
    [attributes] = RequestReader().feed(REQUEST)
    assert attributes["ccert_subject"] == "CN=a=b"
    request = to_policy_request(attributes)
    assert (request.protocol_state, request.sender, request.other) == (
        "END-OF-MESSAGE", "alice@example.net", {"x_custom": "1"})


def test_several_requests_in_one_read_and_one_request_byte_by_byte() -> None:
    assert len(RequestReader().feed(REQUEST * 3)) == 3
    reader = RequestReader()
    found = [r for byte in REQUEST.replace(b"\n", b"\r\n") for r in reader.feed(bytes([byte]))]
    assert [r["sender"] for r in found] == ["alice@example.net"]
    assert not reader.pending


def test_oversized_and_overfull_requests_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        RequestReader().feed(b"sender=" + b"a" * MAX_LINE)
    with pytest.raises(ProtocolError):
        RequestReader().feed(b"".join(b"a%d=1\n" % i for i in range(MAX_ATTRIBUTES + 1)))


def test_lines_without_equals_are_counted_and_skipped() -> None:
    reader = RequestReader()
    assert reader.feed(b"garbage\n=novalue\nsender=a@b.c\n\n") == [{"sender": "a@b.c"}]
    assert reader.malformed_lines == 2
    assert reader.feed(b"\n\n\n") == []  # empty lines alone are no request


def test_replies_are_one_line_with_a_known_keyword() -> None:
    assert reply("DUNNO") == b"action=DUNNO\n\n"
    hostile = reply("REJECT", "5.7.1 bad\n\naction=OK\r\x00 \u2028end" + "x" * 1000)
    assert hostile.count(b"\n") == 2 and hostile.endswith(b"\n\n")
    assert b"\r" not in hostile and b"\x00" not in hostile
    assert len(hostile) < 500
    with pytest.raises(ValueError):
        reply("PERMIT")
