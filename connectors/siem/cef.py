"""ArcSight Common Event Format lines for Floodgate's records.

``CEF:0|Floodgate|Floodgate|version|signature|name|severity|extension``.
Escaping follows the CEF specification: in the header ``\\`` and ``|``; in
extension values ``\\``, ``=`` and line breaks (written ``\\n``, ``\\r``).
Other control characters cannot be escaped in CEF, so they become spaces:
nothing from a record can start a new line or a new field.
A value is cut to 1,023 characters, and a line to its byte budget, before it
is escaped (so an escape is never split); ``cs6Label=cut cs6=FIELD:LENGTH,...``
names each cut field with its original length.
"""

from __future__ import annotations

import re

from connectors.release import release
from connectors.siem import record_size
from schemas.events import ActionEvent, MailEvent
from schemas.subject_settings import SettingsChange
from schemas.time_ms import to_ms
from schemas.vocabulary import ActionState, Flag, SubjectType

_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
SEVERITY = {"warn": 3, "defer": 5, "quarantine": 7, "block": 8}
MAX_VALUE = 1023  # CEF's usual limit for string extensions
_FLAGGED_LABEL = {Flag.SPAM: "spams", Flag.BOUNCED: "bounced",
                  Flag.REMOTE_REFUSED: "remoteRefused", Flag.UNKNOWN_RECIPIENT: "unknownRecipients"}
CUT_FIRST = ("reason",)  # free text, cut first when a line is too long


def header_escape(value: str) -> str:
    value = _CONTROL.sub(" ", value).replace("\r", " ").replace("\n", " ")
    return value.replace("\\", "\\\\").replace("|", "\\|")


def value_escape(value: str) -> str:
    value = _CONTROL.sub(" ", value)
    return (value.replace("\\", "\\\\").replace("=", "\\=")
            .replace("\r", "\\r").replace("\n", "\\n"))


def _line(signature: str, name: str, severity: int, extension: dict[str, str | int],
          budget: int) -> str:
    head = "|".join(["CEF:0", "Floodgate", "Floodgate", header_escape(release()),
                     header_escape(signature), header_escape(name), str(severity)])
    long = {key: len(value) for key, value in extension.items()
            if isinstance(value, str) and len(value) > MAX_VALUE}
    for key in long:
        extension[key] = str(extension[key])[:MAX_VALUE]

    def mark(ext: record_size.Record, cuts: record_size.Cuts) -> None:
        ext["cs6Label"], ext["cs6"] = "cut", ",".join(
            f"{key}:{length}" for key, length in {**cuts, **long}.items())

    if long:
        mark(extension, {})
    return record_size.fit(extension, lambda ext: f"{head}|{_extension(ext)}", budget,
                           CUT_FIRST, mark)


def _extension(extension: record_size.Record) -> str:
    return " ".join(f"{key}={value_escape(str(value))}" for key, value in extension.items()
                    if value != "")


def action_line(action: ActionEvent,
                budget: int = record_size.DEFAULT_RECORD_BYTES) -> str:
    ext: dict[str, str | int] = {
        "rt": to_ms(action.ts), "act": action.action.value, "outcome": action.state.value,
        "externalId": action.action_id, "start": to_ms(action.triggered_at),
        "end": to_ms(action.ends_at),
        "cs1Label": "threshold", "cs1": action.threshold or "manual",
        "cs2Label": "subjectType", "cs2": action.subject_type.value,
        "cs3Label": "subject", "cs3": action.subject,
    }
    if action.subject_type in (SubjectType.SASL_USERNAME, SubjectType.SENDER):
        ext["suser"] = action.subject  # the mail's sending user, acted on
    elif action.subject_type is SubjectType.CLIENT_IP:
        ext["src"] = action.subject
    if action.actor:  # the operator of a manual action or a lift
        ext["cs4Label"], ext["cs4"] = "actor", action.actor
    if action.evidence is not None:
        # the threshold's units (messages, recipients, deliveries) and its flagged ones
        ext["cn1Label"], ext["cn1"] = action.evidence.count.value, action.evidence.messages
        ext["cn2Label"], ext["cn2"] = _FLAGGED_LABEL[action.evidence.flagged], \
            action.evidence.spams
        escalation = action.evidence.escalation
        if escalation is not None:  # a repeat offender's: the ladder's step chose the action
            ext["cn3Label"], ext["cn3"] = "escalationStep", escalation.step
            ext["cnt"] = escalation.firing  # this firing's number within the step's period
    if action.reason:
        ext["reason"] = action.reason
    if not action.enforced:  # a shadow threshold's: published to be watched, never applied
        ext["cs5Label"], ext["cs5"] = "mode", "shadow"
    applied = action.state is ActionState.ACTIVE and action.enforced
    severity = SEVERITY[action.action.value] if applied else 1
    return _line(f"action-{action.action.value}-{action.state.value}",
                 f"{action.action.value} {action.state.value}", severity, ext, budget)


def mail_line(mail: MailEvent, budget: int = record_size.DEFAULT_RECORD_BYTES) -> str:
    ext: dict[str, str | int] = {
        "rt": to_ms(mail.ts), "externalId": mail.event_id, "dvchost": mail.host,
        "src": mail.client_ip or "", "suser": mail.sasl_username or "",
        "cs1Label": "sender", "cs1": mail.sender or "",
        "cs2Label": "direction", "cs2": mail.direction.value,
        "cn1Label": "recipients", "cn1": mail.recipient_count,
        "outcome": "accepted" if mail.accepted else "refused",
    }
    if mail.spam is not None:
        ext["cs3Label"], ext["cs3"] = "spam", str(mail.spam).lower()
    if mail.reject_reason:
        ext["reason"] = mail.reject_reason  # the refusal's reply
    return _line("mail-accepted" if mail.accepted else "mail-refused",
                 "mail " + ("accepted" if mail.accepted else "refused"),
                 1 if mail.accepted else 3, ext, budget)


def settings_line(change: SettingsChange, budget: int = record_size.DEFAULT_RECORD_BYTES) -> str:
    """An operator's change of a subject's settings (class, overrides, exemption)."""
    kind, _, value = change.subject.partition(":")
    ext: dict[str, str | int] = {
        "rt": to_ms(change.ts), "outcome": "removed" if change.record is None else "set",
        "cs2Label": "subjectType", "cs2": kind, "cs3Label": "subject", "cs3": value,
        "cs4Label": "actor", "cs4": change.actor,
        "cs1Label": "settings", "cs1": change.summary,
        "reason": change.reason,
    }
    if kind in (SubjectType.SASL_USERNAME.value, SubjectType.SENDER.value):
        ext["suser"] = value
    elif kind == SubjectType.CLIENT_IP.value:
        ext["src"] = value
    name = "settings removed" if change.record is None else "settings set"
    return _line(name.replace(" ", "-"), name, 3, ext, budget)
