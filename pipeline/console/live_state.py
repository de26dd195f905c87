"""What the console knows, kept current from the topics: the actions in force, the top
subjects, the policy answers and the subjects' settings; and the operator's changes,
published as action and settings records.

Four background readers feed it (the action and settings topics from their
start, like every policy service; mail and policy events from an hour back)
and the HTTP handlers read it; one lock guards the summaries.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer
from pydantic import ValidationError

from connectors.http.console_server import OperatorError
from connectors.kafka.action_records import publish_actions
from connectors.kafka.client_config import producer_config
from connectors.kafka.recent_records import RecentRecords
from connectors.kafka.settings_records import SettingsChange, SettingsFeed, publish_settings
from connectors.postfix_policy.action_feed import ActionFeed
from connectors.postfix_policy.counting_source import mail_event_from_policy
from pipeline.audit import who_and_why
from pipeline.console.api_views import (
    actions_document,
    answers_document,
    near_document,
    top_document,
)
from pipeline.console.near_limits import Nearness, nearest
from pipeline.console.policy_answers import PolicyAnswers
from pipeline.console.settings_index import SettingsIndex
from pipeline.console.top_subjects import TopSubjects
from pipeline.engine.actions import added, lifted, manual_duration_ms
from pipeline.engine.counting import Exemptions
from pipeline.engine.customisation import Customisation
from pipeline.engine.dedup import RecentEventIds
from pipeline.engine.enforcement import ActiveActions
from pipeline.settings_text import (
    effective_lines,
    parse_overrides,
    record_problem,
    subject_limits,
)
from schemas.config import FloodgateConfig
from schemas.direction import DirectionRules
from schemas.events import ActionEvent, MailEvent, PolicyEvent
from schemas.subject_settings import (
    ACTOR_HEADER,
    REASON_HEADER,
    SubjectSettings,
    describe_override,
)
from schemas.subjects import parse_subject, subject_key
from schemas.thresholds import Threshold
from schemas.time_ms import to_ms, wall_ms
from schemas.validation import describe_validation_error
from schemas.vocabulary import ActionKind, SubjectType

HISTORY_MS = 3_600_000  # the longest Top view
# With worker.count_policy_events, a message the log and the policy service both report
# is counted once if its two reports come within this many messages of each other.
SEEN_IDS = 50_000




class ConsoleState:
    def __init__(self, config: FloodgateConfig) -> None:
        self.config = config
        delimiters = config.addresses.extension_delimiters
        self._lock = threading.Lock()
        self._view = ActiveActions()
        self._top = TopSubjects(config.console.top_capacity,
                                Exemptions(config.exempt, delimiters), delimiters,
                                next((t.prefix for t in config.thresholds if t.prefix), None))
        self._answers = PolicyAnswers()
        self._seen = RecentEventIds(HISTORY_MS, limit=SEEN_IDS)
        self._directions = DirectionRules(config.networks)
        self._producer: Producer | None = None
        since = lambda: wall_ms() - HISTORY_MS  # noqa: E731
        self.action_feed = ActionFeed(config.kafka, config.topics.actions, self._take_action)
        self.settings = SettingsIndex()
        self.settings_feed = SettingsFeed(config.kafka, config.topics.subject_settings,
                                          self.settings.apply)
        self.readers = [
            RecentRecords(config.kafka, config.topics.mail_events, since, self._take_mail),
            RecentRecords(config.kafka, config.topics.policy_events, since, self._take_policy),
        ]

    def start(self) -> None:
        self.action_feed.start()
        self.settings_feed.start()
        for reader in self.readers:
            reader.start()

    def stop(self) -> None:
        self.action_feed.stop()
        self.settings_feed.stop()
        for reader in self.readers:
            reader.stop()
        if self._producer is not None:
            self._producer.flush(5)
        self.settings.close()

    def reconfigure(self, config: FloodgateConfig) -> None:
        """The reloaded config's exemptions, networks, classes and thresholds, from now on."""
        delimiters = config.addresses.extension_delimiters
        with self._lock:
            self.config = config
            self._directions = DirectionRules(config.networks)
            self._top.exemptions = Exemptions(config.exempt, delimiters)

    @property
    def ready(self) -> bool:
        return self.action_feed.caught_up.is_set() and all(r.started.is_set() for r in self.readers)

    # -- feeding ------------------------------------------------------------

    def _take_action(self, event: ActionEvent | None, _partition: int, _offset: int) -> None:
        if event is not None:
            with self._lock:
                self._view.apply(event)

    def _take_mail(self, value: bytes, _record_ms: int) -> None:
        event = MailEvent.model_validate_json(value)
        self._count(event)

    def _take_policy(self, value: bytes, _record_ms: int) -> None:
        event = PolicyEvent.model_validate_json(value)
        mail = (mail_event_from_policy(event, self._directions)
                if self.config.worker.count_policy_events else None)
        with self._lock:
            self._answers.add(event.answer, to_ms(event.ts), wall_ms())
        if mail is not None:
            self._count(mail)

    def _count(self, event: MailEvent) -> None:
        with self._lock:
            ts_ms = to_ms(event.ts)
            if (self.config.worker.count_policy_events
                    and not self._seen.first_time(event.event_id, ts_ms)):
                return
            self._top.add_event(event, ts_ms, wall_ms())

    # -- reading ------------------------------------------------------------

    def actions(self, query: str) -> dict[str, Any]:
        now = wall_ms()
        with self._lock:
            self._view.expire(now)
            in_force = self._view.in_force(now)
        document = actions_document(in_force, query, now)
        for row in document["actions"]:
            row["settings"] = self._settings_row(row["subject"])
        return document

    def top(self, view_s: int) -> dict[str, Any]:
        """The heaviest subjects over ``view_s``, each flagged by its nearness to a limit."""
        now = wall_ms()
        with self._lock:
            self._top.advance(now)
            nearness = {n.subject: n for n in self._nearest(now)}
            document = top_document(self._top, view_s, now, nearness=nearness)
        for part in document["dimensions"].values():
            for row in part["rows"]:
                row["settings"] = self._settings_row(row["subject"])
        return document

    def near(self) -> dict[str, Any]:
        """The subjects nearest a threshold's limit (the console's first view)."""
        now = wall_ms()
        with self._lock:
            self._top.advance(now)
            document = near_document(self._nearest(now), now)
        for row in document["rows"]:
            row["settings"] = self._settings_row(row["subject"])
        return document

    def _nearest(self, now: int) -> list[Nearness]:
        config = self.config
        known: dict[tuple[str, SubjectType], dict[str, tuple[int, int] | None]] = {}

        def limits_of(key: str, threshold: Threshold) -> tuple[int, int] | None:
            mine = known.get((key, threshold.key))
            if mine is None:
                record = self.settings.get(key)
                custom = Customisation.of(record) if record is not None else None
                mine = known[(key, threshold.key)] = {
                    limit.threshold.name: limit.limits
                    for limit in subject_limits(config, threshold.key, custom)}
            return mine.get(threshold.name)
        return nearest(self._top, config.thresholds, limits_of, now)

    # -- subject settings ---------------------------------------------------

    def _settings_row(self, key: str) -> dict[str, Any] | None:
        """A subject's class and overrides as the tables show them; None: no settings."""
        record = self.settings.get(key)
        return None if record is None else settings_row(record)

    def subject_settings(self, subject: str) -> dict[str, Any]:
        key = subject_key(*self._subject(subject))
        record = self.settings.get(key)
        return {"subject": key, "default_class": self.config.classes.default,
                "classes": self.config.classes.known,
                "settings": None if record is None else settings_row(record),
                "effective": effective_lines(self.config, key,
                                             Customisation.of(record) if record else None)}

    def set_settings(self, subject: str, subject_class: str, overrides: str, off: str,
                     exempt: bool, actor: str, reason: str) -> SubjectSettings:
        key = subject_key(*self._subject(subject))
        actor, reason = _who_and_why(actor, reason)
        try:
            record = SubjectSettings(
                subject=key, subject_class=subject_class.strip() or None,
                overrides=parse_overrides(_items(overrides), _items(off)), exempt=exempt,
                actor=actor, reason=reason, at=datetime.now(UTC))
        except ValidationError as exc:
            raise OperatorError(describe_validation_error(exc)) from None
        except ValueError as exc:
            raise OperatorError(str(exc)) from None
        problem = record_problem(self.config, record)
        if problem:
            raise OperatorError(problem)
        self._publish_settings([(key, record)], None)
        self.settings.apply(key, record.to_json())  # shown at once; the feed brings it again
        return record

    def unset_settings(self, subject: str, actor: str, reason: str) -> str:
        key = subject_key(*self._subject(subject))
        actor, reason = _who_and_why(actor, reason)
        self._publish_settings([(key, None)], {ACTOR_HEADER: actor, REASON_HEADER: reason})
        self.settings.apply(key, None)
        return key

    def _publish_settings(self, changes: list[SettingsChange], headers: dict[str, str] | None
                          ) -> None:
        if self._producer is None:
            self._producer = Producer(producer_config(self.config.kafka))
        publish_settings(self._producer, self.config.topics.subject_settings, changes,
                         timeout_s=30, headers=headers)

    def answers(self) -> dict[str, Any]:
        now = wall_ms()
        with self._lock:
            self._answers.advance(now)
            return answers_document(self._answers, now)

    def status(self) -> dict[str, Any]:
        with self._lock:
            counters = self._top.counters()
            counted, too_old = self._top.counted, self._top.too_old
        return {"ready": self.ready, "top_counters": counters, "mail_counted": counted,
                "mail_too_old": too_old,
                "records": {r.topic: r.records for r in self.readers},
                "bad_records": sum(r.bad_records for r in self.readers)
                + self.action_feed.bad_records}

    # -- changing -----------------------------------------------------------

    def lift(self, subject: str, actor: str, reason: str, reset: bool) -> list[ActionEvent]:
        """Lift every action in force on ``subject``; the lift records, once Kafka has them."""
        kind, value = self._subject(subject)
        actor, reason = _who_and_why(actor, reason)
        now = wall_ms()
        with self._lock:
            active = self._view.in_force(now, subject_key(kind, value))
        if not active:
            raise OperatorError(f"no action in force on {subject_key(kind, value)}")
        return self._publish([lifted(a, now, actor, reason, reset) for a in active])

    def add(self, subject: str, action: str, duration: str, actor: str, reason: str) -> ActionEvent:
        kind, value = self._subject(subject)
        try:
            kind_of_action = ActionKind(action)
        except ValueError:
            raise OperatorError(f"action must be one of {', '.join(k.value for k in ActionKind)}"
                                ) from None
        try:
            duration_ms = manual_duration_ms(duration)
        except ValueError as exc:
            raise OperatorError(str(exc)) from None
        actor, reason = _who_and_why(actor, reason)
        try:
            record = added(kind, value, kind_of_action, wall_ms(), duration_ms, actor, reason)
        except ValidationError as exc:  # e.g. a subject its normal spelling makes too long
            raise OperatorError(describe_validation_error(exc)) from None
        return self._publish([record])[0]

    def _subject(self, text: str) -> tuple[SubjectType, str]:
        try:
            return parse_subject(text, self.config.addresses.extension_delimiters)
        except ValueError as exc:
            raise OperatorError(str(exc)) from None

    def _publish(self, actions: list[ActionEvent]) -> list[ActionEvent]:
        """Publish, wait for Kafka's acknowledgement, then show the change at once."""
        if self._producer is None:
            self._producer = Producer(producer_config(self.config.kafka))
        publish_actions(self._producer, self.config.topics.actions, actions)
        with self._lock:  # seen at once; the feed brings the same records again, harmlessly
            for action in actions:
                self._view.apply(action)
        return actions


def settings_row(record: SubjectSettings) -> dict[str, Any]:
    return {"class": record.subject_class, "exempt": record.exempt,
            "overrides": {name: describe_override(o) for name, o in record.overrides.items()},
            "actor": record.actor, "reason": record.reason,
            "at": record.at.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _items(text: str) -> list[str]:
    """``"burst.messages=600, x.spams=2"`` -> its items."""
    return [item.strip() for item in text.replace(";", ",").split(",") if item.strip()]


def _who_and_why(actor: str, reason: str) -> tuple[str, str]:
    try:
        return who_and_why(actor, reason)
    except ValueError as exc:
        raise OperatorError(str(exc)) from None
