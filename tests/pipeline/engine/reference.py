"""A brute-force statement of the engine's semantics, written for clarity, not speed.

It keeps every counted message forever and recounts the whole window at each
one; the engine must give exactly the same firings with its bounded state.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from schemas.config import FloodgateConfig
from schemas.events import DeliveryEvent, MailEvent
from schemas.thresholds import Threshold
from schemas.time_ms import span_ms, to_ms

Unit = MailEvent | DeliveryEvent


@dataclass(frozen=True)
class Firing:
    threshold: str
    subject_type: str
    subject: str
    triggered_ms: int
    expires_ms: int
    messages: int  # true units in the window
    spams: int  # true flagged units (spam, or the threshold's `flagged`)
    action: str = ""
    step: int | None = None  # the escalation step that applied, 1-based
    firing: int | None = None  # its number within the step's period (up to the top `after`)


def _counts(config: FloodgateConfig, event: Unit) -> bool:
    """Whether the message or delivery attempt counts at all: an exempt account or
    network, never; a sender exemption is per subject (``_subject``)."""
    if isinstance(event, DeliveryEvent):
        if event.status not in ("sent", "deferred", "bounced"):
            return False  # "expired" is the queue giving up, not an attempt
    elif not event.accepted and event.spam is not True and not _unknown_mailbox(event):
        return False
    if event.mta_generated:
        return False
    exempt = config.exempt
    if event.sasl_username in exempt.sasl_usernames:
        return False
    if event.client_ip:
        ip = ipaddress.ip_address(event.client_ip)
        if any(ip in ipaddress.ip_network(n) for n in exempt.client_ips):
            return False
    return True


def _unknown_mailbox(event: MailEvent) -> bool:
    """Refused, not as spam, with the server's reply opening "5xx 5.1.1" (or 4xx 4.1.1)."""
    if event.accepted or event.spam is True or not event.reject_reason:
        return False
    code, _, rest = event.reject_reason.replace("-", " ", 1).partition(" ")
    status = rest.split(" ")[0].split("\n")[0]
    return len(code) == 3 and code.isdigit() and code[0] in "45" \
        and status.split(".")[1:] == ["1", "1"] and status.split(".")[0] in ("4", "5")


def _flagged(threshold: Threshold, event: Unit) -> bool:
    if isinstance(event, MailEvent):
        if threshold.flagged.value == "unknown_recipient":
            return _unknown_mailbox(event)
        return event.spam is True
    if threshold.flagged.value == "bounced":
        return event.status == "bounced"
    # remote_refused: a failed attempt that the remote server itself answered 4xx/5xx
    words = (event.response or "").split(" ")
    return (event.status != "sent" and len(words) >= 4 and words[0] == "host"
            and words[2] == "said:" and words[3][:1] in ("4", "5")
            and words[3][1:3].isdigit() and len(words[3][:3]) == 3
            and words[3][3:4] in ("", "-"))


def _sender_exempt(config: FloodgateConfig, event: Unit) -> bool:
    if not event.sender:
        return False
    senders = config.exempt.senders
    return event.sender.lower() in senders or f"@{event.sender_domain}" in senders


def _subject(config: FloodgateConfig, threshold: Threshold, event: Unit) -> str | None:
    if threshold.key.value in ("sender", "sender_domain") and _sender_exempt(config, event):
        return None
    value = {
        "sasl_username": event.sasl_username,
        "sender": event.sender.lower() if event.sender else None,
        "sender_domain": event.sender_domain,
        "client_ip": event.client_ip,
    }[threshold.key.value]
    return value or None


def _in_scope(threshold: Threshold, event: Unit) -> bool:
    if (threshold.count.value == "deliveries") != isinstance(event, DeliveryEvent):
        return False
    if isinstance(event, MailEvent) and _unknown_mailbox(event) \
            and threshold.flagged.value != "unknown_recipient":
        return False  # a refused recipient is no mail for any other threshold
    if threshold.direction.value not in ("any", event.direction.value):
        return False
    return not threshold.sender_domains or event.sender_domain in threshold.sender_domains


def _step(threshold: Threshold, earlier: list[int], now: int) -> tuple[int, int] | None:
    """The last escalation step whose count of firings within its period, this one
    included, reaches its ``after`` (every earlier firing kept, counted afresh), and that
    count up to the highest ``after``."""
    chosen = None
    top = max(step.after for step in threshold.escalate) if threshold.escalate else 0
    for number, step in enumerate(threshold.escalate, start=1):
        within = span_ms(step.within)
        count = 1 + sum(1 for t in earlier if now - within < t <= now)
        if count >= step.after:
            chosen = number, min(count, top)
    return chosen


def reference_firings(config: FloodgateConfig, events: list[Unit],
                      resets: dict[int, set[tuple[str, str]]] | None = None) -> list[Firing]:
    """``resets``: before the event at index i, operators lifted these (threshold, subject)
    actions and reset their ladders (``actions lift --reset``)."""
    history: dict[tuple[str, str], list[tuple[int, int, bool]]] = {}
    counted_from: dict[tuple[str, str], int] = {}  # index in history where counting restarted
    active_until: dict[tuple[str, str], int] = {}
    fired_at: dict[tuple[str, str], list[int]] = {}
    firings = []
    for index, event in enumerate(events):
        for key in (resets or {}).get(index, set()):
            # a lift starts counting afresh (the newest time seen stays the present) ...
            counted_from[key] = len(history.get(key, []))
            active_until.pop(key, None)
            fired_at.pop(key, None)  # ... and --reset forgets the firings too
        if not _counts(config, event):
            continue
        for threshold in config.thresholds:
            subject = _subject(config, threshold, event)
            if subject is None or not _in_scope(threshold, event):
                continue
            weight = max(event.recipient_count, 1) if threshold.count.value == "recipients" \
                and isinstance(event, MailEvent) else 1
            seen = history.setdefault((threshold.name, subject), [])
            seen.append((to_ms(event.ts), weight, _flagged(threshold, event)))
            now = max(ts for ts, _, _ in seen)
            start = now - span_ms(threshold.window)
            key = (threshold.name, subject)
            live = seen[counted_from.get(key, 0):]
            units = sum(w for ts, w, _ in live if start < ts <= now)
            spams = sum(w for ts, w, spam in live if spam and start < ts <= now)
            if units >= threshold.messages and spams >= threshold.flagged_limit \
                    and now >= active_until.get(key, 0):
                earlier = fired_at.setdefault(key, [])
                number, firing = _step(threshold, earlier, now) or (None, None)
                step = threshold.escalate[number - 1] if number else None
                action, duration = (step.action, step.duration) if step else \
                    (threshold.action, threshold.duration)
                earlier.append(now)
                active_until[key] = now + span_ms(duration)
                firings.append(Firing(threshold.name, threshold.key.value, subject, now,
                                      active_until[key], units, spams, action.value, number,
                                      firing))
    return firings
