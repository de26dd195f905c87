"""Policy answers by kind in 10-second buckets."""

from __future__ import annotations

import pytest

from connectors.postfix_policy.policy_protocol import answer_kind
from pipeline.console.policy_answers import BUCKET_MS, BUCKETS, PolicyAnswers


@pytest.mark.parametrize(("answer", "kind"), [
    ("DUNNO", "dunno"), ("OK", "dunno"),
    ("DEFER 4.7.1 Too much mail", "defer"), ("DEFER_IF_PERMIT 4.7.1 x", "defer"),
    ("450 4.7.1 try later", "defer"), ("REJECT 5.7.1 Sending suspended", "block"),
    ("554 5.7.1 no", "block"), ("HOLD quarantined", "quarantine"), ("WARN watched", "warn"),
    ("FILTER smtp:x", "other"), ("", "other"),
])
def test_answer_kind(answer: str, kind: str) -> None:
    assert answer_kind(answer) == kind


def test_series_and_rate_count_complete_buckets_only() -> None:
    now = 1_000 * BUCKET_MS + 5_000  # half way into a bucket
    answers = PolicyAnswers()
    for _ in range(30):
        answers.add("DUNNO", now - BUCKET_MS, now)  # the last complete bucket
    answers.add("DEFER 4.7.1", now - 2 * BUCKET_MS, now)
    answers.add("REJECT 5.7.1", now, now)  # the present bucket: not drawn yet
    series = answers.series(now)
    assert len(series) == BUCKETS - 1
    assert series[-1] == ((now // BUCKET_MS - 1) * 10, {
        "dunno": 30, "warn": 0, "defer": 0, "quarantine": 0, "block": 0, "other": 0})
    assert series[-2][1]["defer"] == 1
    assert answers.per_second(now, 60) == round(31 / 60, 2)


def test_old_answers_are_dropped_and_memory_is_fixed() -> None:
    answers = PolicyAnswers()
    now = 10_000 * BUCKET_MS
    answers.add("DUNNO", now - BUCKETS * BUCKET_MS, now)
    assert answers.too_old == 1
    for step in range(1_000):
        answers.add("DUNNO", now + step * BUCKET_MS, now + step * BUCKET_MS)
    assert len(answers._buckets) <= BUCKETS
