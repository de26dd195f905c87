"""Apply one message to one subject's state and say which thresholds fire.

Semantics (the brute-force reference in the tests states them the same way):
for a threshold and a subject, T is the newest time of any message counted so
far. At each counted message the window is (T - window, T]; for messages in
time order T is the message's own time, so the window is (t - window, t]. A
late message still counts when it falls inside the subject's present window,
and the decision is taken for that present, since that is when enforcement
happens. The threshold fires when units >= messages and flagged units (spam,
or the threshold's ``flagged``) >= its flagged limit, and T is not before the
end of its last action; the new action lasts from T to T + duration. A
``count: deliveries`` threshold counts delivery attempts and nothing else;
the others count messages and never attempts. A recipient refused as unknown
(X.1.1) is a flagged unit for ``flagged: unknown_recipient`` thresholds only;
every other threshold ignores refused mail that was not refused as spam.

Customer classes and overrides (``Customisation``, from the subject's settings
record): a subject is in its record's class, or the config's default one; a
threshold scoped to classes counts only subjects of those; the numbers are the
class's (``per_class``), else the threshold's, with the subject's own overrides
before both; an override ``off``, or an exemption, means the threshold does not
count the subject at all (its window is left as it was). A change applies from
the subject's next unit on; the window keeps what it counted. The window keeps
the newest units reaching the highest number any class or the subject's
override gives (the cap), so a change of class is exact; an override raised
above that cap mid-window starts from the units kept under the old cap: the
subject is counted low, never high, for at most one window.

Client networks (a ``client_ip`` threshold with ``prefix``): the subject is
the network of the prefix's length holding the address (``client_net``), the
address itself where the length is the whole address; thresholds count under
the subject their own prefix gives, so a /48 and a /64 threshold keep apart.

Baselines (a threshold with ``baseline``): each subject against its own
normal, as ``baseline.Learning`` learns it; once learnt, it replaces the
messages number (the flagged limit applies as configured).

Escalation: when the threshold has steps, a firing at T is the subject's Nth
within a step's period when N - 1 earlier firings of the threshold fall in
(T - within, T]; the last step (in config order) with N >= after gives the
action and duration. Only the newest ``max(after) - 1`` firings inside the
longest period are kept: an older one can never change N's answer.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

from pipeline.engine.actions import fired
from pipeline.engine.baseline import Learning
from pipeline.engine.counting import (
    CountedMail,
    Exemptions,
    Unit,
    in_scope,
    is_countable,
    key_types,
    subject_of,
    unit_flags,
    units,
)
from pipeline.engine.customisation import Customisation
from pipeline.engine.subject_state import SubjectState, ThresholdState
from pipeline.engine.window import TIME_TYPE
from schemas.addresses import WHOLE_ADDRESS, network_shape, whole_length
from schemas.config import FloodgateConfig
from schemas.events import ActionEvent, DeliveryEvent, Escalation, Evidence, MailEvent
from schemas.subjects import SENDER_KEYS, client_subject, subject_key
from schemas.thresholds import Threshold, with_numbers
from schemas.time_ms import from_ms, span_ms
from schemas.vocabulary import FLAG_BITS, ActionKind, CountMode, SubjectType


class Subject(NamedTuple):  # a tuple: built for every unit counted, cheaply
    type: SubjectType
    value: str

    @property
    def key(self) -> str:
        """The Kafka and table key: ``type:value``."""
        return subject_key(self.type, self.value)


@dataclass(frozen=True, slots=True)
class _Step:
    after: int
    within_ms: int
    action: ActionKind
    duration_ms: int


Limits = tuple[int, int]  # (messages, flagged limit) for one subject
_SCOPES_KEPT = 4_096  # scope answers (direction, domain, unit kind) a _Scope remembers


class _Scope:
    """Whether any of some thresholds counts a unit of a kind (its flags), direction and
    domain (``in_scope``), remembered: every unit asks, and the answers are few."""

    __slots__ = ("_answers", "_by_domain", "_thresholds")

    def __init__(self, thresholds: list[Threshold]) -> None:
        self._thresholds = thresholds
        self._by_domain = any(t.sender_domains for t in thresholds)
        self._answers: dict[tuple[str, str | None, int], bool] = {}

    def counts(self, direction: str, domain: str | None, flags: int) -> bool:
        asked = (direction, domain if self._by_domain else None, flags)
        answer = self._answers.get(asked)
        if answer is None:
            if len(self._answers) >= _SCOPES_KEPT:
                self._answers.clear()
            answer = self._answers[asked] = any(
                in_scope(t, direction, domain, flags) for t in self._thresholds)
        return answer


class Pruned(Enum):
    """What ``ThresholdEngine.prune`` did to a subject's state."""

    KEPT = 0  # nothing to drop
    CHANGED = 1  # some records dropped or cut down to their baseline: write it back
    GONE = 2  # nothing left: delete the subject


@dataclass(frozen=True, slots=True)
class _Compiled:
    threshold: Threshold
    window_ms: int
    duration_ms: int
    flag_bit: int  # the FLAG_BITS bit the second limit counts
    default_limits: Limits | None  # the default class's; None: it does not count that class
    class_limits: dict[str, Limits | None]  # every known class's (None: not counted)
    volume_cap: int  # kept units of all mail: enough for every class's limits and evidence
    spam_cap: int  # kept flagged units: the highest flagged limit of any class
    steps: tuple[_Step, ...]
    history_ms: int  # the longest step period: how long a firing may count
    history_len: int  # earlier firings the highest step needs
    learning: Learning | None  # a baseline threshold's
    scope: _Scope = field(compare=False)  # which units it counts, remembered

    @classmethod
    def of(cls, threshold: Threshold, classes: list[str]) -> _Compiled:
        steps = tuple(_Step(s.after, span_ms(s.within), s.action, span_ms(s.duration))
                      for s in threshold.escalate)
        limits = {c: threshold.limits_for(c) if threshold.counts_class(c) else None
                  for c in classes}
        numbers = [n for pair in limits.values() if pair for n in pair]
        spams = [pair[1] for pair in limits.values() if pair]
        return cls(threshold, span_ms(threshold.window), span_ms(threshold.duration),
                   FLAG_BITS[threshold.flagged], limits[classes[0]], limits,
                   max([*numbers, threshold.messages, threshold.flagged_limit, 1]),
                   max([*spams, threshold.flagged_limit]), steps,
                   max((s.within_ms for s in steps), default=0),
                   max((s.after for s in steps), default=1) - 1,
                   Learning.of(threshold), _Scope([threshold]))

    def limits(self, custom: Customisation | None) -> Limits | None:
        """The subject's (messages, flagged limit); None when the threshold does not count it."""
        if custom is None:
            return self.default_limits
        name = custom.subject_class
        limits = self.class_limits.get(name, self.default_limits) if name else \
            self.default_limits
        if limits is None or not custom.overrides:
            return limits
        if self.threshold.name not in custom.overrides:
            return limits
        numbers = custom.overrides[self.threshold.name]
        if numbers is None:
            return None  # off
        limits = with_numbers(self.threshold, limits, *numbers)
        return limits if limits != (0, 0) else None  # never "fire on every unit"


class ThresholdEngine:
    """The config's thresholds, ready to apply to events. Holds no per-subject state."""

    def __init__(self, config: FloodgateConfig) -> None:
        self._delimiters = config.addresses.extension_delimiters
        self._exemptions = Exemptions(config.exempt, self._delimiters)
        self.classes = config.classes.known  # the default first
        self._known_classes = frozenset(self.classes)
        self._compiled = {t.name: _Compiled.of(t, self.classes) for t in config.thresholds}
        self._dimensions = _dimensions(self._compiled.values())
        self._by_key: dict[SubjectType, list[_Compiled]] = {}
        # client_ip thresholds by (IP version, prefix length): the full length counts under
        # the address, a shorter one under the network
        self._by_length: dict[tuple[int, int], list[_Compiled]] = {}
        for compiled in self._compiled.values():
            self._by_key.setdefault(compiled.threshold.key, []).append(compiled)
            if compiled.threshold.key is SubjectType.CLIENT_IP:
                ipv4, ipv6 = compiled.threshold.prefix_lengths
                for shape in ((4, ipv4), (6, ipv6)):
                    self._by_length.setdefault(shape, []).append(compiled)
        self.key_types = key_types(config.thresholds)
        self.counts_deliveries = any(t.count is CountMode.DELIVERIES for t in config.thresholds)

    def subjects(self, event: Unit, mail: CountedMail | None = None) -> list[Subject]:
        """The subjects whose state this message or delivery attempt may change (one per
        key type). ``mail``: the event's ``CountedMail`` when the caller already built it."""
        return [Subject(kind, value) for kind, value in self.named(event, mail)]

    def subject_keys(self, event: Unit, mail: CountedMail | None = None) -> list[str]:
        """``subjects``' keys (``type:value``), as the worker routes them."""
        return [subject_key(kind, value) for kind, value in self.named(event, mail)]

    def named(self, event: Unit, mail: CountedMail | None = None
              ) -> list[tuple[SubjectType, str]]:
        """``subjects`` as (type, value) pairs: the worker's router runs this for every
        message, so it builds nothing it does not return."""
        flags = unit_flags(event) if mail is None else mail.flags
        if not is_countable(event, self._exemptions, flags):
            return []
        found: list[tuple[SubjectType, str]] = []
        domain, direction = event.sender_domain, event.direction
        sender_exempt = self._exemptions.exempts_sender(event.sender, domain)
        for dimension in self._dimensions:
            key = dimension.key
            if sender_exempt and key in SENDER_KEYS:
                continue
            value = subject_of(key, event, self._delimiters)
            if not value or not dimension.scope.counts(direction, domain, flags):
                continue
            if key is SubjectType.CLIENT_IP:
                subject = (key, value) if dimension.whole else \
                    client_subject(value, dimension.ipv4, dimension.ipv6)
                if subject in found:  # an address or /24 that two prefixes share
                    continue
                found.append(subject)
            else:
                found.append((key, value))
        return found

    def _counting(self, subject: Subject) -> list[_Compiled]:
        """The thresholds that count under ``subject``: for a client address or network,
        those whose prefix length for its IP version is the subject's."""
        if subject.type is SubjectType.CLIENT_IP:
            version = 4 if "." in subject.value else 6
            return self._by_length.get((version, whole_length(version)), [])
        if subject.type is SubjectType.CLIENT_NET:
            try:
                version, length = network_shape(subject.value)
            except ValueError:
                return []  # not a network any prefix names (a foreign record's key)
            if length >= whole_length(version):
                return []  # a whole address is a client_ip subject, never a network
            return self._by_length.get((version, length), [])
        return self._by_key.get(subject.type, [])

    def observe(self, subject: Subject, state: SubjectState, event: MailEvent | DeliveryEvent,
                custom: Customisation | None = None) -> list[ActionEvent]:
        """Count ``event`` under ``subject`` (from ``subjects``), updating ``state`` in place.
        ``custom``: the subject's settings, if it has any.

        Returns the actions that fire; at most one per threshold.
        """
        return self.apply(subject, state, CountedMail.of(event), custom)

    def apply(self, subject: Subject, state: SubjectState, mail: CountedMail,
              custom: Customisation | None = None) -> list[ActionEvent]:
        """``observe`` for a unit already reduced to what counting needs."""
        subject_class = None
        if custom is not None:
            if custom.exempt:
                return []
            if custom.subject_class in self._known_classes:
                subject_class = custom.subject_class
        actions = []
        kind = subject.type
        counting = self._by_key.get(kind, ()) if kind not in _ADDRESS_KEYS else \
            self._counting(subject)
        records = state.thresholds
        for compiled in counting:
            if not compiled.scope.counts(mail.direction, mail.sender_domain, mail.flags):
                continue
            limits = compiled.default_limits if custom is None else compiled.limits(custom)
            if limits is None:
                continue
            threshold = compiled.threshold
            record = records.get(threshold.name)
            if record is None:
                record = records[threshold.name] = ThresholdState()
            action = _count(compiled, record, subject, mail, units(threshold, mail), limits,
                            subject_class)
            if action is not None:
                actions.append(action)
        return actions

    def lift(self, state: SubjectState, threshold: str, reset: bool = False) -> None:
        """Forget a threshold's window and action after an operator lifted it.

        Counting starts afresh, so a lifted subject is not hit again at once by
        the burst that caused the action. Its past firings stay (a lifted repeat
        offender still climbs the escalation ladder) unless ``reset``.
        """
        record = state.thresholds.get(threshold)
        if record is not None:  # what a baseline learnt stays: the subject's normal
            firings = array(TIME_TYPE) if reset else record.firings
            state.thresholds[threshold] = ThresholdState(now=record.now, firings=firings,
                                                         baseline=record.baseline)

    def prune(self, state: SubjectState, now_ms: int) -> Pruned:
        """Drop idle threshold records (and those of removed thresholds); of an idle
        baseline threshold's, keep only what it learnt, while it can still apply."""
        changed = False
        for name in list(state.thresholds):
            compiled = self._compiled.get(name)
            record = state.thresholds[name]
            if compiled is not None and not record.is_idle(
                    now_ms, compiled.window_ms, compiled.history_ms):
                continue
            learning = compiled.learning if compiled is not None else None
            learnt = record.baseline
            if learning is not None and learnt is not None and compiled is not None and \
                    now_ms // compiled.window_ms - learnt.bucket <= learning.buckets:
                if record != ThresholdState(baseline=learnt):
                    state.thresholds[name] = ThresholdState(baseline=learnt)
                    changed = True
                continue
            del state.thresholds[name]
            changed = True
        if not state.thresholds:
            return Pruned.GONE
        return Pruned.CHANGED if changed else Pruned.KEPT


_ADDRESS_KEYS = frozenset({SubjectType.CLIENT_IP, SubjectType.CLIENT_NET})
class _Dimension:
    """The thresholds whose subject one thing names: a key and, for client addresses,
    prefix lengths; and which units any of them counts."""

    __slots__ = ("compiled", "ipv4", "ipv6", "key", "scope", "whole")

    def __init__(self, key: SubjectType, ipv4: int, ipv6: int,
                 compiled: list[_Compiled]) -> None:
        self.key, self.ipv4, self.ipv6, self.compiled = key, ipv4, ipv6, compiled
        self.whole = (ipv4, ipv6) == WHOLE_ADDRESS
        self.scope = _Scope([c.threshold for c in compiled])


def _dimensions(compiled: Iterable[_Compiled]) -> list[_Dimension]:
    """The thresholds grouped by what names their subject: the key and, for client
    addresses, the prefix lengths; in a fixed order."""
    groups: dict[tuple[SubjectType, int, int], list[_Compiled]] = {}
    for item in compiled:
        groups.setdefault((item.threshold.key, *item.threshold.prefix_lengths), []).append(item)
    order = list(SubjectType)
    return [_Dimension(key, ipv4, ipv6, items) for (key, ipv4, ipv6), items in
            sorted(groups.items(), key=lambda g: (order.index(g[0][0]), g[0][1], g[0][2]))]


def only_learnt(state: SubjectState) -> bool:
    """Nothing but baselines is left of the subject (an idle account's normal)."""
    return all(record == ThresholdState(baseline=record.baseline)
               for record in state.thresholds.values())


def _count(compiled: _Compiled, record: ThresholdState, subject: Subject, mail: CountedMail,
           weight: int, limits: Limits, subject_class: str | None) -> ActionEvent | None:
    threshold = compiled.threshold
    ts, flagged = mail.ts_ms, bool(mail.flags & compiled.flag_bit)
    learning, baseline = compiled.learning, None
    if learning is not None:  # every unit is history, a late one too
        record.baseline = learning.learn(record.baseline, ts // compiled.window_ms, weight)
        baseline = learning.normal(record.baseline)
        if baseline is not None:
            limits = (learning.limit(baseline), limits[1])
    now = max(record.now, ts)
    start = now - compiled.window_ms
    if ts <= start:
        return None  # older than the present window: it can never count again
    record.now = now
    messages, limit = limits
    record.volume.slide(start)
    record.volume.add(ts, weight, max(compiled.volume_cap, messages, limit),
                      extra=mail.recipients << 1 | flagged)
    spam_cap = max(compiled.spam_cap, limit)
    if spam_cap:  # the `spams` column holds the flagged units, whatever the flag
        record.spams.slide(start)
        if flagged:
            record.spams.add(ts, weight, spam_cap)
    if record.volume.total < messages or record.spams.total < limit or now < record.active_until:
        return None
    action, duration_ms, escalation = threshold.action, compiled.duration_ms, None
    if compiled.steps:
        escalation = _escalation(compiled, record.firings, now)
        if escalation is not None:
            step = compiled.steps[escalation.step - 1]
            action, duration_ms = step.action, step.duration_ms
        _remember_firing(compiled, record.firings, now)
    record.active_until = now + duration_ms
    return fired(threshold, subject.type, subject.value, now, record.active_until,
                 _evidence(compiled, record, start, now, limits, subject_class, escalation,
                           baseline), action)


def _escalation(compiled: _Compiled, firings: array[int], now: int) -> Escalation | None:
    """The last step whose count of firings within its period (this one included) reaches
    its ``after``; None when no step applies."""
    for number in range(len(compiled.steps), 0, -1):
        step = compiled.steps[number - 1]
        first = bisect_right(firings, now - step.within_ms)
        count = len(firings) - first + 1
        if count >= step.after:
            return Escalation(step=number, firing=count, within_s=step.within_ms / 1000,
                              first_at=from_ms(firings[first] if first < len(firings) else now))
    return None


def _remember_firing(compiled: _Compiled, firings: array[int], now: int) -> None:
    """Add ``now``; keep only the firings a later step can still count."""
    firings.append(now)  # ``now`` never goes back for a threshold record: order is kept
    stale = bisect_right(firings, now - compiled.history_ms)
    stale = max(stale, len(firings) - compiled.history_len)
    if stale > 0:
        del firings[:stale]


def _evidence(compiled: _Compiled, record: ThresholdState, start: int, now: int,
              limits: Limits, subject_class: str | None,
              escalation: Escalation | None = None, baseline: float | None = None) -> Evidence:
    extras = record.volume.extras
    spam_units = sum(w for w, x in zip(record.volume.weights, extras, strict=True) if x & 1)
    spams = max(record.spams.total, spam_units)
    return Evidence(
        window_start=from_ms(start),
        window_end=from_ms(now),
        # Each column keeps the newest units up to its cap: flagged units the volume's cap
        # passed over are still units of the window.
        messages=max(record.volume.total, spams),
        spams=spams,
        recipients=sum(x >> 1 for x in extras),
        count=compiled.threshold.count,
        limit_messages=limits[0],
        limit_spams=limits[1],
        subject_class=subject_class,
        flagged=compiled.threshold.flagged,
        escalation=escalation,
        baseline=None if baseline is None else round(baseline, 6),
    )
