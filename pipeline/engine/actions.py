"""ActionEvents the engine emits: fired, expired and lifted, with deterministic ids.

An action id is a UUIDv5 of what defines the firing (threshold, subject, time),
so replaying the same events after a crash republishes the same ids, and
consumers can drop the repeats.
"""

from __future__ import annotations

import heapq
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from schemas.durations import MAX_DURATION, parse_duration
from schemas.events import ActionEvent, Evidence
from schemas.thresholds import Threshold
from schemas.time_ms import from_ms, span_ms, to_ms
from schemas.vocabulary import ActionKind, ActionState, Origin, SubjectType, ThresholdMode

ACTION_NAMESPACE = uuid.UUID("5f0c1f8e-3a59-4e2b-9d0b-6c1f9f7d2a10")


def action_id(threshold: str, subject_type: SubjectType, subject: str, triggered_ms: int) -> str:
    name = "\x1f".join((threshold, subject_type.value, subject, str(triggered_ms)))
    return str(uuid.uuid5(ACTION_NAMESPACE, name))


def fired(threshold: Threshold, subject_type: SubjectType, subject: str, triggered_ms: int,
          expires_ms: int, evidence: Evidence, action: ActionKind | None = None) -> ActionEvent:
    """The threshold's action (or an escalation step's ``action``) as it starts."""
    triggered_at = from_ms(triggered_ms)
    return ActionEvent(
        action_id=action_id(threshold.name, subject_type, subject, triggered_ms),
        ts=triggered_at,
        subject_type=subject_type,
        subject=subject,
        action=action or threshold.action,
        threshold=threshold.name,
        state=ActionState.ACTIVE,
        origin=Origin.AUTO,
        triggered_at=triggered_at,
        expires_at=from_ms(expires_ms),
        evidence=evidence,
        enforced=threshold.mode is ThresholdMode.ENFORCE,
    )


def added(subject_type: SubjectType, subject: str, action: ActionKind, at_ms: int,
          duration_ms: int, actor: str | None, reason: str | None) -> ActionEvent:
    """An operator's own action on a subject (``actions add``, the console), from ``at_ms``."""
    return ActionEvent(
        action_id=str(uuid.uuid4()), ts=from_ms(at_ms), subject_type=subject_type,
        subject=subject, action=action, threshold=None, state=ActionState.ACTIVE,
        origin=Origin.MANUAL, triggered_at=from_ms(at_ms), expires_at=from_ms(at_ms + duration_ms),
        actor=actor, reason=reason)


def manual_duration_ms(text: str) -> int:
    """How long an operator's action lasts (``30m``, ``1h``, ``2d``); ValueError saying what
    is accepted."""
    try:
        duration: timedelta | None = parse_duration(text)
    except OverflowError:
        duration = None  # beyond what a timedelta holds
    except ValueError:
        raise ValueError(f'"{text}" is not a duration (e.g. 30m, 1h, 2d)') from None
    if duration is None or not timedelta(0) < duration <= MAX_DURATION:
        raise ValueError("a duration must be longer than 0 and at most 3650d")
    return span_ms(duration)


def expired(action: ActionEvent) -> ActionEvent:
    return action.model_copy(update={"state": ActionState.EXPIRED, "ts": action.expires_at})


def lifted(action: ActionEvent, at_ms: int, actor: str | None, reason: str | None,
           reset: bool = False) -> ActionEvent:
    """The lift of ``action`` by an operator; ``reset``: its escalation ladder starts again."""
    return action.model_copy(update={
        "state": ActionState.LIFTED, "ts": from_ms(at_ms), "actor": actor, "reason": reason,
        "reset": reset,
    })


@dataclass(order=True)
class _Due:
    expires_ms: int
    seq: int
    action: ActionEvent = field(compare=False)


class ExpiryQueue:
    """Active actions in expiry order, to publish their ``expired`` state on time."""

    def __init__(self) -> None:
        self._heap: list[_Due] = []
        self._seq = 0
        self._gone: set[str] = set()

    def push(self, action: ActionEvent) -> None:
        self._seq += 1
        heapq.heappush(self._heap, _Due(to_ms(action.expires_at), self._seq, action))

    def forget(self, action_id: str) -> None:
        """Drop an action that ended otherwise (lifted): it will not expire."""
        self._gone.add(action_id)

    def due(self, now_ms: int) -> list[ActionEvent]:
        """The ``expired`` events of every action whose end is at or before ``now_ms``."""
        out = []
        while self._heap and self._heap[0].expires_ms <= now_ms:
            action = heapq.heappop(self._heap).action
            if action.action_id in self._gone:
                self._gone.discard(action.action_id)
                continue
            out.append(expired(action))
        return out

    def __len__(self) -> int:
        return len(self._heap) - len(self._gone)
