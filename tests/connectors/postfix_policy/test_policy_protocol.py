import random

import pytest

from connectors.postfix_policy.policy_protocol import (
    MAX_ATTRIBUTES,
    MAX_LINE,
    PASS,
    Answer,
    ProtocolError,
    RequestReader,
    _one_clean_request,
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


def _line_by_line(data: bytes) -> tuple[list[dict[str, str]], int]:
    """What ``feed`` makes of ``data`` read one byte at a time (never its one-request path)."""
    reader = RequestReader()
    found = [r for byte in data for r in reader.feed(bytes([byte]))]
    return found, reader.malformed_lines


def test_one_request_a_read_is_read_as_line_by_line() -> None:
    """The one-request path (smtpd's writes) gives what the general one gives, request for
    request and malformed line for malformed line, on random and hostile bytes."""
    rng = random.Random(7)
    pieces = [b"sender=a@b.c", b"x=", b"=v", b"noequals", b"", b"\r", b"a=b=c", b"\xff\xfe=\xe2\x80",
              b"k\xe2\x80\xa8=v", b"request=smtpd_access_policy", b"\xc3(=1", b"n=\x00\x1f"]
    samples = [REQUEST, b"\n\n", b"a=1\n\n\n", b"a=1\n\nb=2\n\n", b"=x\n\n",
               b"".join(b"a%d=1\n" % i for i in range(MAX_ATTRIBUTES + 1)) + b"\n"]
    for _ in range(3_000):
        lines = [rng.choice(pieces) for _ in range(rng.randrange(1, 8))]
        samples.append(b"\n".join(lines) + b"\n\n")
    taken_whole = 0
    for data in samples:
        reader = RequestReader()
        try:
            found = reader.feed(data)
        except ProtocolError:
            with pytest.raises(ProtocolError):
                _line_by_line(data)
            continue
        assert (found, reader.malformed_lines) == _line_by_line(data), data
        taken_whole += _one_clean_request(data) is not None
    assert taken_whole > 500  # the path under test was taken, not only the general one


def test_an_answer_knows_its_line_and_keyword() -> None:
    answer = Answer(reply("DEFER_IF_PERMIT", "4.7.1 too much mail"), None)
    assert (answer.line, answer.keyword) == ("DEFER_IF_PERMIT 4.7.1 too much mail",
                                             "DEFER_IF_PERMIT")
    assert (PASS.line, PASS.keyword) == ("DUNNO", "DUNNO")
