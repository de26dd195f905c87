"""Events built from what the log reader gathered, every value cut to its field's limit.

A value too long for the event contract is cut and the event flagged
``truncated``; the builders raise ``ValueError`` (pydantic's) for what no valid
event can be made of, which the reader counts without losing other messages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import overload

from connectors.postfix_log.open_message import OpenMessage
from connectors.postfix_log.postfix_lines import Refused
from connectors.postfix_log.syslog_formats import LogRecord
from connectors.postfix_log.tracker_stats import TrackerStats
from schemas.addresses import MAX_ADDRESS, domain_of
from schemas.direction import DirectionRules
from schemas.events import MAX_NAME, MAX_TEXT, DeliveryEvent, MailEvent
from schemas.vocabulary import EventSource


class Fit:
    """Cuts values to their field's limit and remembers whether it cut any."""

    __slots__ = ("cut",)

    def __init__(self) -> None:
        self.cut = False

    @overload
    def __call__(self, value: str, limit: int) -> str: ...
    @overload
    def __call__(self, value: str | None, limit: int) -> str | None: ...

    def __call__(self, value: str | None, limit: int) -> str | None:
        if value is None or len(value) <= limit:
            return value
        self.cut = True
        return value[:limit]


def delivery_event(message: OpenMessage, rules: DirectionRules, ts: datetime, ts_ms: int,
                   recipient: str, status: str, orig: str | None = None, dsn: str | None = None,
                   relay: str | None = None, delay_s: float | None = None,
                   response: str | None = None) -> DeliveryEvent:
    """One delivery outcome of ``message`` (a copy's deliveries belong to the original)."""
    source = message.origin or message
    fit = Fit()
    # Log times have whole seconds: the message's age at the attempt (delay=, 0.01 s) tells
    # two attempts of one recipient in one second apart (a queue flushed twice).
    age = "" if delay_s is None else f"/{delay_s:g}"
    return DeliveryEvent(
        delivery_id=fit(f"{message.host}/{message.qid}/{recipient}/{ts_ms}{age}/{status}",
                        MAX_TEXT),
        event_id=fit(message.event_id, MAX_TEXT), ts=ts,
        host=fit(message.host, MAX_NAME) or "unknown", queue_id=fit(message.qid, 64),
        recipient=fit(recipient, MAX_ADDRESS), orig_recipient=fit(orig, MAX_ADDRESS),
        status=fit(status, 32), dsn=fit(dsn, 16), relay=fit(relay, MAX_NAME), delay_s=delay_s,
        response=fit(response, MAX_TEXT), sender=fit(source.sender, MAX_ADDRESS),
        sasl_username=fit(source.sasl_username, MAX_ADDRESS), client_ip=source.client_ip,
        direction=rules.classify(source.client_ip, source.sasl_username,
                                 source.local_submission, [recipient]),
        mta_generated=source.mta_generated)


def refused_event(record: LogRecord, fact: Refused, rules: DirectionRules, *, host: str,
                  id_part: str, queue_id: str | None, client_ip: str | None,
                  client_name: str | None, sasl_username: str | None, sender: str | None,
                  local_submission: bool, spam: bool | None) -> MailEvent:
    """The refused MailEvent of one refusal line, attributed to what the caller knows.

    The id holds the line's time, pid and recipient: two refusals of one session
    differ, a re-read of the same line does not."""
    fit = Fit()
    recipients = [fit(fact.recipient, MAX_ADDRESS)] if fact.recipient else []
    return MailEvent(
        event_id=fit(f"{host}/{id_part}/{int(record.ts.timestamp() * 1_000_000)}/"
                     f"{record.pid}/{fact.recipient or ''}", MAX_TEXT),
        ts=record.ts, host=fit(host, MAX_NAME) or "unknown", queue_id=fit(queue_id, 64),
        client_ip=client_ip, client_name=fit(client_name, MAX_NAME),
        sasl_username=fit(sasl_username, MAX_ADDRESS),
        sender=fit(sender, MAX_ADDRESS), sender_domain=fit(domain_of(sender), MAX_NAME),
        recipients=recipients,
        direction=rules.classify(client_ip, sasl_username, local_submission, recipients),
        accepted=False, spam=spam, reject_reason=fit(fact.reason, MAX_TEXT),
        source=EventSource.LOG, truncated=fit.cut)


def message_event(message: OpenMessage, rules: DirectionRules, accepted: bool) -> MailEvent:
    """The MailEvent of a whole message, queued (``accepted``) or refused."""
    fit = Fit()
    return MailEvent(
        event_id=fit(message.event_id, MAX_TEXT), ts=message.queued_ts or message.first_ts,
        host=fit(message.host, MAX_NAME) or "unknown", queue_id=fit(message.qid, 64),
        message_id=fit(message.message_id, MAX_TEXT) or None,
        client_ip=message.client_ip, client_name=fit(message.client_name, MAX_NAME),
        sasl_username=fit(message.sasl_username, MAX_ADDRESS),
        sender=fit(message.sender, MAX_ADDRESS),
        sender_domain=fit(domain_of(message.sender), MAX_NAME),
        recipients=[fit(r, MAX_ADDRESS) for r in message.recipients],
        recipient_count=max(message.nrcpt or 0, len(message.recipients)),
        size=message.size,
        direction=rules.classify(message.client_ip, message.sasl_username,
                                 message.local_submission, message.recipients),
        accepted=accepted, spam=False if message.own_refusal else message.spam,
        spam_score=message.spam_score, mta_generated=message.mta_generated,
        reject_reason=fit(message.refusal, MAX_TEXT), source=EventSource.LOG,
        truncated=fit.cut)


def emit_event(out: list[MailEvent | DeliveryEvent], stats: TrackerStats,
               build: Callable[[], MailEvent], what: str) -> None:
    """Build one MailEvent into ``out``; a message no valid event can be made of is counted
    and sampled (``what`` names it), and never takes other messages with it."""
    try:
        event = build()
    except ValueError as exc:  # pydantic's ValidationError is one
        stats.invalid += 1
        stats.unparsed_samples.append(f"{what[:200]}: no valid event: "
                                      f"{str(exc).splitlines()[0][:100]}")
        return
    stats.mail_events += 1
    stats.truncated += event.truncated
    out.append(event)
