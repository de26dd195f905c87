"""Who is about to be acted on: each subject's count over a threshold's own window against the
limit that threshold holds it to (its class's numbers or its own overrides), ranked by how
near the limit it is, whatever its volume. A consumer sending 50 messages in a minute under
a 60-a-minute limit ranks above a ticketing system sending 5,000 an hour under its own.

The counts are the Top subjects' estimates (``top_subjects``) over the newest buckets that
cover the window, so they are approximate in two ways the worker is not: a bucket is 10 s
(1 minute past 5 minutes), and every direction's countable mail is in them. The worker
decides; this shows who is close. Judged are the thresholds a console can see: counting
messages (or recipients, of which messages are the least there can be), flagged as spam or
not at all, windows up to an hour, with fixed numbers (a learnt baseline's limit is known to
the worker only), on a dimension the console ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pipeline.console.top_subjects import COARSE, TopSubjects
from schemas.subjects import subject_key
from schemas.thresholds import PrefixLengths, Threshold
from schemas.vocabulary import CountMode, Flag, SubjectType

CANDIDATES = 50  # per threshold: its window's heaviest subjects of its dimension
NEAR = 0.8  # from here on a subject is flagged as near its limit
LONGEST_S = COARSE.bucket_ms * COARSE.buckets // 1000

# The (units, flagged) limits a threshold holds a subject (its key) to; None: not counted.
LimitsOf = Callable[[str, Threshold], tuple[int, int] | None]


@dataclass(frozen=True)
class Nearness:
    subject: str  # the key, e.g. sasl_username:alice
    dimension: SubjectType
    value: str
    threshold: str
    window_s: int
    messages: int  # the estimate over the threshold's window
    limit: int
    flagged: int
    flagged_limit: int
    share: float  # of the limit reached: 1.0 and more is at or over it
    at_least: bool  # the threshold counts recipients: messages are the least it has counted

    @property
    def near(self) -> bool:
        """Flagged: at ``NEAR`` of its limit or more."""
        return self.share >= NEAR


def judged(threshold: Threshold, dimensions: Iterable[SubjectType],
           networks: PrefixLengths | None) -> SubjectType | None:
    """The dimension a threshold's subjects are ranked in, or None when the console cannot
    judge it."""
    if threshold.count is CountMode.DELIVERIES or threshold.baseline is not None \
            or threshold.flagged is not Flag.SPAM \
            or threshold.window.total_seconds() > LONGEST_S:
        return None
    dimension = threshold.key
    if threshold.counts_networks:
        if threshold.prefix != networks:
            return None  # ranked by another prefix than this one's
        dimension = SubjectType.CLIENT_NET
    return dimension if dimension in dimensions else None


def share_of(messages: int, flagged: int, limits: tuple[int, int]) -> float | None:
    """How much of the limit is reached; a threshold fires when both numbers are."""
    limit, flagged_limit = limits
    parts = [count / bar for count, bar in ((messages, limit), (flagged, flagged_limit)) if bar]
    return min(parts) if parts else None


def nearest(top: TopSubjects, thresholds: Iterable[Threshold], limits_of: LimitsOf,
            now_ms: int) -> list[Nearness]:
    """Subjects by nearness to a limit, nearest first, each with the threshold it is nearest;
    a subject counted by nothing (exempt, another class, switched off) is not among them."""
    best: dict[str, Nearness] = {}
    for threshold in thresholds:
        dimension = judged(threshold, top.dimensions, top.networks)
        if dimension is None:
            continue
        window_s = max(1, int(threshold.window.total_seconds()))
        for row in top.top(window_s, dimension, CANDIDATES, now_ms)[1]:
            key = subject_key(dimension, row.subject)
            limits = limits_of(key, threshold)
            share = None if limits is None else share_of(row.messages, row.flagged, limits)
            if share is None or (key in best and best[key].share >= share):
                continue
            assert limits is not None
            best[key] = Nearness(key, dimension, row.subject, threshold.name, window_s,
                                 row.messages, limits[0], row.flagged, limits[1],
                                 round(share, 3), threshold.count is CountMode.RECIPIENTS)
    return sorted(best.values(), key=lambda n: (-n.share, -n.messages, n.subject))
