"""What counting reads of a ``MailEvent`` record, read fast from its JSON.

The worker reads every ``mail-events`` record once. Validating each with the whole
model (pydantic, its after-validators, a datetime and an address object per record)
cost more than counting it under four subjects. ``read_mail_facts`` checks the
record's JSON by the model's own rules for the forms connectors write (JSON types as
the model declares them, RFC 3339 times, addresses in their compressed form) and
keeps what counting needs; a record in any other form goes through ``MailEvent``
itself. So a record is accepted, refused (with pydantic's reason) and read exactly
as the model would: tests/schemas/test_mail_facts.py compares the two on random
records, valid and not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pydantic_core

from schemas.addresses import MAX_ADDRESS, domain_of, normal_domain
from schemas.events import MAX_NAME, MAX_RECIPIENTS_LISTED, MAX_TEXT, MailEvent, canonical_ip
from schemas.time_ms import to_ms
from schemas.vocabulary import Direction, EventSource


@dataclass(slots=True)
class MailFacts:
    """The fields of a valid ``MailEvent`` that decide what it counts under and how."""

    event_id: str
    ts_ms: int
    client_ip: str | None
    sasl_username: str | None
    sender: str | None
    sender_domain: str | None
    recipient_count: int  # at least the recipients listed, as the model makes it
    direction: Direction
    accepted: bool
    spam: bool | None
    mta_generated: bool
    reject_reason: str | None

    @classmethod
    def of(cls, event: MailEvent) -> MailFacts:
        return cls(event.event_id, to_ms(event.ts), event.client_ip, event.sasl_username,
                   event.sender, event.sender_domain, event.recipient_count, event.direction,
                   event.accepted, event.spam, event.mta_generated, event.reject_reason)


class _Unusual(Exception):
    """A form the fast reader leaves to the model (valid or not)."""


_ABSENT: Any = object()
# the form connectors write (``_iso``, pydantic's own): a second's fraction of at most six
# digits, an offset or Z
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)", re.ASCII)
_DIRECTIONS = {d.value: d for d in Direction}
_SOURCES = tuple(s.value for s in EventSource)  # compared, not hashed: any JSON value
# (field, longest text or None, may be null, required): plain string fields
_TEXTS = (("event_id", MAX_TEXT, False, True), ("host", MAX_NAME, False, True),
          ("queue_id", 64, True, False), ("message_id", MAX_TEXT, True, False),
          ("client_name", MAX_NAME, True, False), ("sasl_username", MAX_ADDRESS, True, False),
          ("sender", MAX_ADDRESS, True, False), ("sender_domain", MAX_NAME, True, False),
          ("reject_reason", MAX_TEXT, True, False))


def read_mail_facts(value: bytes) -> MailFacts:
    """The facts of one ``mail-events`` record; pydantic's ValidationError (a ValueError)
    for a record the model refuses."""
    try:
        return _plain(pydantic_core.from_json(value))
    except (_Unusual, ValueError):
        return MailFacts.of(MailEvent.model_validate_json(value))


def _plain(data: Any) -> MailFacts:
    """The facts of a record in the plain form; ``_Unusual`` for anything else."""
    if type(data) is not dict:
        raise _Unusual
    get = data.get
    for name, longest, nullable, required in _TEXTS:
        text = get(name, _ABSENT)
        if text is _ABSENT:
            if required:
                raise _Unusual
        elif type(text) is not str:
            if text is not None or not nullable:
                raise _Unusual
        elif len(text) > longest or (not nullable and not text):
            raise _Unusual  # min_length=1 for the required ones
    version = get("schema_version", 1)
    accepted = get("accepted", _ABSENT)
    spam = get("spam")
    generated = get("mta_generated", False)
    if (type(version) is not int or version != 1 or type(accepted) is not bool
            or (spam is not None and type(spam) is not bool) or type(generated) is not bool
            or type(get("truncated", False)) is not bool or get("source") not in _SOURCES):
        raise _Unusual
    size, count = get("size"), get("recipient_count", 0)
    if ((size is not None and (type(size) is not int or size < 0))
            or type(count) is not int or count < 0):
        raise _Unusual
    score = get("spam_score")
    if score is not None and type(score) is not float and type(score) is not int:
        raise _Unusual
    recipients = get("recipients", [])
    if type(recipients) is not list or len(recipients) > MAX_RECIPIENTS_LISTED or any(
            type(r) is not str or len(r) > MAX_ADDRESS for r in recipients):
        raise _Unusual
    word, stamp, address = get("direction", "unknown"), get("ts"), get("client_ip")
    direction = _DIRECTIONS.get(word) if type(word) is str else None
    if (direction is None or type(stamp) is not str or _TIME.fullmatch(stamp) is None
            or (address is not None and type(address) is not str)):
        raise _Unusual
    try:
        ts_ms = to_ms(datetime.fromisoformat(stamp))
    except ValueError:
        raise _Unusual from None  # a date that is no date: the model says why
    sender, domain = get("sender"), get("sender_domain")
    return MailFacts(data["event_id"], ts_ms, canonical_ip(address),
                     get("sasl_username"), sender,
                     domain_of(sender) if domain is None else normal_domain(domain),
                     max(count, len(recipients)), direction, accepted, spam, generated,
                     get("reject_reason"))
