"""Policy answers by kind over the last minutes: requests/s and what the service said.

Counted from ``floodgate.policy-events`` in 10-second buckets of the events'
own time, 15 minutes kept (fixed memory: 90 buckets x the kinds below).
"""

from __future__ import annotations

from connectors.postfix_policy.policy_protocol import ANSWER_KINDS, answer_kind

BUCKET_MS = 10_000
BUCKETS = 90
class PolicyAnswers:
    def __init__(self) -> None:
        self._buckets: dict[int, dict[str, int]] = {}
        self.too_old = 0

    def add(self, answer: str, ts_ms: int, now_ms: int) -> None:
        index = min(ts_ms, now_ms) // BUCKET_MS
        if index <= now_ms // BUCKET_MS - BUCKETS:
            self.too_old += 1
            return
        bucket = self._buckets.get(index)
        if bucket is None:
            bucket = self._buckets[index] = dict.fromkeys(ANSWER_KINDS, 0)
            self.advance(now_ms)
        bucket[answer_kind(answer)] += 1

    def advance(self, now_ms: int) -> None:
        oldest = now_ms // BUCKET_MS - BUCKETS + 1
        for index in [i for i in self._buckets if i < oldest]:
            del self._buckets[index]

    def series(self, now_ms: int) -> list[tuple[int, dict[str, int]]]:
        """(bucket start in seconds since the epoch, answers by kind) for every complete kept
        bucket, oldest first, empty ones included (the present one is still filling)."""
        newest = now_ms // BUCKET_MS
        return [(index * BUCKET_MS // 1000, dict(self._buckets.get(index) or dict.fromkeys(ANSWER_KINDS, 0)))
                for index in range(newest - BUCKETS + 1, newest)]

    def per_second(self, now_ms: int, seconds: int = 60) -> float:
        """Requests per second over the last ``seconds`` of complete buckets."""
        newest = now_ms // BUCKET_MS
        span = max(1, seconds * 1000 // BUCKET_MS)
        requests = sum(sum(self._buckets.get(i, {}).values()) for i in range(newest - span, newest))
        return round(requests / (span * BUCKET_MS / 1000), 2)
