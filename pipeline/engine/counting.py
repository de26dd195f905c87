"""Which messages count, for which threshold, under which subject.

Rules, applied before any window is touched:

* a message counts when the MTA queued it, or when it was refused *as spam*
  (a spam filter's reject is the abuse we look for); other refusals (relay
  denied, failed auth, deferred by an active Floodgate action) do not count;
* mail the MTA made itself (bounces, delay notices: the log reader knows it by
  the Postfix daemon that made it) counts against nobody; mail a client sent
  counts whatever its sender, the null sender ``<>`` included (its account and
  address count; it has no sender or domain subject);
* exemptions apply per dimension: an exempt SASL account or client network is
  trusted infrastructure and its mail never counts; an exempt sender (address
  or ``@domain``), which any client can write into MAIL FROM, only keeps the
  sender and sender-domain subjects out, never the account or the address;
* a threshold counts only its direction and, when it names them, its sender
  domains.

Recipients refused as unknown (``flagged: unknown_recipient``, with ``count:
recipients``): a refusal whose reply carries the status X.1.1 ("bad destination
mailbox address", RFC 3463: Postfix's 550 5.1.1 for an unknown local, virtual or
relay recipient, 450 4.1.1 for an unverified one) counts one flagged unit per
refused recipient, for those thresholds only; every other threshold still
ignores refused mail. Its unflagged units are the recipients of counted mail.

Delivery attempts (``count: deliveries``) count under the subjects of the
message they belong to, by the same exemptions; an attempt is a ``status=``
line with sent, deferred or bounced (``expired`` is the queue giving up, not an
attempt), and deliveries of mail the MTA made itself count against nobody.
A deferral Postfix logs without contacting the server ("delivery temporarily
suspended: ...", for the other mail queued to a destination that just failed)
is not an attempt: the answer it repeats counted once, for the attempt that got
it. Their flags: ``bounced`` is Postfix's own verdict (status=bounced);
``remote_refused`` needs the remote server's own 4xx or 5xx answer, to a
command ("host X said: 550 ...") or as its greeting ("host X refused to talk to
me: 554 ..."), never a local failure such as a refused or timed-out connection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from schemas.addresses import NetworkSet, normal_address
from schemas.config import Exempt
from schemas.events import DeliveryEvent, MailEvent
from schemas.mail_facts import MailFacts
from schemas.subjects import normalise_subject
from schemas.thresholds import Threshold
from schemas.time_ms import to_ms
from schemas.vocabulary import DELIVERY_UNIT, FLAG_BITS, CountMode, DirectionScope, Flag, SubjectType

MAX_UNIT = 2**31 - 1  # weights and recipient counts are stored as 32-bit values
# A message (the model, or the facts the worker reads of one) or a delivery attempt
Unit = MailEvent | MailFacts | DeliveryEvent


class Exemptions:
    """The config's ``exempt`` section, compiled for fast matching."""

    def __init__(self, exempt: Exempt, delimiters: str = "") -> None:
        self._delimiters = delimiters
        self._networks = NetworkSet(exempt.client_ips)
        self._addresses = {normal_address(s, delimiters) for s in exempt.senders
                           if not s.startswith("@")}
        self._domains = {s[1:] for s in exempt.senders if s.startswith("@")}
        self._accounts = set(exempt.sasl_usernames)

    def exempts_message(self, sasl_username: str | None, client_ip: str | None) -> bool:
        """Trusted infrastructure (an exempt account or client network): nothing counts."""
        if sasl_username and sasl_username in self._accounts:
            return True
        return self._networks.contains(client_ip)

    def exempts_sender(self, sender: str | None, sender_domain: str | None) -> bool:
        """An exempt sender address or domain: its sender and domain subjects do not count."""
        if not sender or not (self._addresses or self._domains):
            return False
        return (normal_address(sender, self._delimiters) in self._addresses
                or sender_domain in self._domains)


ATTEMPTS = frozenset({"sent", "deferred", "bounced"})
# Postfix's own prefix for what the remote server answered, to a command or as its greeting;
# the rest is the remote's text.
_REMOTE_ANSWER = re.compile(r"host \S+ (?:said|refused to talk to me): [45]\d\d(?:[ -]|$)")
# Postfix's own words for a deferral it made without trying (the destination just failed).
_SUSPENDED = "delivery temporarily suspended: "
# The server's own reply code and enhanced status open the refusal; what follows may hold
# text the client chose (the recipient address), so only this prefix is read.
_UNKNOWN_MAILBOX = re.compile(r"[45]\d\d[ -][45]\.1\.1(?:\s|$)")


def is_countable(event: Unit, exemptions: Exemptions,
                 flags: int | None = None) -> bool:
    """Whether the message or delivery attempt counts at all, before any threshold's scope.

    ``flags``: the event's ``unit_flags`` when the caller already has them.
    """
    if isinstance(event, DeliveryEvent):
        if event.status not in ATTEMPTS or is_suspended(event):
            return False
    elif not event.accepted and event.spam is not True:
        if flags is None:
            flags = unit_flags(event)
        if not flags & _UNKNOWN:
            return False
    if event.mta_generated:
        return False
    return not exemptions.exempts_message(event.sasl_username, event.client_ip)


def is_suspended(event: DeliveryEvent) -> bool:
    """A deferral without an attempt: Postfix did not contact the server."""
    return event.response is not None and event.response.startswith(_SUSPENDED)


def refused_as_unknown(event: MailEvent | MailFacts) -> bool:
    """Refused (not as spam) because no such mailbox exists (X.1.1)."""
    return (not event.accepted and event.spam is not True and event.reject_reason is not None
            and _UNKNOWN_MAILBOX.match(event.reject_reason) is not None)


def unit_id(event: Unit) -> str:
    """What tells repeats of a counted unit: a delivery attempt's own id, else the message's."""
    return event.delivery_id if isinstance(event, DeliveryEvent) else event.event_id


def unit_flags(event: Unit) -> int:
    """The ``FLAG_BITS`` (and ``DELIVERY_UNIT``) a counted message or attempt carries."""
    if not isinstance(event, DeliveryEvent):
        if refused_as_unknown(event):
            return FLAG_BITS[Flag.UNKNOWN_RECIPIENT]
        return FLAG_BITS[Flag.SPAM] if event.spam is True else 0
    flags = DELIVERY_UNIT
    if event.status == "bounced":
        flags |= FLAG_BITS[Flag.BOUNCED]
    if (event.status != "sent" and event.response is not None
            and _REMOTE_ANSWER.match(event.response)):
        flags |= FLAG_BITS[Flag.REMOTE_REFUSED]
    return flags


@dataclass(slots=True)  # not frozen: a frozen dataclass is several times slower to build
class CountedMail:
    """What counting needs of one countable message or delivery attempt, and nothing else.

    The worker carries this (not the whole event) from its router to the
    subject's partition; replay builds it from the event.
    """

    ts_ms: int
    flags: int  # FLAG_BITS, and DELIVERY_UNIT for a delivery attempt (``unit_flags``)
    recipients: int  # >= 1, <= MAX_UNIT (1 for a delivery attempt)
    direction: str  # a Direction word
    sender_domain: str | None

    @classmethod
    def of(cls, event: Unit) -> CountedMail:
        if isinstance(event, DeliveryEvent):
            recipients, ts_ms = 1, to_ms(event.ts)
        else:
            recipients = event.recipient_count
            ts_ms = event.ts_ms if isinstance(event, MailFacts) else to_ms(event.ts)
        return cls(ts_ms, unit_flags(event), min(max(recipients, 1), MAX_UNIT),
                   event.direction.value, event.sender_domain)


_UNKNOWN = FLAG_BITS[Flag.UNKNOWN_RECIPIENT]


def in_scope(threshold: Threshold, direction: str, sender_domain: str | None,
             flags: int = 0) -> bool:
    """Whether the threshold counts a (countable) unit of this kind (its ``unit_flags``),
    direction and domain."""
    if flags & DELIVERY_UNIT:
        kind_fits = threshold.count is CountMode.DELIVERIES
    elif flags & _UNKNOWN:
        kind_fits = threshold.flagged is Flag.UNKNOWN_RECIPIENT
    else:
        kind_fits = threshold.count is not CountMode.DELIVERIES
    if not kind_fits:
        return False
    # DirectionScope and Direction are StrEnums: members compare equal to the same word.
    if threshold.direction != direction and threshold.direction is not DirectionScope.ANY:
        return False
    return not threshold.sender_domains or sender_domain in threshold.sender_domains


class _Attributed(Protocol):
    """What names a unit's subjects: a MailEvent's or a DeliveryEvent's attribution."""

    @property
    def sasl_username(self) -> str | None: ...
    @property
    def sender(self) -> str | None: ...
    @property
    def sender_domain(self) -> str | None: ...
    @property
    def client_ip(self) -> str | None: ...


# What names each kind of subject; a client network's is its threshold's prefix
# (``client_subject``), never a field of its own.
_NAMED_BY = {SubjectType.SASL_USERNAME: "sasl_username", SubjectType.SENDER: "sender",
             SubjectType.SENDER_DOMAIN: "sender_domain", SubjectType.CLIENT_IP: "client_ip"}


def subject_of(key: SubjectType, event: _Attributed, delimiters: str = "") -> str | None:
    """The normalised subject a message or attempt counts under; None when it has none."""
    field = _NAMED_BY.get(key)
    if field is None:
        return None
    return normalise_subject(key, getattr(event, field), delimiters)


def units(threshold: Threshold, mail: CountedMail) -> int:
    """What one unit adds to the threshold's window: 1, or a message's recipient count."""
    return mail.recipients if threshold.count is CountMode.RECIPIENTS else 1


def key_types(thresholds: Iterable[Threshold]) -> list[SubjectType]:
    """The subject types that at least one threshold counts by, in a fixed order."""
    used = {t.key for t in thresholds}
    return [k for k in SubjectType if k in used]
