"""The heaviest senders of the last 1, 5 and 60 minutes, per key dimension, in bounded memory.

Time is cut into buckets, each holding one Space-Saving summary per dimension
(``space_saving``): 10-second buckets for the last 5 minutes, 1-minute buckets
for the last hour. A view adds up the summaries of its buckets. For a key in
a view, ``messages`` sums the counts of the buckets that track it and is
within [``at_least``, ``at_most``] of the truth: ``at_least`` takes off each
bucket's error, ``at_most`` adds, for each bucket that does not track the key,
the most that bucket can have missed. No estimate is off by more than
``messages_in_view / capacity`` (each bucket's error is at most its total over
capacity); memory is ``(30 + 60) x 4 x capacity`` counters whatever the
traffic. The flagged (spam) share is counted while a key is tracked, so it is
approximate for keys near the bottom of a summary.

Counted like the worker counts: mail that is countable (``is_countable``:
accepted or refused as spam, not the MTA's own, not from exempt
infrastructure) under the subjects it counts under, exempt senders kept out
of the sender and domain dimensions. Time is the events' own; an event stamped
in the future counts in the present bucket, one older than the hour not at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.console.space_saving import SpaceSaving
from pipeline.engine.counting import Exemptions, is_countable, subject_of
from schemas.addresses import client_network
from schemas.events import MailEvent
from schemas.subjects import SENDER_KEYS
from schemas.thresholds import PrefixLengths
from schemas.vocabulary import SubjectType

VIEWS_S = (60, 300, 3600)
DIMENSIONS = tuple(SubjectType)


@dataclass(frozen=True)
class _Tier:
    bucket_ms: int
    buckets: int  # kept, the present one included

    def index(self, ts_ms: int) -> int:
        return ts_ms // self.bucket_ms


FINE, COARSE = _Tier(10_000, 30), _Tier(60_000, 60)


def _tier_of(view_s: int) -> _Tier:
    return FINE if view_s * 1000 <= FINE.bucket_ms * FINE.buckets else COARSE


@dataclass(frozen=True)
class TopRow:
    subject: str
    messages: int  # the estimate
    at_least: int
    at_most: int
    flagged: int
    per_minute: float
    spam_share: float


class TopSubjects:
    def __init__(self, capacity: int, exemptions: Exemptions, delimiters: str = "",
                 networks: PrefixLengths | None = None) -> None:
        self.capacity = capacity
        self.exemptions = exemptions
        self._delimiters = delimiters
        self._networks = networks  # client networks are ranked by these lengths, if given
        # tier -> bucket index -> dimension -> summary
        self._buckets: dict[_Tier, dict[int, dict[SubjectType, SpaceSaving]]] = {
            FINE: {}, COARSE: {}}
        self.counted = 0
        self.too_old = 0

    @property
    def networks(self) -> PrefixLengths | None:
        return self._networks

    @property
    def dimensions(self) -> tuple[SubjectType, ...]:
        """What is ranked: client networks only where the config counts by them."""
        if self._networks is not None:
            return DIMENSIONS
        return tuple(d for d in DIMENSIONS if d is not SubjectType.CLIENT_NET)

    def add_event(self, event: MailEvent, ts_ms: int, now_ms: int) -> None:
        """Count one mail event (if it counts at all) under each of its subjects."""
        if not is_countable(event, self.exemptions):
            return
        sender_exempt = self.exemptions.exempts_sender(event.sender, event.sender_domain)
        keys = []
        for dimension in DIMENSIONS:
            if sender_exempt and dimension in SENDER_KEYS:
                continue
            value = subject_of(dimension, event, self._delimiters)
            if value:
                keys.append((dimension, value))
        if self._networks is not None and event.client_ip:
            network = client_network(event.client_ip, self._networks.ipv4, self._networks.ipv6)
            if network is not None:
                keys.append((SubjectType.CLIENT_NET, network))
        self.add(ts_ms, keys, event.spam is True, now_ms)

    def add(self, ts_ms: int, keys: list[tuple[SubjectType, str]], flagged: bool,
            now_ms: int) -> None:
        ts_ms = min(ts_ms, now_ms)
        if ts_ms <= now_ms - COARSE.bucket_ms * COARSE.buckets:
            self.too_old += 1
            return
        self.counted += 1
        for tier, buckets in self._buckets.items():
            index = tier.index(ts_ms)
            if index <= tier.index(now_ms) - tier.buckets:
                continue  # older than this tier keeps (an old event for the hour view only)
            bucket = buckets.get(index)
            if bucket is None:
                bucket = buckets[index] = {}
                self._drop_old(tier, now_ms)
            for dimension, value in keys:
                summary = bucket.get(dimension)
                if summary is None:
                    summary = bucket[dimension] = SpaceSaving(self._capacity(tier))
                summary.add(value, flagged)

    def _capacity(self, tier: _Tier) -> int:
        return self.capacity if tier is COARSE else max(self.capacity // 2, 1)

    def error_bound(self, view_s: int, messages: int) -> int:
        """The most any estimate of a view holding ``messages`` can be off."""
        return messages // self._capacity(_tier_of(view_s))

    def advance(self, now_ms: int) -> None:
        """Forget buckets that left every view (call now and then, also without traffic)."""
        for tier in self._buckets:
            self._drop_old(tier, now_ms)

    def _drop_old(self, tier: _Tier, now_ms: int) -> None:
        oldest = tier.index(now_ms) - tier.buckets + 1
        buckets = self._buckets[tier]
        for index in [i for i in buckets if i < oldest]:
            del buckets[index]

    def top(self, view_s: int, dimension: SubjectType, n: int, now_ms: int) -> tuple[int, list[TopRow]]:
        """(messages in the view, its ``n`` heaviest subjects of ``dimension``)."""
        tier = _tier_of(view_s)
        newest = tier.index(now_ms)
        span = max(1, view_s * 1000 // tier.bucket_ms)
        summaries = [bucket[dimension] for index, bucket in self._buckets[tier].items()
                     if newest - span < index <= newest and dimension in bucket]
        total = sum(s.total for s in summaries)
        floors = [s.floor() for s in summaries]
        all_floors = sum(floors)
        merged: dict[str, list[int]] = {}  # key -> [count, error, flagged, floors of buckets with it]
        for summary, floor in zip(summaries, floors, strict=True):
            for key, counter in summary.counters.items():
                row = merged.get(key)
                if row is None:
                    merged[key] = [counter.count, counter.error, counter.flagged, floor]
                else:
                    row[0] += counter.count
                    row[1] += counter.error
                    row[2] += counter.flagged
                    row[3] += floor
        heaviest = sorted(merged.items(), key=lambda item: (-item[1][0], item[0]))[:n]
        # the view's buckets cover from the oldest one's start to now (the present one is filling)
        minutes = max(now_ms - (newest - span + 1) * tier.bucket_ms, 1) / 60_000
        return total, [TopRow(key, count, count - error, count + all_floors - floors_with,
                              flagged, round(count / minutes, 1),
                              round(flagged / count, 3) if count else 0.0)
                       for key, (count, error, flagged, floors_with) in heaviest]

    def counters(self) -> int:
        """Counters held (for the memory statement: bounded by 90 x 4 x capacity)."""
        return sum(len(s.counters) for buckets in self._buckets.values()
                   for bucket in buckets.values() for s in bucket.values())

