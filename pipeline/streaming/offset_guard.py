"""Let each source record through once, in offset order, even when the consumer skips some.

faust-streaming 0.15 can drop records that were fetched while a worker
recovers its tables (upstream issue faust-streaming/faust#596): the stream
then jumps over a run of offsets, and now and then repeats one. The dropped
records are never acknowledged, so Faust's committed offset stops before
them, but the live worker would not see them until its next restart and
would count what follows out of order. Seeking Faust's consumer back does
not help: its fetch loop races the seek and drops the records again.

The guard keeps, per source partition, the next offset it expects:

* the expected offset: process it;
* a lower one: already processed (a repeat): skip it;
* a higher one: offsets ``[expected, offset)`` were skipped. The caller
  fetches them itself (``gap_filler``) and processes them first, then this
  one, so nothing is lost and order is kept.

``start`` tells the guard where a partition's consumption began (its committed
offset), so records skipped at the very start are found too.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Admission:
    process: bool  # False: a repeat, skip it
    missing_from: int | None = None  # fetch and process [missing_from, offset) first


PROCESS = Admission(True)
REPEAT = Admission(False)


class OffsetGuard:
    def __init__(self) -> None:
        self._expected: dict[Hashable, int] = {}
        self.skipped = 0  # offsets the consumer jumped over, over the worker's life

    def check(self, tp: Hashable, offset: int, start: int | None = None) -> Admission:
        expected = self._expected.get(tp, start)
        if expected is not None and offset < expected:
            return REPEAT
        self._expected[tp] = offset + 1
        if expected is None or offset == expected:
            return PROCESS
        self.skipped += offset - expected
        return Admission(True, missing_from=expected)

    def expected(self, tp: Hashable) -> int | None:
        return self._expected.get(tp)

    def forget(self, tps: Iterable[Hashable]) -> None:
        """Drop partitions that were revoked: their offsets go on elsewhere."""
        for tp in tps:
            self._expected.pop(tp, None)
