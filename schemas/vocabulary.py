"""The closed sets of words every topic and the config share.

Their string values are part of the public contract: SIEM rules and other
teams' consumers match on them, so values are only ever added, never renamed.
"""

from __future__ import annotations

from enum import StrEnum


class SubjectType(StrEnum):
    """What a threshold counts per: the key of a window."""

    SASL_USERNAME = "sasl_username"
    SENDER = "sender"
    SENDER_DOMAIN = "sender_domain"
    CLIENT_IP = "client_ip"
    CLIENT_NET = "client_net"  # a client_ip threshold's network (its ``prefix``): 192.0.2.0/24


class Direction(StrEnum):
    """Where a message goes relative to the ISP's own networks and domains."""

    OUTBOUND = "outbound"
    INBOUND = "inbound"
    INTERNAL = "internal"
    UNKNOWN = "unknown"


class DirectionScope(StrEnum):
    """Which directions a threshold counts; ``any`` counts every message."""

    OUTBOUND = "outbound"
    INBOUND = "inbound"
    INTERNAL = "internal"
    ANY = "any"


class CountMode(StrEnum):
    """What a threshold counts: messages, their recipients, or delivery attempts."""

    MESSAGES = "messages"
    RECIPIENTS = "recipients"
    DELIVERIES = "deliveries"  # one per recipient per attempt (a DeliveryEvent), after queueing


class Flag(StrEnum):
    """Which of the counted units a threshold's second limit counts."""

    SPAM = "spam"  # a spam filter said spam (messages, recipients)
    BOUNCED = "bounced"  # the attempt failed for good: status=bounced (deliveries)
    REMOTE_REFUSED = "remote_refused"  # the remote server answered 4xx or 5xx (deliveries)
    UNKNOWN_RECIPIENT = "unknown_recipient"  # refused at RCPT as X.1.1, no such mailbox


# A counted unit's flags as one small integer (the worker's SubjectEntry carries it).
FLAG_BITS: dict[Flag, int] = {Flag.SPAM: 1, Flag.BOUNCED: 2, Flag.REMOTE_REFUSED: 4,
                              Flag.UNKNOWN_RECIPIENT: 16}
DELIVERY_UNIT = 8  # the unit is a delivery attempt, not a message
# A unit flagged unknown_recipient is a refused recipient, not accepted mail: only thresholds
# with flagged: unknown_recipient count it.


class ThresholdMode(StrEnum):
    """Whether a threshold's actions are applied, or only published to be watched."""

    ENFORCE = "enforce"
    SHADOW = "shadow"  # counted and fired exactly the same; the policy service never applies it


class ActionKind(StrEnum):
    """What is done to a subject's mail while an action is active.

    Ordered from weakest to strongest by ``ACTION_STRENGTH``.
    """

    WARN = "warn"
    DEFER = "defer"
    QUARANTINE = "quarantine"
    BLOCK = "block"


ACTION_STRENGTH: dict[ActionKind, int] = {
    ActionKind.WARN: 0,
    ActionKind.DEFER: 1,
    ActionKind.QUARANTINE: 2,
    ActionKind.BLOCK: 3,
}


class ActionState(StrEnum):
    ACTIVE = "active"
    LIFTED = "lifted"
    EXPIRED = "expired"


class Origin(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"


class EventSource(StrEnum):
    """Which connector saw a message: the mail log or the policy service."""

    LOG = "log"
    POLICY = "policy"
