"""Each account against its own normal: learnt in event time, cold start, order, the sweep."""

from pipeline.engine.evaluator import Pruned, Subject, ThresholdEngine
from pipeline.engine.subject_state import SubjectState, ThresholdState, encode_state
from schemas.events import MailEvent
from schemas.time_ms import to_ms
from schemas.vocabulary import SubjectType
from tests.pipeline.engine.builders import T0, config, mail, threshold
from tests.pipeline.engine.test_evaluator import HOUR_MS, run

UNUSUAL = threshold(name="unusual", key="sasl_username", window="1h", messages=400,
                    baseline={"factor": 10, "min_messages": 20, "learn": "14d"},
                    action="defer", mode="shadow")
DAYS_MS = 24 * HOUR_MS


def _history(user: str, per_hour: int, days: int = 14) -> list[MailEvent]:
    """``per_hour`` messages in every hour of ``days`` days from T0."""
    return [mail(hour * HOUR_MS + n * (HOUR_MS // (per_hour + 1)), sasl_username=user)
            for hour in range(days * 24) for n in range(per_hour)]


def _burst(user: str, count: int, at_ms: int) -> list[MailEvent]:
    return [mail(at_ms + n * 1_000, sasl_username=user) for n in range(count)]


def test_an_account_far_above_its_own_normal_fires_and_a_busy_one_does_not() -> None:
    at = 14 * DAYS_MS + 30 * 60_000  # half an hour into the first hour after the history
    events = (_history("quiet", 1) + _history("busy", 30)
              + _burst("quiet", 30, at) + _burst("busy", 30, at))
    fired = [a for _, a in run(config(UNUSUAL), sorted(events, key=lambda e: e.ts))]
    assert [(a.subject, a.enforced) for a in fired] == [("quiet", False)]
    evidence = fired[0].evidence
    assert evidence is not None and evidence.baseline is not None
    assert 0.9 < evidence.baseline < 1.1  # one message an hour, learnt
    # more than 10 x 1.0 and at least min_messages: the 20th message of the burst
    assert (evidence.limit_messages, evidence.messages) == (20, 20)


def test_a_new_account_uses_the_fixed_numbers_until_it_has_learnt() -> None:
    young = _history("young", 1, days=13) + _burst("young", 30, 13 * DAYS_MS)
    assert run(config(UNUSUAL), young) == []  # 30 < the cold-start 400
    flood = _burst("young", 400, 13 * DAYS_MS + HOUR_MS)
    fired = [a for _, a in run(config(UNUSUAL), young + flood)]
    assert len(fired) == 1 and fired[0].evidence is not None
    assert (fired[0].evidence.baseline, fired[0].evidence.limit_messages) == (None, 400)


def test_the_baseline_does_not_depend_on_the_order_units_arrive_in() -> None:
    engine = ThresholdEngine(config(UNUSUAL))
    subject = Subject(SubjectType.SASL_USERNAME, "alice")
    in_order, late = SubjectState(), SubjectState()
    events = _history("alice", 2, days=2)
    for event in events:
        engine.observe(subject, in_order, event)
    # the same units, all but the first (where history starts) arriving newest first
    for event in events[:1] + events[:0:-1]:
        engine.observe(subject, late, event)
    first, second = in_order.thresholds["unusual"].baseline, late.thresholds["unusual"].baseline
    assert first is not None and second is not None
    assert (first.bucket, first.age, first.count) == (second.bucket, second.age, second.count)
    assert abs(first.mean - second.mean) < 1e-9


def test_a_silent_account_learns_afresh_and_an_idle_one_keeps_only_its_baseline() -> None:
    engine = ThresholdEngine(config(UNUSUAL))
    subject = Subject(SubjectType.SASL_USERNAME, "alice")
    state = SubjectState()
    for event in _history("alice", 1):
        engine.observe(subject, state, event)
    learnt = state.thresholds["unusual"].baseline
    assert learnt is not None and learnt.age >= 14 * 24 - 1
    # a day later: the windows are idle, the baseline is what is left (under 64 bytes)
    assert engine.prune(state, to_ms(T0) + 15 * DAYS_MS) is Pruned.CHANGED
    assert state.thresholds["unusual"] == ThresholdState(baseline=learnt)
    assert len(encode_state(state)) <= 64
    assert engine.prune(state, to_ms(T0) + 15 * DAYS_MS) is Pruned.KEPT
    # silent for longer than the learning period: it can no longer apply, and goes
    assert engine.prune(state, to_ms(T0) + 29 * DAYS_MS) is Pruned.GONE
    engine.observe(subject, state, mail(30 * DAYS_MS, sasl_username="alice"))
    fresh = state.thresholds["unusual"].baseline
    assert fresh is not None and (fresh.age, fresh.mean, fresh.count) == (0, 0.0, 1)
