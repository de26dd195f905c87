"""Records that cross a process or Kafka boundary.

Every record on a Floodgate topic is one of these models serialised as JSON.
Consumers ignore fields they do not know (``extra="ignore"``), producers only
ever add optional fields, and ``schema_version`` is raised on a breaking
change, so old consumers keep working while the topics evolve.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.addresses import MAX_ADDRESS, domain_of, normal_domain
from schemas.subjects import subject_key
from schemas.vocabulary import (
    ActionKind,
    ActionState,
    CountMode,
    Direction,
    EventSource,
    Flag,
    Origin,
    SubjectType,
)

# Bounds on outside input (Postfix log records are cut at 2000 bytes anyway).
MAX_RECIPIENTS_LISTED = 10_000
MAX_NAME = 255
MAX_TEXT = 2000


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is UTC else value.astimezone(UTC)


# An IPv4 address already in its one spelling (no leading zeros, each part at most 255).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PLAIN_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")


def canonical_ip(value: str | None) -> str | None:
    """A client address in its compressed form; None for none; ValueError for anything
    that is not an address."""
    if value is None or value == "":
        return None
    if _PLAIN_IPV4.fullmatch(value):
        return value  # most clients: no address object needed
    text = value.strip("[]")
    if ":" in text:  # IPv6: the C library's text form is Python's (RFC 5952), but for
        try:  # an IPv4 tail, which Python writes in hex; a scope id it does not read
            compressed = socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, text))
            if "." not in compressed:
                return compressed
        except OSError:
            pass
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f'"{value}" is not an IPv4 or IPv6 address') from None


EventTime = Annotated[AwareDatetime, AfterValidator(_utc)]
IpAddress = Annotated[str | None, AfterValidator(canonical_ip)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=False, str_strip_whitespace=False)


class MailEvent(_Record):
    """One message attempt, as a connector saw it.

    ``event_id`` is stable: the same message reported twice (by the log and by
    the policy service, or after a connector restart) carries the same id, so
    counters drop the repeat. ``recipients`` may be cut at 10,000 entries;
    ``recipient_count`` always holds the true number.
    """

    schema_version: Literal[1] = 1
    event_id: str = Field(min_length=1, max_length=MAX_TEXT)
    ts: EventTime = Field(description="Event time: when the MTA handled the message")
    host: str = Field(min_length=1, max_length=MAX_NAME, description="Mail server that saw it")
    queue_id: str | None = Field(None, max_length=64)
    message_id: str | None = Field(None, max_length=MAX_TEXT)
    client_ip: IpAddress = None
    client_name: str | None = Field(None, max_length=MAX_NAME)
    sasl_username: str | None = Field(None, max_length=MAX_ADDRESS)
    sender: str | None = Field(
        None, max_length=MAX_ADDRESS, description='Envelope sender; "" is the null sender <>'
    )
    sender_domain: str | None = Field(
        None, max_length=MAX_NAME, description="Lower-cased domain of sender (derived if absent)"
    )
    recipients: list[Annotated[str, Field(max_length=MAX_ADDRESS)]] = Field(
        default_factory=list, max_length=MAX_RECIPIENTS_LISTED
    )
    recipient_count: int = Field(0, ge=0, description="At least len(recipients)")
    size: int | None = Field(None, ge=0, description="Message size in bytes")
    direction: Direction = Direction.UNKNOWN
    accepted: bool = Field(description="True when the MTA queued the message")
    spam: bool | None = Field(None, description="Spam verdict; null when no filter judged it")
    spam_score: float | None = None
    mta_generated: bool = Field(
        False, description="Bounce, delay notice or other mail the MTA made itself"
    )
    reject_reason: str | None = Field(None, max_length=MAX_TEXT)
    source: EventSource
    truncated: bool = Field(
        False, description="A value was cut to its field's limit (e.g. an address over 512 "
                           "characters, which Postfix accepts)")

    @model_validator(mode="after")
    def _derive(self) -> MailEvent:
        # Set only what changes: every set of a field goes through pydantic's __setattr__.
        domain = domain_of(self.sender) if self.sender_domain is None \
            else normal_domain(self.sender_domain)
        if domain != self.sender_domain:
            self.sender_domain = domain
        if len(self.recipients) > self.recipient_count:
            self.recipient_count = len(self.recipients)
        return self


class DeliveryEvent(_Record):
    """One delivery attempt's outcome for one recipient (sent, deferred, bounced, expired).

    ``event_id`` is the MailEvent's id of the message it belongs to (the
    original message when a content filter re-injected a copy).
    """

    schema_version: Literal[1] = 1
    delivery_id: str = Field(min_length=1, max_length=MAX_TEXT)
    event_id: str = Field(min_length=1, max_length=MAX_TEXT)
    ts: EventTime
    host: str = Field(min_length=1, max_length=MAX_NAME)
    queue_id: str = Field(max_length=64)
    recipient: str = Field(max_length=MAX_ADDRESS)
    orig_recipient: str | None = Field(None, max_length=MAX_ADDRESS)
    status: str = Field(max_length=32, description="sent, deferred, bounced, expired, ...")
    dsn: str | None = Field(None, max_length=16)
    relay: str | None = Field(None, max_length=MAX_NAME)
    delay_s: float | None = None
    response: str | None = Field(None, max_length=MAX_TEXT)
    sender: str | None = Field(None, max_length=MAX_ADDRESS)
    sasl_username: str | None = Field(None, max_length=MAX_ADDRESS)
    client_ip: IpAddress = None
    direction: Direction = Field(Direction.UNKNOWN,
                                 description="The message's direction for this recipient")
    mta_generated: bool = Field(
        False, description="A delivery of mail the MTA made itself (a bounce, a delay notice)")

    @property
    def sender_domain(self) -> str | None:
        return domain_of(self.sender)


class Escalation(_Record):
    """Why a repeat offender's action is not the threshold's own: the step that applied."""

    step: int = Field(ge=1, description="1-based index into the threshold's `escalate` list")
    firing: int = Field(ge=2, description="this firing's number among the subject's firings of "
                                          "the threshold within the step's period, counted "
                                          "up to the highest step's `after`")
    within_s: float = Field(gt=0, description="the step's period, seconds")
    first_at: EventTime = Field(description="the earliest of the firings counted")


class Evidence(_Record):
    """What the window held when a threshold fired.

    Counts are exact up to what the decision needs: the engine keeps the newest
    ``max(messages, spams)`` units of a window, so a count is never below the
    threshold's limits but may stop at them when traffic went far beyond.
    """

    window_start: EventTime = Field(description="Exclusive start of the window")
    window_end: EventTime = Field(description="Inclusive end of the window: the firing event's time")
    messages: int = Field(ge=0, description="Units counted (messages, recipients or delivery "
                                            "attempts, see count)")
    spams: int = Field(ge=0, description="Flagged units counted: spam units, or those "
                                         "`flagged` names")
    recipients: int = Field(ge=0, description="Recipients of the counted messages")
    count: CountMode
    limit_messages: int = Field(ge=0)
    limit_spams: int = Field(ge=0, description="The threshold's limit on flagged units")
    flagged: Flag = Field(Flag.SPAM, description="What `spams` counted")
    subject_class: str | None = Field(
        None, max_length=64, description="the subject's customer class from its settings "
                                         "record; none: the config's default class")
    escalation: Escalation | None = Field(
        None, description="set when an escalation step chose the action and duration")
    baseline: float | None = Field(
        None, ge=0, description="a baseline threshold's: the subject's learnt mean units per "
                                "window when it fired (limit_messages is then the learnt "
                                "limit); none: not learnt yet, the fixed numbers applied")


class ActionEvent(_Record):
    """A decision about one subject and each later change of its state.

    The Kafka key is ``subject_type:subject`` (see ``key``), so a compacted
    topic keeps the latest state of every subject's actions.
    """

    schema_version: Literal[1] = 1
    action_id: str = Field(min_length=1, max_length=128)
    ts: EventTime = Field(description="When this state took effect")
    subject_type: SubjectType
    subject: str = Field(min_length=1, max_length=MAX_ADDRESS)
    action: ActionKind
    threshold: str | None = Field(None, max_length=MAX_NAME, description="None for manual")
    state: ActionState
    origin: Origin
    triggered_at: EventTime
    expires_at: EventTime
    evidence: Evidence | None = None
    actor: str | None = Field(None, max_length=MAX_NAME, description="Operator, for manual changes")
    reason: str | None = Field(None, max_length=MAX_TEXT)
    enforced: bool = Field(
        True, description="false for a shadow threshold's action: published, listed and sent "
                          "to SIEMs, never applied by the policy service")
    reset: bool = Field(
        False, description="on a lift: the threshold's escalation ladder for this subject "
                           "starts again (its earlier firings are forgotten)")

    @property
    def key(self) -> str:
        return subject_key(self.subject_type, self.subject)

    @property
    def ends_at(self) -> datetime:
        """When the action ends or ended: the moment it was lifted, else its expiry."""
        return self.ts if self.state is ActionState.LIFTED else self.expires_at


class PolicyRequest(_Record):
    """The attributes of one Postfix policy delegation request, as received.

    Values are kept as the strings Postfix sent (empty where Postfix had none);
    attributes this version does not name are kept in ``other``.
    """

    request: str = ""
    protocol_state: str = ""
    protocol_name: str = ""
    helo_name: str = ""
    queue_id: str = ""
    sender: str = ""
    recipient: str = ""
    recipient_count: str = ""
    client_address: str = ""
    client_name: str = ""
    client_port: str = ""
    reverse_client_name: str = ""
    instance: str = ""
    sasl_method: str = ""
    sasl_username: str = ""
    sasl_sender: str = ""
    size: str = ""
    ccert_subject: str = ""
    ccert_issuer: str = ""
    ccert_fingerprint: str = ""
    ccert_pubkey_fingerprint: str = ""
    encryption_protocol: str = ""
    encryption_cipher: str = ""
    encryption_keysize: str = ""
    etrn_domain: str = ""
    stress: str = ""
    server_address: str = ""
    server_port: str = ""
    policy_context: str = ""
    compatibility_level: str = ""
    mail_version: str = ""
    other: dict[str, str] = Field(default_factory=dict)


class PolicyEvent(_Record):
    """A policy request the responder answered, with its answer."""

    schema_version: Literal[1] = 1
    event_id: str = Field(min_length=1, max_length=MAX_TEXT)
    ts: EventTime
    host: str = Field(min_length=1, max_length=MAX_NAME, description="The mail host the request came from "
                      "(policy.mail_host)")
    request: PolicyRequest
    answer: str = Field(max_length=MAX_TEXT, description="The action line sent to Postfix")
    action_id: str | None = Field(None, description="The active action that decided the answer")


class DeadLetter(_Record):
    """A record the worker could not use, kept with where it came from and why."""

    schema_version: Literal[1] = 1
    ts: EventTime = Field(description="When it was set aside")
    source_topic: str
    partition: int
    offset: int
    error: str = Field(max_length=MAX_TEXT)
    raw_base64: str = Field(description="The record's value, base64")
