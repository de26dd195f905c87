"""The fast reader of mail events accepts, refuses and reads every record as ``MailEvent`` does,
and leaves the model out for the records connectors write."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import mail_facts
from schemas.events import MailEvent
from schemas.mail_facts import MailFacts, read_mail_facts

BASE: dict[str, Any] = {
    "schema_version": 1, "event_id": "mx1/4F2A", "ts": "2026-12-07T10:00:00.250Z",
    "host": "mx1.isp.example", "queue_id": "4F2A", "message_id": "<a@b>",
    "client_ip": "192.0.2.7", "client_name": "unknown", "sasl_username": "alice@isp.example",
    "sender": "Alice@Example.NET", "recipients": ["r@gmail.example", "s@gmail.example"],
    "recipient_count": 2, "size": 1234, "direction": "outbound", "accepted": True,
    "spam": False, "spam_score": 1.5, "source": "log",
}

# Per field: values in the plain form, in forms the model accepts otherwise, and refused.
VARIANTS: dict[str, list[Any]] = {
    "schema_version": [1, 2, "1", 1.0, True, None],
    "event_id": ["x", "", "e" * 2000, "e" * 2001, 5, None, ["x"]],
    "ts": ["2026-12-07T10:00:00Z", "2026-12-07T10:00:00.123456+02:00",
           "2026-12-07T10:00:00.1234567Z", "2026-12-07T10:00:00", "2026-12-07 10:00:00Z",
           "2026-02-30T10:00:00Z", "2026-12-07T24:00:00Z", "2026-12-07T10:00:60Z",
           "2026-12-07T10:00:00-00:00", "2026-12-07T10:00:00+25:00", "2026-12-07t10:00:00z",
           "2026-12-07T10:00:00.5Z", 1796637600, 1796637600.5, "1796637600", "", None,
           "٢٠٢٦-12-07T10:00:00Z"],
    "host": ["h", "", "h" * 255, "h" * 256, None, 3],
    "queue_id": [None, "q" * 64, "q" * 65, 12],
    "client_ip": [None, "", "10.0.0.1", "0.0.0.0", "010.0.0.1", "256.0.0.1", "[10.0.0.1]",
                  "2001:DB8::0:1", "2001:db8::1", "IPv6:2001:db8::1", "unknown", 10, ["x"],
                  "1.2.3.4 ", "\u0661.2.3.4"],
    "sasl_username": [None, "", "Bob", "b" * 512, "b" * 513, 7, True],
    "sender": [None, "", "x@Y.example", "s" * 513, "no-at", 1.5],
    "sender_domain": [None, "", "Bücher.Example.", "EXAMPLE.org", "d" * 256, 3],
    "recipients": [[], ["a"], ["a" * 513], [1], "a", None, ["a"] * 10_001, {"a": 1}],
    "recipient_count": [0, 5, -1, 1.0, "3", True, None, 2**40],
    "size": [None, 0, -5, 3.5, "9", False],
    "direction": ["inbound", "internal", "unknown", "sideways", "OUTBOUND", None, 1, ["x"]],
    "accepted": [False, "true", 1, None, 0],
    "spam": [None, True, "yes", 1],
    "spam_score": [None, 3, -2.5, "1.0", True, float("inf")],
    "mta_generated": [True, False, 1, "no", None],
    "reject_reason": [None, "550 5.1.1 <x>: Recipient address rejected", "r" * 2001, 550],
    "source": ["policy", "smtp", None, 1, ["log"]],
    "truncated": [True, 0, "false"],
    "message_id": [None, "m" * 2001],
    "client_name": [None, "n" * 256],
}


def outcome(reader: Any, raw: bytes) -> MailFacts | str:
    try:
        return reader(raw)
    except ValidationError:
        return "refused"


def by_model(raw: bytes) -> MailFacts:
    return MailFacts.of(MailEvent.model_validate_json(raw))


def test_every_variant_reads_as_the_model_reads_it() -> None:
    rng = random.Random(3)
    cases = [dict(BASE)]
    for name, values in VARIANTS.items():
        for value in values:
            cases.append({**BASE, name: value})
        cases.append({k: v for k, v in BASE.items() if k != name})  # the field left out
    for _ in range(3_000):  # several fields at once
        record = dict(BASE)
        for name in rng.sample(sorted(VARIANTS), rng.randint(2, 5)):
            record[name] = rng.choice(VARIANTS[name])
        if rng.random() < 0.2:
            del record[rng.choice(sorted(record))]
        cases.append(record)
    refused = 0
    for record in cases:
        raw = json.dumps(record).encode()
        expected = outcome(by_model, raw)
        assert outcome(read_mail_facts, raw) == expected, record
        refused += expected == "refused"
    assert 0 < refused < len(cases)  # both kinds were compared


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b"null", b'{"event_id": "x"}', b"\xff\xfe",
                                 b'{"ts": "2026-12-07T10:00:00Z"' + b" " * 10])
def test_records_that_are_no_event_are_refused_with_the_models_reason(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        read_mail_facts(raw)


def test_the_plain_form_is_read_without_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_model(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model was used")

    monkeypatch.setattr(mail_facts.MailEvent, "model_validate_json", no_model)
    for record in (BASE, {**BASE, "client_ip": "2001:db8::7", "spam": None},
                   {k: v for k, v in BASE.items() if k not in ("direction", "size", "spam")}):
        facts = read_mail_facts(json.dumps(record).encode())
        assert facts.event_id == record["event_id"]
    assert facts.sender_domain == "example.net"  # derived from the sender, as the model does
    assert facts.ts_ms == 1796637600250
