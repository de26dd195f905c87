"""Each subject against its own normal: what a baseline threshold learns, and its limit.

Time is cut into buckets of the threshold's window (event time // window). A
subject's normal is the exponentially weighted mean of its units per bucket,
over closed buckets only (the present bucket never raises its own bar), empty
ones included, bias-corrected so a steady subject's normal is its steady count
from the start::

    normal = sum(w_j * units_j) / sum(w_j)   over the closed buckets F <= j < B
    w_j = a * (1 - a) ** (B - 1 - j),  a = 2 / (n + 1),  n = learn / window

with B the newest bucket with a unit and F the subject's first. A late unit
adds its own term, so the order units arrive in does not change the normal; a
late unit older than the first is not history. Once F is ``n`` buckets behind
B (a learning period of history), the threshold fires when the window holds
more than ``factor * normal`` units (rounded to 6 decimals first) and at least
``min_messages``; before that, its fixed numbers apply (the class's, the
subject's overrides). A subject silent for more than ``n`` buckets starts
learning afresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import floor

from pipeline.engine.counting import MAX_UNIT
from pipeline.engine.subject_state import MAX_AGE, Baseline
from schemas.thresholds import Threshold
from schemas.time_ms import span_ms


@dataclass(frozen=True, slots=True)
class Learning:
    """A baseline threshold's rule, in buckets of its window."""

    buckets: int  # n: the learning period in windows
    alpha: float
    factor: float
    min_messages: int

    @classmethod
    def of(cls, threshold: Threshold) -> Learning | None:
        rule = threshold.baseline
        if rule is None:
            return None
        buckets = span_ms(rule.learn) // span_ms(threshold.window)
        return cls(buckets, 2 / (buckets + 1), rule.factor, rule.min_messages)

    def learn(self, learnt: Baseline | None, bucket: int, weight: int) -> Baseline:
        """``learnt`` with one more unit in ``bucket`` (changed in place, or a new one)."""
        if learnt is None or bucket - learnt.bucket > self.buckets:
            return Baseline(0.0, bucket, 0, weight)  # new, or silent for a learning period
        keep = 1.0 - self.alpha
        if bucket > learnt.bucket:  # close the newest bucket, and the empty ones after it
            steps = bucket - learnt.bucket
            learnt.mean = (learnt.mean * keep + self.alpha * learnt.count) * keep ** (steps - 1)
            learnt.age = min(learnt.age + steps, MAX_AGE)
            learnt.bucket, learnt.count = bucket, weight
        elif bucket == learnt.bucket:
            learnt.count = min(learnt.count + weight, MAX_UNIT)
        elif learnt.bucket - bucket <= learnt.age:  # late, in a closed bucket: its own term
            learnt.mean += self.alpha * keep ** (learnt.bucket - bucket - 1) * weight
        return learnt

    def normal(self, learnt: Baseline) -> float | None:
        """The subject's usual units per window; None while it is still learning."""
        if learnt.age < self.buckets:
            return None
        # the weights of the buckets since the first sum to 1 - (1 - a) ** age: divided by
        # them, the mean of a steady subject is its steady count from the start
        return learnt.mean / (1.0 - (1.0 - self.alpha) ** learnt.age)

    def limit(self, normal: float) -> int:
        """The units the window must reach: more than factor x normal, min_messages at least."""
        return max(self.min_messages, floor(round(self.factor * normal, 6)) + 1)
