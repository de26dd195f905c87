"""One subject's settings: its customer class, per-threshold overrides and exemption.

Records of the compacted topic ``floodgate.subject-settings``, keyed by the
subject key (``type:value``, the spelling of actions). A record replaces the
subject's whole settings; a record with no value (a tombstone) removes them,
and the subject is then in the config's default class with the thresholds'
own numbers. Operators write them with ``floodgate settings`` (one at a time,
or an import of a customer database's export) and the console; the worker
counts by them, the policy service honours their exemptions, SIEMs get each
change as an audit record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from schemas.config_types import MAX_THRESHOLD_COUNT, ClassName, ThresholdName
from schemas.events import MAX_NAME, MAX_TEXT, EventTime, _Record
from schemas.subjects import parse_subject, subject_key

MAX_OVERRIDES = 100
OFF: Literal["off"] = "off"


class ThresholdOverride(_Record):
    """Numbers that replace a threshold's (or its class's) for this subject; unset ones are
    the class's."""

    messages: int | None = Field(None, ge=1, le=MAX_THRESHOLD_COUNT)
    spams: int | None = Field(None, ge=1, le=MAX_THRESHOLD_COUNT)
    flagged_units: int | None = Field(None, ge=1, le=MAX_THRESHOLD_COUNT)

    @model_validator(mode="after")
    def _something(self) -> ThresholdOverride:
        if self.messages is None and self.spams is None and self.flagged_units is None:
            raise PydanticCustomError("override", "an override sets messages, spams or "
                                                  "flagged_units (or is \"off\")", {})
        return self


Override = ThresholdOverride | Literal["off"]


class SubjectSettings(_Record):
    """The settings of one subject (the record's value; its key is ``subject``)."""

    schema_version: Literal[1] = 1
    subject: str = Field(min_length=3, max_length=600,
                         description="type:value, in the one spelling of actions")
    subject_class: ClassName | None = Field(
        None, alias="class", description="its customer class; none: the config's default")
    overrides: dict[ThresholdName, Override] = Field(
        default_factory=dict, max_length=MAX_OVERRIDES,
        description='per threshold name: numbers replacing the class\'s, or "off"')
    exempt: bool = Field(False, description="never counted, never acted on (see README)")
    actor: str = Field(min_length=1, max_length=MAX_NAME, description="who set it")
    reason: str = Field(min_length=1, max_length=MAX_TEXT)
    at: EventTime = Field(description="when it was set; the worker applies it from this "
                                      "event time on")

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @field_validator("subject")
    @classmethod
    def _canonical(cls, value: str) -> str:
        try:
            return subject_key(*parse_subject(value))
        except ValueError as exc:
            raise PydanticCustomError("subject", "{problem}", {"problem": str(exc)}) from None

    @property
    def key(self) -> str:
        return self.subject

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()

    def describe(self) -> str:
        """One line for people: class, overrides, exemption."""
        parts = [f"class {self.subject_class or '(default)'}"]
        for name, override in sorted(self.overrides.items()):
            parts.append(f"{name} {describe_override(override)}")
        if self.exempt:
            parts.append("exempt")
        return ", ".join(parts)


def describe_override(override: Override) -> str:
    if override == OFF:
        return OFF
    assert isinstance(override, ThresholdOverride)
    return " ".join(f"{field}={value}" for field, value in
                    override.model_dump(exclude_none=True).items())


# On a tombstone (which has no value to say it): who removed the settings, and why.
ACTOR_HEADER = "floodgate-actor"
REASON_HEADER = "floodgate-reason"


@dataclass(frozen=True)
class SettingsChange:
    """One record of the topic as an audit trail reads it: settings set, or removed."""

    subject: str
    record: SubjectSettings | None  # None: removed (a tombstone)
    actor: str
    reason: str
    ts: datetime

    @classmethod
    def of(cls, key: bytes | None, value: bytes | None, headers: dict[str, bytes],
           timestamp_ms: int) -> SettingsChange:
        """Raises ValueError (ValidationError) for a record that is not one."""
        if value is not None:
            record = SubjectSettings.model_validate_json(value)
            return cls(record.subject, record, record.actor, record.reason, record.at)
        subject = (key or b"").decode("utf-8", "replace")
        if ":" not in subject:
            raise ValueError(f"a removal needs a subject key; got {subject[:80]!r}")
        who = headers.get(ACTOR_HEADER, b"").decode("utf-8", "replace")[:MAX_NAME]
        why = headers.get(REASON_HEADER, b"").decode("utf-8", "replace")[:MAX_TEXT]
        return cls(subject[:600], None, who or "unknown", why or "removed",
                   datetime.fromtimestamp(max(timestamp_ms, 0) / 1000, UTC))

    @property
    def summary(self) -> str:
        return self.record.describe() if self.record is not None else "removed"
