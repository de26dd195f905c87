"""Offline replay: run recorded MailEvents (and DeliveryEvents) through the engine and
collect its actions.

This is how an operator tries thresholds on history before enforcing them.
Time is the events' own: an action expires when the replayed events pass its
end, exactly as it would have live. Subject settings (``settings``: classes,
overrides, exemptions, as a customer database exports them) apply from the
start, as the live system had them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.engine.actions import ExpiryQueue
from pipeline.engine.counting import CountedMail, unit_id
from pipeline.engine.customisation import Customisation
from pipeline.engine.dedup import RecentEventIds
from pipeline.engine.evaluator import Pruned, Subject, ThresholdEngine
from pipeline.engine.subject_state import SubjectState
from schemas.config import FloodgateConfig
from schemas.events import ActionEvent, DeliveryEvent, MailEvent
from schemas.time_ms import span_ms, to_ms

PRUNE_EVERY = 100_000  # events between sweeps of idle subjects


@dataclass
class ReplayStats:
    events: int = 0
    duplicates: int = 0
    counted: int = 0
    actions: int = 0
    subjects: int = 0


@dataclass
class Replay:
    """Feeds events in order and returns the actions each one causes, in time order."""

    config: FloodgateConfig
    settings: dict[str, Customisation] = field(default_factory=dict)  # subject key -> settings
    stats: ReplayStats = field(default_factory=ReplayStats)

    def __post_init__(self) -> None:
        self._engine = ThresholdEngine(self.config)
        self._states: dict[Subject, SubjectState] = {}
        self._expiring = ExpiryQueue()
        longest = max((span_ms(t.window) for t in self.config.thresholds), default=0)
        self._seen = RecentEventIds(horizon_ms=max(longest, 3_600_000))
        self._now = 0

    def feed(self, event: MailEvent | DeliveryEvent) -> list[ActionEvent]:
        ts = to_ms(event.ts)
        self.stats.events += 1
        if not self._seen.first_time(unit_id(event), ts):
            self.stats.duplicates += 1
            return []
        self._now = max(self._now, ts)
        out = self._expiring.due(self._now)
        mail = CountedMail.of(event)
        subjects = self._engine.subjects(event, mail)
        if subjects:
            self.stats.counted += 1
        for subject in subjects:
            state = self._states.get(subject)
            if state is None:
                state = self._states[subject] = SubjectState()
            for action in self._engine.apply(subject, state, mail, self.settings.get(subject.key)):
                self._expiring.push(action)
                out.append(action)
        if self.stats.events % PRUNE_EVERY == 0:
            self._prune()
        self.stats.actions += len(out)
        self.stats.subjects = max(self.stats.subjects, len(self._states))
        return sorted(out, key=lambda a: a.ts)

    def _prune(self) -> None:
        for subject in [s for s, st in self._states.items()
                        if self._engine.prune(st, self._now) is Pruned.GONE]:
            del self._states[subject]


def replay(config: FloodgateConfig, events: Iterable[MailEvent | DeliveryEvent],
           settings: dict[str, Customisation] | None = None) -> list[ActionEvent]:
    """Every action the events cause, in time order (expiries up to the last event's time)."""
    run = Replay(config, settings or {})
    actions = [action for event in events for action in run.feed(event)]
    return sorted(actions, key=lambda a: a.ts)
