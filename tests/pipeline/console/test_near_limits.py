"""Nearness to a limit: a small account bursting under a tight limit ranks above a heavy one
far under its class's own, each subject is held to its own numbers, and what the console
cannot judge (delivery counts, learnt limits, windows past its hour) is left out."""

from __future__ import annotations

from pipeline.console.near_limits import judged, nearest, share_of
from pipeline.console.top_subjects import TopSubjects
from pipeline.engine.counting import Exemptions
from pipeline.engine.customisation import Customisation
from pipeline.settings_text import subject_limits
from schemas.config import Exempt, FloodgateConfig
from schemas.thresholds import PrefixLengths, Threshold
from schemas.vocabulary import SubjectType

ACCOUNT = SubjectType.SASL_USERNAME
NOW = 1_800_000_000_000
CONFIG = FloodgateConfig.model_validate({
    "classes": {"names": ["business"]},
    "thresholds": [
        {"name": "burst", "key": "sasl_username", "window": "1m", "messages": 60,
         "action": "defer", "duration": "15m", "per_class": {"business": {"messages": 3000}}},
        {"name": "hourly", "key": "sasl_username", "window": "1h", "messages": 1000,
         "action": "defer", "duration": "1h", "classes": ["standard"]},
        {"name": "spam", "key": "sasl_username", "window": "5m", "messages": 10, "spams": 10,
         "action": "block", "duration": "1h"},
        {"name": "bounces", "key": "sasl_username", "window": "1h", "messages": 50,
         "count": "deliveries", "flagged": "bounced", "flagged_units": 40,
         "action": "warn", "duration": "1h"},
        {"name": "daily", "key": "sender_domain", "window": "1d", "messages": 100000,
         "action": "warn", "duration": "1h"},
    ]})
CUSTOM = {"sasl_username:ticketing": Customisation("business", {})}


def limits_of(key: str, threshold: Threshold) -> tuple[int, int] | None:
    mine = {limit.threshold.name: limit.limits
            for limit in subject_limits(CONFIG, threshold.key, CUSTOM.get(key))}
    return mine.get(threshold.name)


def send(top: TopSubjects, account: str, count: int, over_ms: int, spam: bool = False) -> None:
    for n in range(count):
        top.add(NOW - over_ms + n * over_ms // count, [(ACCOUNT, account)], spam, NOW)


def test_nearness_not_volume_ranks_and_each_subject_has_its_own_limit() -> None:
    top = TopSubjects(100, Exemptions(Exempt()))
    send(top, "ticketing", 2500, 50_000)  # business: 3000 a minute
    send(top, "consumer", 50, 50_000)  # standard: 60 a minute
    send(top, "quiet", 5, 50_000)
    send(top, "spammer", 9, 200_000, spam=True)  # 9 of 10 spams in 5 minutes
    ranked = nearest(top, CONFIG.thresholds, limits_of, NOW)
    by_subject = {n.value: n for n in ranked}
    assert [n.value for n in ranked[:3]] == ["spammer", "ticketing", "consumer"]
    assert by_subject["spammer"].threshold == "spam" and by_subject["spammer"].share == 0.9
    ticketing = by_subject["ticketing"]
    assert (ticketing.threshold, ticketing.limit, ticketing.messages) == ("burst", 3000, 2500)
    consumer = by_subject["consumer"]
    assert (consumer.threshold, consumer.limit, consumer.share) == ("burst", 60, round(50 / 60, 3))
    # the hourly limit counts standard subjects only: the business account is not held to it
    assert all(n.threshold != "hourly" for n in ranked if n.value == "ticketing")


def test_what_the_console_cannot_judge_is_left_out() -> None:
    dimensions = tuple(SubjectType)
    names = {t.name: judged(t, dimensions, None) for t in CONFIG.thresholds}
    assert names == {"burst": ACCOUNT, "hourly": ACCOUNT, "spam": ACCOUNT, "bounces": None,
                     "daily": None}
    learnt = CONFIG.thresholds[0].model_copy(update={"baseline": object()})
    assert judged(learnt, dimensions, None) is None
    network = Threshold.model_validate({
        "name": "net", "key": "client_ip", "window": "1m", "messages": 100, "action": "defer",
        "duration": "5m", "prefix": {"ipv4": 24, "ipv6": 64}})
    assert judged(network, dimensions, PrefixLengths(ipv4=24, ipv6=64)) is SubjectType.CLIENT_NET
    assert judged(network, dimensions, PrefixLengths(ipv4=16, ipv6=48)) is None


def test_both_limits_must_be_reached() -> None:
    assert share_of(30, 0, (60, 0)) == 0.5
    assert share_of(10, 5, (10, 10)) == 0.5
    assert share_of(120, 0, (60, 0)) == 2.0
    assert share_of(5, 5, (0, 0)) is None


def test_an_exempt_or_switched_off_subject_is_not_ranked() -> None:
    top = TopSubjects(100, Exemptions(Exempt()))
    send(top, "exempt", 59, 50_000)
    send(top, "off", 59, 50_000)
    custom = {"sasl_username:exempt": Customisation(None, {}, exempt=True),
              "sasl_username:off": Customisation(None, {"burst": None, "hourly": None,
                                                        "spam": None})}

    def own(key: str, threshold: Threshold) -> tuple[int, int] | None:
        return {limit.threshold.name: limit.limits for limit in subject_limits(
            CONFIG, threshold.key, custom.get(key))}.get(threshold.name)
    assert nearest(top, CONFIG.thresholds, own, NOW) == []
