"""Property tests: the bounded engine fires exactly where the brute-force reference does."""

from __future__ import annotations

import math
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.engine.customisation import Customisation
from pipeline.engine.evaluator import ThresholdEngine
from pipeline.engine.subject_state import Baseline, SubjectState, decode_state, encode_state
from schemas.config import Exempt, FloodgateConfig, SubjectClasses
from schemas.events import ActionEvent
from schemas.subject_settings import SubjectSettings, ThresholdOverride
from schemas.thresholds import (
    BaselineSettings,
    ClassNumbers,
    EscalationStep,
    PrefixLengths,
    Threshold,
)
from schemas.time_ms import span_ms as to_ms_span
from schemas.time_ms import to_ms
from tests.pipeline.engine.builders import T0, delivery, mail
from tests.pipeline.engine.reference import Changes, Unit, reference_firings

GRACE_MS = 2_000  # how far out of order events may arrive

limits = st.tuples(st.integers(0, 6), st.integers(0, 4)).filter(lambda ms: any(ms))
millis = st.one_of(st.sampled_from([1, 500, 1_000, 3_000]), st.integers(1, 12_000)) \
    .map(lambda ms: timedelta(milliseconds=ms))
# Ladders of up to 3 steps by increasing ``after``; periods from shorter than a window to
# most of the traffic, so that firings both fall out of them and pile up to the top step
ladders = st.lists(st.builds(
    EscalationStep, after=st.integers(2, 5),
    within=st.one_of(millis, st.sampled_from([20_000, 60_000]).map(
        lambda ms: timedelta(milliseconds=ms))),
    action=st.sampled_from(["defer", "block", "quarantine", "warn"]), duration=millis),
    max_size=3, unique_by=lambda step: step.after).map(lambda steps: sorted(
        steps, key=lambda step: step.after))
# What a threshold counts, and what its second limit counts.
kinds = st.sampled_from([("messages", "spam"), ("recipients", "spam"),
                         ("deliveries", "bounced"), ("deliveries", "remote_refused"),
                         ("recipients", "unknown_recipient")])


CLASSES = ["standard", "business", "bulk"]  # the first is the default


def _threshold(limit: tuple[int, int], kind: tuple[str, str],
               class_limits: dict[str, tuple[int, int]], prefix: PrefixLengths | None,
               learning: tuple[int, float, int] | None, **fields: object) -> Threshold:
    count, flagged = kind
    if fields["key"] == "client_ip":
        fields["prefix"] = prefix
    if learning is not None:  # (learning period in windows, factor, min_messages)
        window = fields["window"]
        assert isinstance(window, timedelta)
        fields["baseline"] = BaselineSettings(learn=window * learning[0], factor=learning[1],
                                              min_messages=learning[2])
    second = ({"spams": limit[1]} if flagged == "spam"
              else {"flagged": flagged, "flagged_units": limit[1] or None})
    per_class = {name: ClassNumbers(messages=m, **({"spams": f} if flagged == "spam" else
                                                   {"flagged_units": f or None}))
                 for name, (m, f) in class_limits.items()}
    return Threshold(messages=limit[0], count=count, per_class=per_class,  # type: ignore[arg-type]
                     **second, **fields)


thresholds = st.builds(
    _threshold,
    limit=limits,
    kind=kinds,
    name=st.just("x"),  # replaced by index below
    key=st.sampled_from(["sasl_username", "sender", "sender_domain", "client_ip"]),
    # each subject against its own normal: short learning periods, so that traffic both
    # learns and bursts past it (and falls silent long enough to start again)
    learning=st.one_of(st.none(), st.tuples(st.sampled_from([4, 5, 10]),
                                            st.sampled_from([1.5, 2.0, 3.0]),
                                            st.sampled_from([1, 2, 5]))),
    # client addresses counted per network: several thresholds with different lengths
    prefix=st.one_of(st.none(), st.builds(PrefixLengths, ipv4=st.sampled_from([16, 24, 32]),
                                          ipv6=st.sampled_from([48, 64, 128]))),
    direction=st.sampled_from(["outbound", "inbound", "any"]),
    sender_domains=st.sampled_from([[], ["example.net"]]),
    # Round values make window edges and expiries land exactly on event times.
    window=st.one_of(st.sampled_from([1, 500, 1_000, 2_000, 5_000]), st.integers(1, 8_000))
    .map(lambda ms: timedelta(milliseconds=ms)),
    action=st.sampled_from(["defer", "block", "quarantine", "warn"]),
    duration=millis,
    mode=st.sampled_from(["enforce", "shadow"]),
    escalate=st.one_of(st.just([]), ladders),
    # Classes: some thresholds give a class its own numbers (beyond the others' too, so a
    # change of class moves a subject over its window's cap) or count only some classes.
    class_limits=st.dictionaries(st.sampled_from(CLASSES),
                                 st.tuples(st.integers(0, 12), st.integers(0, 5))
                                 .filter(lambda ms: any(ms)), max_size=2),
    classes=st.one_of(st.just([]), st.lists(st.sampled_from(CLASSES), min_size=1, max_size=2,
                                            unique=True)),
)


@st.composite
def configs(draw: st.DrawFn) -> FloodgateConfig:
    drawn = draw(st.lists(thresholds, min_size=1, max_size=4))
    named = [t.model_copy(update={"name": f"t{i}"}) for i, t in enumerate(drawn)]
    exempt = draw(st.sampled_from([
        Exempt(),
        Exempt(client_ips=["10.0.0.3/32"], senders=["@other.org"], sasl_usernames=["carol"]),
    ]))
    return FloodgateConfig(thresholds=named, exempt=exempt,
                           classes=SubjectClasses(default=CLASSES[0], names=CLASSES))


# Attempt outcomes: Postfix's status, and its text (the remote's answer after "said:", or
# a local failure, which is no remote refusal).
OUTCOMES = [
    ("sent", "250 2.0.0 Ok: queued as 4F2"),
    ("bounced", "host mx.dest.example[192.0.2.1] said: 550 5.1.1 <r@dest.example>: "
                "Recipient address rejected: User unknown (in reply to RCPT TO command)"),
    ("bounced", "Host or domain name not found. Name service error for name=nx.example"),
    ("deferred", "host mx.dest.example[192.0.2.1] said: 421-4.7.0 Try again later"),
    ("deferred", "connect to mx.dest.example[192.0.2.1]:25: Connection refused"),
    ("bounced", "host mx.dest.example[192.0.2.1] said: 554 5.7.1 Service unavailable"),
    ("deferred", "host mx.dest.example[192.0.2.1] refused to talk to me: 554 5.7.1 blocked"),
    ("deferred", "delivery temporarily suspended: host mx.dest.example[192.0.2.1] refused to "
                 "talk to me: 421 4.7.0 later"),
    ("expired", None),
]
# Why a message was refused, when it was: an unknown mailbox (counted for unknown_recipient
# thresholds only), something else, or an address that merely looks like the status.
REFUSALS = [
    "550 5.1.1 <r@dest.example>: Recipient address rejected: User unknown in local recipient "
    "table",
    "450 4.1.1 <r@dest.example>: Recipient address rejected: unverified address",
    "554 5.7.1 <r@dest.example>: Relay access denied",
    "554 5.7.1 <550 5.1.1@dest.example>: Relay access denied",
    "550-5.1.1 multi-line reply",
]


@st.composite
def traffic(draw: st.DrawFn) -> list[Unit]:
    count = draw(st.integers(0, 150))
    clock = 0
    events: list[Unit] = []
    for _ in range(count):
        clock += draw(st.sampled_from([0, 0, 1, 5, 50, 300, 500, 500, 1_000, 4_000]))
        late = draw(st.sampled_from([0, 0, 0, 0, 1, 500, 700, GRACE_MS]))
        user = draw(st.sampled_from(["alice", "bob", "carol", None]))
        domain = draw(st.sampled_from(["example.net", "other.org"]))
        sender = draw(st.sampled_from([f"{user or 'anon'}@{domain}", "Alice@Example.NET", "", None]))
        common = {
            "sasl_username": user,
            "sender": sender,
            "client_ip": draw(st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.7.1",
                                               "10.1.0.1", "2001:db8::1", "2001:db8::2",
                                               "2001:db8:0:1::1", "2001:db8:1::1"])),
            "direction": draw(st.sampled_from(["outbound", "outbound", "inbound", "internal"])),
            "mta_generated": draw(st.sampled_from([False] * 9 + [True])),
        }
        if draw(st.booleans()):
            status, response = draw(st.sampled_from(OUTCOMES))
            events.append(delivery(max(clock - late, 0), status, response, **common))
            continue
        events.append(mail(
            max(clock - late, 0),
            recipients=[f"r{i}@dest.example" for i in range(draw(st.integers(1, 4)))],
            spam=draw(st.sampled_from([True, True, False, None])),
            accepted=(accepted := draw(st.sampled_from([True, True, True, False]))),
            reject_reason=None if accepted else draw(st.sampled_from(REFUSALS)),
            **common,
        ))
    return events


Resets = dict[int, set[tuple[str, str]]]


@st.composite
def resets(draw: st.DrawFn, config: FloodgateConfig, events: list[Unit]) -> Resets:
    """Operators' lifts with ``--reset`` before some events, of subjects the traffic uses."""
    out: Resets = {}
    for index in draw(st.lists(st.integers(0, max(len(events) - 1, 0)), max_size=3)):
        threshold = draw(st.sampled_from(config.thresholds))
        subject = draw(st.sampled_from(["alice", "bob", "alice@example.net", "example.net",
                                        "10.0.0.1", "10.0.0.0/24", "2001:db8::/64"]))
        out.setdefault(index, set()).add((threshold.name, subject))
    return out


SUBJECT_KEYS = ["sasl_username:alice", "sasl_username:bob", "sender:alice@example.net",
                "sender_domain:example.net", "client_ip:10.0.0.1", "client_ip:10.0.0.2",
                "client_net:10.0.0.0/24", "client_net:2001:db8::/64"]
overrides = st.one_of(st.just("off"), st.tuples(
    st.one_of(st.none(), st.integers(1, 15)), st.one_of(st.none(), st.integers(1, 6)),
    st.one_of(st.none(), st.integers(1, 6))).filter(any).map(
        lambda n: ThresholdOverride(messages=n[0], spams=n[1], flagged_units=n[2])))


@st.composite
def changes(draw: st.DrawFn, config: FloodgateConfig, events: list[Unit]) -> Changes:
    """Settings records set (or removed) before some events, mid-window included: a class
    (or one the config does not know), overrides of some thresholds, an exemption."""
    out: Changes = {}
    names = [t.name for t in config.thresholds]
    for index in draw(st.lists(st.integers(0, max(len(events) - 1, 0)), max_size=6)):
        key = draw(st.sampled_from(SUBJECT_KEYS))
        record = None
        if draw(st.integers(0, 4)):  # else a tombstone
            record = SubjectSettings(
                subject=key, subject_class=draw(st.sampled_from([*CLASSES, "gone", None])),
                overrides=draw(st.dictionaries(st.sampled_from(names), overrides, max_size=2)),
                exempt=draw(st.sampled_from([False] * 6 + [True])), actor="test",
                reason="drawn", at=T0)
        out.setdefault(index, {})[key] = record
    return out


def run_engine(config: FloodgateConfig, events: list[Unit],
               lifts: Resets | None = None, settings: Changes | None = None) -> list[ActionEvent]:
    """Drive the engine as the pipeline does: state read from bytes and written back per event."""
    engine = ThresholdEngine(config)
    stored: dict[str, bytes] = {}
    custom: dict[str, Customisation] = {}
    fired = []
    keys = {t.name: t.key.value for t in config.thresholds}
    for index, event in enumerate(events):
        for key, record in (settings or {}).get(index, {}).items():
            if record is None:
                custom.pop(key, None)
            else:  # as the worker stores it: its compact form, from the record's JSON
                custom[key] = Customisation.decode(Customisation.of(
                    SubjectSettings.model_validate_json(record.to_json())).encode())
        for name, value in (lifts or {}).get(index, set()):
            key = f"{'client_net' if '/' in value else keys[name]}:{value}"
            state = decode_state(stored[key]) if key in stored else SubjectState()
            engine.lift(state, name, reset=True)
            stored[key] = encode_state(state)
        for subject in engine.subjects(event):
            state = decode_state(stored[subject.key]) if subject.key in stored else SubjectState()
            fired += engine.observe(subject, state, event, custom.get(subject.key))
            stored[subject.key] = encode_state(state)
    return fired


def _step_and_firing(action: ActionEvent) -> tuple[int | None, int | None]:
    escalation = action.evidence.escalation if action.evidence else None
    return (escalation.step, escalation.firing) if escalation else (None, None)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), configs(), traffic())
def test_engine_fires_exactly_where_the_reference_does(
    data: st.DataObject, config: FloodgateConfig, events: list[Unit]
) -> None:
    lifts = data.draw(resets(config, events))
    drawn = data.draw(changes(config, events))
    # One event may fire several thresholds; their order among themselves is not part
    # of the contract, so both sides are compared in one canonical order.
    expected = sorted(reference_firings(config, events, lifts, drawn),
                      key=lambda f: (f.triggered_ms, f.threshold, f.subject))
    actual = sorted(run_engine(config, events, lifts, drawn),
                    key=lambda a: (to_ms(a.triggered_at), a.threshold or "", a.subject))
    assert [(a.threshold, a.subject_type.value, a.subject, to_ms(a.triggered_at),
             to_ms(a.expires_at), a.action.value,
             *_step_and_firing(a)) for a in actual] == \
           [(f.threshold, f.subject_type, f.subject, f.triggered_ms, f.expires_ms, f.action,
             f.step, f.firing) for f in expected]
    limits = {t.name: t for t in config.thresholds}
    for action, truth in zip(actual, expected, strict=True):
        assert action.enforced is (limits[truth.threshold].mode.value == "enforce")
        evidence = action.evidence
        assert evidence is not None
        threshold = limits[truth.threshold]
        # The subject's own numbers, and what the window kept
        assert (evidence.limit_messages, evidence.limit_spams) == truth.limits
        # flagged units the volume's cap passed over still are units of the window
        assert evidence.messages == max(truth.messages, evidence.spams)
        assert truth.spams <= evidence.spams <= evidence.messages
        assert (evidence.count, evidence.flagged) == (threshold.count, threshold.flagged)
        assert evidence.window_end == action.triggered_at


@settings(max_examples=200, deadline=None)
@given(configs(), traffic())
def test_state_stays_within_the_thresholds_needs(
    config: FloodgateConfig, events: list[Unit]
) -> None:
    engine = ThresholdEngine(config)
    states: dict[str, SubjectState] = {}
    caps = {t.name: (max(n for c in CLASSES for n in (*t.limits_for(c), 1)),
                     max(t.limits_for(c)[1] for c in CLASSES)) for t in config.thresholds}
    ladders = {t.name: (max((s.after for s in t.escalate), default=1) - 1,
                        max((to_ms_span(s.within) for s in t.escalate), default=0))
               for t in config.thresholds}
    learnt_caps: dict[tuple[str, str], int] = {}  # the highest learnt limit so far
    thresholds = {t.name: t for t in config.thresholds}
    for event in events:
        for subject in engine.subjects(event):
            state = states.setdefault(subject.key, SubjectState())
            engine.observe(subject, state, event)
            for name, record in state.thresholds.items():
                volume_cap, spam_cap = caps[name]
                learnt = _learnt_limit(thresholds[name], record.baseline)
                if learnt is not None:  # a baseline's window keeps up to its limit
                    key = (name, subject.key)
                    learnt_caps[key] = max(learnt_caps.get(key, 0), learnt)
                volume_cap = max(volume_cap, learnt_caps.get((name, subject.key), 0))
                assert len(record.volume) <= volume_cap
                assert len(record.spams) <= spam_cap
                assert all(record.now - ts < 8_000 for ts in record.volume.times)
                kept, period = ladders[name]
                assert len(record.firings) <= kept
                # trimmed when the threshold fires: all within the longest period of the newest
                assert all(record.firings[-1] - ts < period for ts in record.firings)


def _learnt_limit(threshold: Threshold, learnt: Baseline | None) -> int | None:
    """The limit the documented formula gives a learnt baseline; None before."""
    rule = threshold.baseline
    if rule is None or learnt is None:
        return None
    n = to_ms_span(rule.learn) // to_ms_span(threshold.window)
    if learnt.age < n:
        return None
    normal = learnt.mean / (1 - (1 - 2 / (n + 1)) ** learnt.age)
    return max(rule.min_messages, math.floor(round(rule.factor * normal, 6)) + 1)


def test_reference_sanity_one_burst() -> None:
    """Guards the reference itself: 3 messages within 10 s fire once, at the third."""
    config = FloodgateConfig(thresholds=[Threshold(
        name="b", key="sender", window="10s", messages=3, action="warn", duration="1m")])
    events = [mail(ms) for ms in (0, 4_000, 9_000, 9_500)]
    firings = reference_firings(config, events)
    assert [(f.triggered_ms - to_ms(T0), f.messages) for f in firings] == [(9_000, 3)]
