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
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.engine.clock import to_ms
from schemas.addresses import normal_address, normal_domain
from schemas.config import Exempt, Threshold
from schemas.events import MailEvent
from schemas.vocabulary import CountMode, DirectionScope, SubjectType

MAX_UNIT = 2**31 - 1  # weights and recipient counts are stored as 32-bit values


class Exemptions:
    """The config's ``exempt`` section, compiled for fast matching."""

    def __init__(self, exempt: Exempt, delimiters: str = "") -> None:
        self._delimiters = delimiters
        self._networks = [ipaddress.ip_network(n) for n in exempt.client_ips]
        self._addresses = {normal_address(s, delimiters) for s in exempt.senders
                           if not s.startswith("@")}
        self._domains = {s[1:] for s in exempt.senders if s.startswith("@")}
        self._accounts = set(exempt.sasl_usernames)

    def exempts_message(self, sasl_username: str | None, client_ip: str | None) -> bool:
        """Trusted infrastructure (an exempt account or client network): nothing counts."""
        if sasl_username and sasl_username in self._accounts:
            return True
        if client_ip and self._networks:
            try:
                ip = ipaddress.ip_address(client_ip)
            except ValueError:
                return False
            return any(ip in network for network in self._networks)
        return False

    def exempts_sender(self, sender: str | None, sender_domain: str | None) -> bool:
        """An exempt sender address or domain: its sender and domain subjects do not count."""
        if not sender:
            return False
        return (normal_address(sender, self._delimiters) in self._addresses
                or sender_domain in self._domains)


SENDER_KEYS = frozenset({SubjectType.SENDER, SubjectType.SENDER_DOMAIN})


def is_countable(event: MailEvent, exemptions: Exemptions) -> bool:
    """Whether the message counts at all, before any threshold's own scope."""
    if not (event.accepted or event.spam is True):
        return False
    if event.mta_generated:
        return False
    return not exemptions.exempts_message(event.sasl_username, event.client_ip)


@dataclass(slots=True)  # not frozen: a frozen dataclass is several times slower to build
class CountedMail:
    """What counting needs of one countable message, and nothing else.

    The worker carries this (not the whole MailEvent) from its router to the
    subject's partition; replay builds it from the MailEvent.
    """

    ts_ms: int
    spam: bool
    recipients: int  # >= 1, <= MAX_UNIT
    direction: str  # a Direction word
    sender_domain: str | None

    @classmethod
    def of(cls, event: MailEvent) -> CountedMail:
        return cls(to_ms(event.ts), event.spam is True,
                   min(max(event.recipient_count, 1), MAX_UNIT),
                   event.direction.value, event.sender_domain)


def in_scope(threshold: Threshold, direction: str, sender_domain: str | None) -> bool:
    """Whether the threshold counts a (countable) message of this direction and domain."""
    # DirectionScope and Direction are StrEnums: members compare equal to the same word.
    if threshold.direction != direction and threshold.direction is not DirectionScope.ANY:
        return False
    return not threshold.sender_domains or sender_domain in threshold.sender_domains


def subject_of(key: SubjectType, event: MailEvent, delimiters: str = "") -> str | None:
    """The normalised subject a message counts under; None when the message has none."""
    raw = {
        SubjectType.SASL_USERNAME: event.sasl_username,
        SubjectType.SENDER: event.sender,
        SubjectType.SENDER_DOMAIN: event.sender_domain,
        SubjectType.CLIENT_IP: event.client_ip,
    }[key]
    return normalise_subject(key, raw, delimiters)


def normalise_subject(key: SubjectType, raw: str | None, delimiters: str = "") -> str | None:
    """The one spelling of a subject, shared by counting and enforcement.

    Senders and domains in their one spelling (``schemas.addresses``: unquoted,
    lower-case, IDNA domains); SASL names as given; IP addresses in their
    compressed form (the events carry that already). ``delimiters``: the
    config's ``addresses.extension_delimiters``.
    """
    if not raw:
        return None
    if key is SubjectType.SENDER:
        return normal_address(raw, delimiters)
    if key is SubjectType.SENDER_DOMAIN:
        return normal_domain(raw)
    return raw


def units(threshold: Threshold, mail: CountedMail) -> int:
    """What one message adds to the threshold's window: 1, or its recipient count (>= 1)."""
    return 1 if threshold.count is CountMode.MESSAGES else mail.recipients


def key_types(thresholds: Iterable[Threshold]) -> list[SubjectType]:
    """The subject types that at least one threshold counts by, in a fixed order."""
    used = {t.key for t in thresholds}
    return [k for k in SubjectType if k in used]
