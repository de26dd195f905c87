"""A brute-force statement of the engine's semantics, written for clarity, not speed.

It keeps every counted message forever and recounts the whole window at each
one; the engine must give exactly the same firings with its bounded state.

Subject settings (classes, overrides, exemptions) change between events. The
numbers a unit is judged by are those in force when it is counted. What a
window keeps is stated as the engine promises it: at each counted unit, a
unit is *passed over* (never counted again) once the units newer than it in
the window reach the cap then in force: the highest number the threshold
gives any class, or the threshold's own, or the subject's override. With a
cap that never changes this changes no decision (the README's proof); it
matters only when an override raises a subject above that cap mid-window.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

from schemas.config import FloodgateConfig
from schemas.events import DeliveryEvent, MailEvent
from schemas.subject_settings import OFF, SubjectSettings, ThresholdOverride
from schemas.thresholds import Threshold, with_numbers
from schemas.time_ms import span_ms, to_ms

Unit = MailEvent | DeliveryEvent


@dataclass(frozen=True)
class Firing:
    threshold: str
    subject_type: str
    subject: str
    triggered_ms: int
    expires_ms: int
    messages: int  # units in the window, less those passed over
    spams: int  # flagged units (spam, or the threshold's `flagged`), less those passed over
    action: str = ""
    step: int | None = None  # the escalation step that applied, 1-based
    firing: int | None = None  # its number within the step's period (up to the top `after`)
    limits: tuple[int, int] = (0, 0)  # the subject's (messages, flagged limit) when it fired


def _counts(config: FloodgateConfig, event: Unit) -> bool:
    """Whether the message or delivery attempt counts at all: an exempt account or
    network, never; a sender exemption is per subject (``_subject``)."""
    if isinstance(event, DeliveryEvent):
        if event.status not in ("sent", "deferred", "bounced"):
            return False  # "expired" is the queue giving up, not an attempt
        if (event.response or "").split(":")[0] == "delivery temporarily suspended":
            return False  # Postfix did not try: the destination had just failed
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
    # remote_refused: a failed attempt that the remote server itself answered 4xx/5xx, to a
    # command ("host X said:") or at its greeting ("host X refused to talk to me:")
    words = (event.response or "").split(" ")
    if words[2:6] == ["refused", "to", "talk", "to"] and len(words) >= 7 and words[6] == "me:":
        words = [*words[:2], "said:", *words[7:]]
    return (event.status != "sent" and len(words) >= 4 and words[0] == "host"
            and words[2] == "said:" and words[3][:1] in ("4", "5")
            and words[3][1:3].isdigit() and len(words[3][:3]) == 3
            and words[3][3:4] in ("", "-"))


def _sender_exempt(config: FloodgateConfig, event: Unit) -> bool:
    if not event.sender:
        return False
    senders = config.exempt.senders
    return event.sender.lower() in senders or f"@{event.sender_domain}" in senders


def _subject(config: FloodgateConfig, threshold: Threshold,
             event: Unit) -> tuple[str, str] | None:
    """(subject type, subject) the event counts under for the threshold."""
    if threshold.key.value in ("sender", "sender_domain") and _sender_exempt(config, event):
        return None
    value = {
        "sasl_username": event.sasl_username,
        "sender": event.sender.lower() if event.sender else None,
        "sender_domain": event.sender_domain,
        "client_ip": event.client_ip,
    }[threshold.key.value]
    if not value:
        return None
    if threshold.key.value == "client_ip" and threshold.prefix is not None:
        # every address of the network is one subject, named by the network
        ip = ipaddress.ip_address(value)
        bits = threshold.prefix.ipv4 if ip.version == 4 else threshold.prefix.ipv6
        if bits < ip.max_prefixlen:
            return "client_net", str(ipaddress.ip_network(f"{value}/{bits}", strict=False))
    return threshold.key.value, value


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


Changes = dict[int, dict[str, SubjectSettings | None]]  # before event i: key -> record or None


def _limits(config: FloodgateConfig, threshold: Threshold,
            record: SubjectSettings | None) -> tuple[int, int] | None:
    """(messages, flagged limit) for the subject; None when the threshold does not count it."""
    if record is not None and record.exempt:
        return None
    known = config.classes.known
    name = record.subject_class if record and record.subject_class in known \
        else config.classes.default
    if threshold.classes and name not in threshold.classes:
        return None
    limits = threshold.limits_for(name)
    override = record.overrides.get(threshold.name) if record else None
    if override == OFF:
        return None
    if isinstance(override, ThresholdOverride):
        limits = with_numbers(threshold, limits, override.messages, override.spams,
                              override.flagged_units)
    return None if limits == (0, 0) else limits


def _caps(config: FloodgateConfig, threshold: Threshold, limits: tuple[int, int]) -> tuple[int, int]:
    counted = [threshold.limits_for(c) for c in config.classes.known
               if not threshold.classes or c in threshold.classes]
    volume = max([threshold.messages, threshold.flagged_limit, 1, *limits]
                 + [n for pair in counted for n in pair])
    spam = max([threshold.flagged_limit, limits[1]] + [pair[1] for pair in counted])
    return volume, spam


def _pass_over(entries: list[list[int]], column: int, cap: int) -> None:
    """Mark (``entry[column] = 1``) every entry older than the newest that reach ``cap``."""
    running = 0
    for entry in sorted(entries, key=lambda e: (e[0], e[3]), reverse=True):
        if running >= cap:
            entry[column] = 1
        else:
            running += entry[1]


def _learnt(threshold: Threshold, units: list[tuple[int, int]], ts: int, weight: int,
            limits: tuple[int, int]) -> tuple[int, int]:
    """A baseline threshold's limits after one more unit: ``units`` holds the subject's
    history since its first unit, the first one first (its bucket starts the history)."""
    assert threshold.baseline is not None
    window = span_ms(threshold.window)
    n = span_ms(threshold.baseline.learn) // window
    bucket = ts // window
    if units and bucket - max(b for b, _ in units) > n:
        units.clear()  # silent for a whole learning period: history starts again
    if not units or bucket >= units[0][0]:  # older than the first: not history
        units.append((bucket, weight))
    first, newest = units[0][0], max(b for b, _ in units)
    if newest - first < n:
        return limits  # still learning: the fixed numbers
    a = 2 / (n + 1)
    weights = {j: a * (1 - a) ** (newest - 1 - j) for j in range(first, newest)}
    normal = sum(weights[b] * w for b, w in units if b < newest) / sum(weights.values())
    learnt = math.floor(round(threshold.baseline.factor * normal, 6)) + 1
    return max(threshold.baseline.min_messages, learnt), limits[1]


def reference_firings(config: FloodgateConfig, events: list[Unit],
                      resets: dict[int, set[tuple[str, str]]] | None = None,
                      changes: Changes | None = None) -> list[Firing]:
    """``resets``: before the event at index i, operators lifted these (threshold, subject)
    actions and reset their ladders (``actions lift --reset``). ``changes``: before the
    event at index i, these subjects' settings records were set (None: removed)."""
    # per (threshold, subject): [ts, weight, flagged, seq, passed over (all), passed over
    # (flagged)]
    history: dict[tuple[str, str], list[list[int]]] = {}
    settings: dict[str, SubjectSettings | None] = {}
    counted_from: dict[tuple[str, str], int] = {}  # index in history where counting restarted
    active_until: dict[tuple[str, str], int] = {}
    learnt: dict[tuple[str, str], list[tuple[int, int]]] = {}  # (bucket, units) per unit
    fired_at: dict[tuple[str, str], list[int]] = {}
    firings = []
    for index, event in enumerate(events):
        for key in (resets or {}).get(index, set()):
            # a lift starts counting afresh (the newest time seen stays the present) ...
            counted_from[key] = len(history.get(key, []))
            active_until.pop(key, None)
            fired_at.pop(key, None)  # ... and --reset forgets the firings too
        settings.update((changes or {}).get(index, {}))
        if not _counts(config, event):
            continue
        for threshold in config.thresholds:
            named = _subject(config, threshold, event)
            if named is None or not _in_scope(threshold, event):
                continue
            subject_type, subject = named
            limits = _limits(config, threshold, settings.get(f"{subject_type}:{subject}"))
            if limits is None:
                continue
            weight = max(event.recipient_count, 1) if threshold.count.value == "recipients" \
                and isinstance(event, MailEvent) else 1
            if threshold.baseline is not None:
                limits = _learnt(threshold, learnt.setdefault((threshold.name, subject), []),
                                 to_ms(event.ts), weight, limits)
            seen = history.setdefault((threshold.name, subject), [])
            flagged = _flagged(threshold, event)
            seen.append([to_ms(event.ts), weight, int(flagged), index, 0, 0])
            now = max(entry[0] for entry in seen)
            start = now - span_ms(threshold.window)
            key = (threshold.name, subject)
            window = [e for e in seen[counted_from.get(key, 0):] if start < e[0] <= now]
            volume_cap, spam_cap = _caps(config, threshold, limits)
            _pass_over([e for e in window if not e[4]], 4, volume_cap)
            if flagged:
                _pass_over([e for e in window if e[2] and not e[5]], 5, spam_cap)
            units = sum(e[1] for e in window if not e[4])
            spams = sum(e[1] for e in window if e[2] and not e[5])
            if units >= limits[0] and spams >= limits[1] \
                    and now >= active_until.get(key, 0):
                earlier = fired_at.setdefault(key, [])
                number, firing = _step(threshold, earlier, now) or (None, None)
                step = threshold.escalate[number - 1] if number else None
                action, duration = (step.action, step.duration) if step else \
                    (threshold.action, threshold.duration)
                earlier.append(now)
                active_until[key] = now + span_ms(duration)
                firings.append(Firing(threshold.name, subject_type, subject, now,
                                      active_until[key], units, spams, action.value, number,
                                      firing, limits))
    return firings
