"""Top subjects: every estimate within its stated bounds of the exact count, per view."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.console.top_subjects import COARSE, FINE, VIEWS_S, TopSubjects, _tier_of
from pipeline.engine.counting import Exemptions
from schemas.config import Exempt
from schemas.events import MailEvent
from schemas.thresholds import PrefixLengths
from schemas.vocabulary import Direction, EventSource, SubjectType

ACCOUNT = SubjectType.SASL_USERNAME
START = 1_800_000_000_000
NO_EXEMPTIONS = Exemptions(Exempt())

# (ms after the previous event, how late it is stamped, key, spam)
steps = st.lists(st.tuples(st.integers(0, 40_000), st.integers(0, 20_000), st.integers(0, 30),
                           st.booleans()), min_size=1, max_size=400)


def feed(top: TopSubjects, drawn: list[tuple[int, int, int, bool]]
         ) -> tuple[int, list[tuple[int, str, bool]]]:
    """Feed the drawn events as they arrive; (the last arrival time, what was fed)."""
    now, fed = START, []
    for gap, late, key, spam in drawn:
        now += gap
        ts = now - late
        top.add(ts, [(ACCOUNT, f"user{key}")], spam, now)
        fed.append((ts, f"user{key}", spam))
    return now, fed


def truth(fed: list[tuple[int, str, bool]], view_s: int, now: int) -> Counter[str]:
    """Exact counts of the events in the view's buckets (from the oldest one's start to now)."""
    tier = _tier_of(view_s)
    span = view_s * 1000 // tier.bucket_ms
    start = (now // tier.bucket_ms - span + 1) * tier.bucket_ms
    return Counter(key for ts, key, _ in fed if start <= ts <= now)


@settings(max_examples=150, deadline=None)
@given(drawn=steps, capacity=st.integers(10, 40))
def test_estimates_hold_their_bounds(drawn: list[tuple[int, int, int, bool]], capacity: int) -> None:
    top = TopSubjects(capacity, NO_EXEMPTIONS)
    now, fed = feed(top, drawn)
    for view_s in VIEWS_S:
        exact = truth(fed, view_s, now)
        total, rows = top.top(view_s, ACCOUNT, 50, now)
        assert total == sum(exact.values())
        bound = top.error_bound(view_s, total)
        for row in rows:
            assert row.at_least <= exact[row.subject] <= row.at_most
            assert row.messages - exact[row.subject] <= bound
        shown = {row.subject for row in rows}
        heavy = [key for key, count in exact.items() if count > bound]
        # every key above the error bound is found, unless 50 heavier ones fill the rows
        assert len(shown) == 50 or all(key in shown for key in heavy)


def test_exact_while_the_keys_fit_and_rates_per_minute() -> None:
    top = TopSubjects(100, NO_EXEMPTIONS)
    now = START + 59_999
    for index in range(60):  # one a second for a minute: the burst
        top.add(START + index * 1000, [(ACCOUNT, "burst")], index % 4 == 0, now)
    for index in range(6):
        top.add(START + index * 10_000, [(ACCOUNT, "quiet")], False, now)
    total, rows = top.top(300, ACCOUNT, 10, now)
    assert total == 66
    assert [(r.subject, r.messages, r.at_least, r.at_most) for r in rows] == [
        ("burst", 60, 60, 60), ("quiet", 6, 6, 6)]
    assert rows[0].spam_share == 0.25
    assert rows[0].per_minute == 12.0  # 60 in the 5 minutes the view's buckets cover
    assert top.top(60, ACCOUNT, 1, now)[1][0].per_minute == 60.0  # the last minute's rate


def test_old_and_future_events() -> None:
    top = TopSubjects(100, NO_EXEMPTIONS)
    now = START
    top.add(now - 3_600_000, [(ACCOUNT, "old")], False, now)  # left the hour
    top.add(now + 86_400_000, [(ACCOUNT, "clock-ahead")], False, now)  # counts now
    assert top.too_old == 1
    assert [r.subject for r in top.top(60, ACCOUNT, 10, now)[1]] == ["clock-ahead"]
    top.add(now - 1_800_000, [(ACCOUNT, "half-hour-ago")], False, now)  # in the hour view only
    assert [r.subject for r in top.top(300, ACCOUNT, 10, now)[1]] == ["clock-ahead"]
    assert {r.subject for r in top.top(3600, ACCOUNT, 10, now)[1]} == {"clock-ahead", "half-hour-ago"}


def test_memory_is_bounded_whatever_the_traffic() -> None:
    top = TopSubjects(20, NO_EXEMPTIONS)
    now = START
    for index in range(200_000):  # new keys in every dimension, 3 hours of them
        now = START + index * 54
        top.add(now, [(kind, f"{kind.value}{index}") for kind in SubjectType], False, now)
    limit = (FINE.buckets * 10 + COARSE.buckets * 20) * len(SubjectType)
    assert 0 < top.counters() <= limit


def mail(**fields: object) -> MailEvent:
    base: dict[str, object] = dict(
        event_id="e1", ts=datetime.fromtimestamp(START / 1000, UTC), host="mx", queue_id="Q1",
        client_ip="10.0.0.5", sasl_username="alice", sender="Alice+news@Example.NET",
        sender_domain="example.net", recipients=["x@y.example"], direction=Direction.OUTBOUND,
        accepted=True, source=EventSource.LOG)
    base.update(fields)
    return MailEvent.model_validate(base)


def test_events_count_as_the_worker_counts_them() -> None:
    exemptions = Exemptions(Exempt(senders=["@partner.example"], client_ips=["192.0.2.0/24"]), "+")
    top = TopSubjects(100, exemptions, "+")
    top.add_event(mail(), START, START)
    top.add_event(mail(accepted=False, reject_reason="554 5.7.1 relay denied"), START, START)
    top.add_event(mail(client_ip="192.0.2.9"), START, START)  # exempt infrastructure
    top.add_event(mail(sender="x@partner.example", sender_domain="partner.example"), START, START)
    top.add_event(mail(mta_generated=True), START, START)
    seen = {kind: [(r.subject, r.messages) for r in top.top(60, kind, 5, START)[1]]
            for kind in SubjectType}
    assert seen == {
        SubjectType.SASL_USERNAME: [("alice", 2)],
        SubjectType.SENDER: [("alice@example.net", 1)],  # the exempt sender is kept out
        SubjectType.SENDER_DOMAIN: [("example.net", 1)],
        SubjectType.CLIENT_IP: [("10.0.0.5", 2)],
        SubjectType.CLIENT_NET: [],  # ranked only by a config's prefix lengths
    }


def test_client_networks_are_ranked_by_the_config_s_prefix_lengths() -> None:
    top = TopSubjects(100, NO_EXEMPTIONS, "", PrefixLengths(ipv4=24, ipv6=64))
    for n in range(5):  # one customer's /64, an address a message
        top.add_event(mail(client_ip=f"2001:db8:5:6::{n + 1:x}"), START, START)
    top.add_event(mail(client_ip="198.51.100.9"), START, START)
    rows = top.top(60, SubjectType.CLIENT_NET, 5, START)[1]
    assert [(r.subject, r.messages) for r in rows] == [
        ("2001:db8:5:6::/64", 5), ("198.51.100.0/24", 1)]
    assert SubjectType.CLIENT_NET in top.dimensions  # a panel only where the config counts so
    assert SubjectType.CLIENT_NET not in TopSubjects(100, NO_EXEMPTIONS).dimensions
