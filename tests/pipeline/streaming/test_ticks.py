"""Each counting partition ticks once an interval, at its own moment."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pipeline.streaming.metrics import WorkerMetrics
from pipeline.streaming.ticks import phase, tick_due
from schemas.config import WorkerSettings


class _Ticked:
    """A counting partition as ``tick_due`` sees it: records when it was ticked."""

    def __init__(self, number: int, next_tick: float) -> None:
        self.number, self.next_tick = number, next_tick
        self.at: list[float] = []
        self.order = SimpleNamespace(watermark=lambda: 1_000, frontier=(900, "x"))
        self.counter = SimpleNamespace(tick=self._tick)
        self.now = 0.0

    def _tick(self, watermark: int, counted: int | None) -> SimpleNamespace:
        assert (watermark, counted) == (1_000, 900)
        self.at.append(self.now)
        return SimpleNamespace(dropped=0)


INTERVAL = WorkerSettings().tick_interval_s


def ticking(partitions: int) -> list[_Ticked]:
    return [_Ticked(n, INTERVAL * phase(n)) for n in range(partitions)]


def run_cycles(fakes: list[_Ticked], times: list[float]) -> None:
    metrics = WorkerMetrics()
    for now in times:
        for fake in fakes:
            fake.now = now
        tick_due(fakes, now, INTERVAL, metrics)  # type: ignore[arg-type]


def test_partitions_tick_once_an_interval_each_at_its_own_moment() -> None:
    fakes = ticking(8)
    interval = INTERVAL
    run_cycles(fakes, [i * interval / 50 for i in range(1, 501)])  # 10 intervals
    for fake in fakes:
        assert 10 <= len(fake.at) <= 11  # 10 intervals, both ends in
        assert all(b - a == pytest.approx(interval, abs=interval / 40)
                   for a, b in zip(fake.at, fake.at[1:], strict=False))
    firsts = sorted(fake.at[0] for fake in fakes)  # spread over the interval, not bunched
    assert firsts[-1] - firsts[0] > interval / 2
    per_cycle = [sum(now in fake.at for fake in fakes) for now in {t for f in fakes for t in f.at}]
    assert max(per_cycle) <= 2


def test_a_long_cycle_does_not_leave_partitions_ticking_every_cycle() -> None:
    fakes = ticking(4)
    interval = INTERVAL
    late = 10 * interval + interval / 10
    run_cycles(fakes, [late])  # a backlog's long cycle: all are due
    assert all(len(fake.at) == 1 for fake in fakes)
    run_cycles(fakes, [late + i * interval / 50 for i in range(1, 51)])
    for fake in fakes:  # once more in the next interval, at its own moment again
        assert len(fake.at) == 2
        assert (fake.at[1] % interval) == pytest.approx(
            interval * phase(fake.number), abs=interval / 40)
