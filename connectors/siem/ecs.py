"""Elastic Common Schema documents for Floodgate's records.

Actions are alerts (``event.kind: alert``), mail events plain events; the
subject lands in the ECS field that names it (``user.target.name`` for an
account acted on, ``source.ip`` for a client address, ``email.from.address``
for a sender). ``user.name`` is whoever acted, as ECS reads it: the operator
(``actor``) of a manual action or a lift, the account itself in a mail event;
``related.user`` lists both. ``event.end`` is when the action ended: its
expiry, or the moment it was lifted; a refusal's reply and an action's
reason are ``event.reason``.
Each value is written once: in its ECS field when ECS has one, else under
``floodgate``. Two exceptions: ``floodgate.subject`` keeps an action's
subject for every subject type (the key operators look it up by; a sender
domain has no ECS field), and ``related.user`` repeats user names as ECS
intends. Values go through ``json.dumps``, which escapes every
control and non-ASCII character, so a line's length in characters is its
length in bytes.
"""

from __future__ import annotations

import json
from typing import Any

from connectors.siem import record_size
from schemas.events import ActionEvent, MailEvent
from schemas.subject_settings import SettingsChange
from schemas.subjects import split_subject_key
from schemas.vocabulary import ActionState, SubjectType

ECS_VERSION = "8.11.0"
_ACTION_TYPES = {"block": ["denied"], "defer": ["denied"], "quarantine": ["denied"],
                 "warn": ["info"]}
_EMAIL_DIRECTIONS = {"outbound": "outbound", "inbound": "inbound", "internal": "internal"}
# the record's fields that have an ECS home, so they are left out of "floodgate"
_ACTION_MAPPED = {"ts", "action_id", "triggered_at", "threshold", "actor", "reason"}
_MAIL_MAPPED = {"ts", "event_id", "host", "queue_id", "message_id", "client_ip",
                "sasl_username", "sender", "recipients", "accepted", "reject_reason"}
# cut first when a record is too long: free text, then names repeated in related.user
CUT_FIRST = ("event.reason", "email.to.address", "email.message_id", "message", "related.user")


def _iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def action_document(action: ActionEvent) -> dict[str, Any]:
    subject = _subject_fields(action.subject_type, action.subject)
    if action.actor:
        subject.setdefault("user", {})["name"] = action.actor
    target = action.subject if action.subject_type is SubjectType.SASL_USERNAME else None
    users = [u for u in (action.actor, target) if u]
    ended = action.state is not ActionState.ACTIVE
    # a shadow threshold's action is information: nothing was denied
    informative = ended or not action.enforced
    return {
        "@timestamp": _iso(action.ts),
        "ecs": {"version": ECS_VERSION},
        "event": {
            "kind": "alert" if not ended else "event",
            "category": ["email", "intrusion_detection"],
            # ECS allows no "end" type for these categories: an ended action is information
            "type": ["info"] if informative else _ACTION_TYPES[action.action.value],
            "action": f"{action.action.value}-{action.state.value}",
            "id": action.action_id,
            "dataset": "floodgate.actions",
            "provider": "floodgate",
            "start": _iso(action.triggered_at),
            "end": _iso(action.ends_at),
            **({"reason": action.reason} if action.reason else {}),
        },
        "rule": {"name": action.threshold or "manual"},
        **({"tags": tags} if (tags := _action_tags(action)) else {}),
        **subject,
        **({"related": {"user": users}} if users else {}),
        "message": (f"{action.action.value} of a {action.subject_type.value} "
                    f"({action.state.value}) until {_iso(action.expires_at)}"),
        "floodgate": action.model_dump(mode="json", exclude=_ACTION_MAPPED),
    }


def _action_tags(action: ActionEvent) -> list[str]:
    """``shadow`` (watched, not applied); ``escalated`` (a repeat offender's step applied)."""
    escalated = action.evidence is not None and action.evidence.escalation is not None
    return ["shadow"] * (not action.enforced) + ["escalated"] * escalated


def mail_document(mail: MailEvent) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@timestamp": _iso(mail.ts),
        "ecs": {"version": ECS_VERSION},
        "event": {
            "kind": "event",
            "category": ["email"],
            "type": ["info"] if mail.accepted else ["denied"],
            "action": "message-accepted" if mail.accepted else "message-refused",
            "id": mail.event_id,
            "dataset": "floodgate.mail_events",
            "provider": "floodgate",
            **({"reason": mail.reject_reason} if mail.reject_reason else {}),
        },
        "host": {"name": mail.host},
        "email": {
            "direction": _EMAIL_DIRECTIONS.get(mail.direction.value, "unknown"),
            "to": {"address": mail.recipients},
            **({"from": {"address": [mail.sender]}} if mail.sender else {}),
            **({"local_id": mail.queue_id} if mail.queue_id else {}),
            **({"message_id": mail.message_id} if mail.message_id else {}),
        },
        # the null sender "" has no ECS address: it stays floodgate.sender
        "floodgate": mail.model_dump(mode="json", exclude=_MAIL_MAPPED - (
            set() if mail.sender else {"sender"})),
    }
    if mail.client_ip:
        document["source"] = {"ip": mail.client_ip}
    if mail.sasl_username:
        document["user"] = {"name": mail.sasl_username}
    return document


def settings_document(change: SettingsChange) -> dict[str, Any]:
    """An operator's change of a subject's settings: a configuration change, audited."""
    kind, value = split_subject_key(change.subject)
    subject = _subject_fields(kind, value)
    subject.setdefault("user", {})["name"] = change.actor
    removed = change.record is None
    return {
        "@timestamp": _iso(change.ts),
        "ecs": {"version": ECS_VERSION},
        "event": {
            "kind": "event",
            "category": ["configuration"],
            "type": ["deletion"] if removed else ["change"],
            "action": "settings-removed" if removed else "settings-set",
            "dataset": "floodgate.subject_settings",
            "provider": "floodgate",
            "reason": change.reason,
        },
        **subject,
        "related": {"user": [u for u in (change.actor, value if kind is SubjectType.SASL_USERNAME
                                         else None) if u]},
        "message": f"settings of {change.subject}: {change.summary}",
        "floodgate": {"subject": change.subject, **(
            change.record.model_dump(mode="json", by_alias=True,
                                     exclude={"actor", "reason", "at", "subject"})
            if change.record is not None else {"removed": True})},
    }


def _subject_fields(kind: SubjectType, subject: str) -> dict[str, Any]:
    if kind is SubjectType.SASL_USERNAME:
        return {"user": {"target": {"name": subject}}}
    if kind is SubjectType.CLIENT_IP:
        return {"source": {"ip": subject}}
    if kind is SubjectType.CLIENT_NET:  # ECS has no network field: the address field holds it
        return {"source": {"address": subject}}
    if kind is SubjectType.SENDER:
        return {"email": {"from": {"address": [subject]}}}
    return {}  # a sender domain has no ECS field: floodgate.subject alone names it


def to_line(document: dict[str, Any]) -> str:
    """One JSON line: control and non-ASCII characters escaped (no line separator of any kind)."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True, sort_keys=True)


def bounded_line(document: dict[str, Any], budget: int) -> str:
    """``to_line`` in at most ``budget`` bytes: text cut first from ``CUT_FIRST``, and
    ``floodgate.cut`` naming each cut field with its original length."""
    return record_size.fit(document, to_line, budget, CUT_FIRST, _mark)


def _mark(document: dict[str, Any], cuts: record_size.Cuts) -> None:
    document.setdefault("floodgate", {})["cut"] = dict(cuts)
