"""What the log reader knows of one open message, keyed by (host, queue id), and the bounded
lookups that join lines seconds apart."""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from connectors.postfix_log.spam_verdicts import RspamdLine, SpamVerdict
from schemas.addresses import is_loopback

Key = tuple[str, str]  # (host, queue id)
Position = tuple[int, ...]  # a reader's place in its input, ordered (e.g. file number, offset)
V = TypeVar("V")
# Lookups that join lines seconds apart (message-id to queue id, next-hop queue
# ids, verdicts before their message): a few thousand recent entries suffice.
RECENT_LOOKUPS = 20_000
_LOOPBACK_RELAY = re.compile(r"^(?:[^\[]*)\[(?P<ip>[^\]]+)\]")


@dataclass(slots=True)  # one per message of the log: slots build and read faster
class OpenMessage:
    host: str
    qid: str
    first_ts: datetime
    last_ms: int
    client_name: str | None = None
    client_ip: str | None = None
    sasl_username: str | None = None
    local_submission: bool = False
    message_id: str | None = None
    sender: str | None = None
    size: int | None = None
    nrcpt: int | None = None
    queued_ts: datetime | None = None
    recipients: list[str] = field(default_factory=list)
    deferred: dict[str, None] = field(default_factory=dict)  # recipients still being retried
    spam: bool | None = None
    spam_score: float | None = None
    mta_generated: bool = False
    rspamd: tuple[RspamdLine, int, OpenMessage] | None = None  # line, start length, message named
    refusal: str | None = None  # the reply that refused the whole message
    own_refusal: bool = False  # ... when the reply was Floodgate's own
    first_position: Position = ()  # where its first line is, for the tailer's checkpoint
    original_event_id: str | None = None  # set on a content filter's re-injected copy
    origin: OpenMessage | None = None  # that original, while it is still tracked
    copy_unconfirmed: bool = False  # named by a "queued as" before its own client line came
    reported: bool = False

    @property
    def event_id(self) -> str:
        return self.original_event_id or f"{self.host}/{self.qid}"


def apply_verdict(message: OpenMessage, verdict: SpamVerdict) -> None:
    if verdict.spam is not None:
        message.spam = verdict.spam
    if verdict.score is not None:
        message.spam_score = verdict.score


def remember(table: OrderedDict[Key, V], key: Key, value: V, limit: int) -> None:
    """Set a bounded lookup entry; the oldest goes when the table is full."""
    table[key] = value
    if len(table) > limit:
        table.popitem(last=False)


def is_loopback_relay(relay: str) -> bool:
    m = _LOOPBACK_RELAY.match(relay)
    return m is not None and is_loopback(m["ip"])
