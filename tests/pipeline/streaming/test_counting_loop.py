"""The counting loop's answer to failing Kafka clients: new clients from the last checkpoint, a
few times; past that the worker stops (its supervisor takes over). The clients themselves are
exercised against a broker in test_worker*.py and tests/robustness/."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from confluent_kafka import OFFSET_INVALID, KafkaError, TopicPartition

from connectors.kafka.client_failures import RestartBudget
from pipeline.engine.evaluator import ThresholdEngine
from pipeline.streaming import counting_loop
from pipeline.streaming.counting_loop import CountingLoop
from pipeline.streaming.metrics import WorkerMetrics
from pipeline.streaming.router import Router, SubjectPartitioner
from schemas.config import FloodgateConfig, KafkaSettings
from tests.pipeline.engine.builders import mail

ALLOWED = RestartBudget().limit


class Flaky(CountingLoop):
    """Clients that fail ``failures`` times, then run until stopped."""

    def __init__(self, failures: int, stop_on_failure: bool = False) -> None:
        super().__init__(FloodgateConfig(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1")),
                         WorkerMetrics())
        self.failures, self.lives, self.stop_on_failure = failures, 0, stop_on_failure

    def _run_clients(self) -> None:
        self.lives += 1
        if self.lives <= self.failures:
            if self.stop_on_failure:
                self.stop()  # the worker is told to stop while its clients fail
            raise SystemError("fatal producer error")


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counting_loop, "RESTART_PAUSE_S", 0.0)


def restarts(loop: CountingLoop) -> float:
    return loop._metrics.restarts._value.get()  # type: ignore[attr-defined]


def test_failed_clients_are_replaced_and_counted() -> None:
    loop = Flaky(failures=ALLOWED)
    loop.run()
    assert loop.lives == ALLOWED + 1
    assert restarts(loop) == ALLOWED


def test_a_loop_that_keeps_failing_gives_up() -> None:
    loop = Flaky(failures=ALLOWED + 1)
    with pytest.raises(SystemError):
        loop.run()
    assert loop.lives == ALLOWED + 1


def test_a_stop_during_a_failure_ends_the_loop_without_new_clients() -> None:
    loop = Flaky(failures=1, stop_on_failure=True)
    loop.run()
    assert loop.lives == 1


class EndOfPartition:
    """A confluent-kafka PARTITION_EOF event: its offset is where the partition ends."""

    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self._where = (topic, partition, offset)

    def error(self) -> KafkaError:
        return KafkaError(KafkaError._PARTITION_EOF)

    def topic(self) -> str:
        return self._where[0]

    def partition(self) -> int:
        return self._where[1]

    def offset(self) -> int:
        return self._where[2]


class AtTheEnd:
    """A consumer assigned partitions whose committed offsets are their ends: librdkafka's
    position stays unknown (-1001) until a record is consumed, which never comes."""

    def __init__(self, ends: dict[tuple[str, int], int]) -> None:
        self.ends = ends

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in self.ends]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, OFFSET_INVALID) for tp in partitions]

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool) -> tuple[int, int]:
        return 0, self.ends[(tp.topic, tp.partition)]


def test_partitions_with_nothing_left_to_read_after_a_restart_show_no_lag() -> None:
    config = FloodgateConfig(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"))
    loop = CountingLoop(config, WorkerMetrics())
    ends = {(config.topics.mail_events, 0): 120, (config.topics.subject_events, 0): 40}
    loop._consumer = AtTheEnd(ends)  # type: ignore[assignment]
    loop._router = Router(ThresholdEngine(config), SubjectPartitioner(1), 0)
    for topic in (config.topics.mail_events, config.topics.subject_events):
        loop._metrics.lag.labels(topic).set(-1)  # not measured yet
    loop._handle([EndOfPartition(t, p, end) for (t, p), end in ends.items()])
    loop._measure_lag()
    for topic in (config.topics.mail_events, config.topics.subject_events):
        assert loop._metrics.lag.labels(topic)._value.get() == 0  # type: ignore[attr-defined]


class Pausing:
    """A consumer that records what it was told to pause and resume."""

    def __init__(self) -> None:
        self.paused: set[tuple[str, int]] = set()

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= {(tp.topic, tp.partition) for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {(tp.topic, tp.partition) for tp in partitions}


class Held:
    def __init__(self, held: int) -> None:
        self.order = self
        self.held = held


def test_sources_far_ahead_are_paused_only_when_much_is_held_and_resumed_after() -> None:
    config = FloodgateConfig(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"))
    loop = CountingLoop(config, WorkerMetrics())
    consumer = loop._consumer = Pausing()  # type: ignore[assignment]
    engine = ThresholdEngine(config)
    router = loop._router = Router(engine, SubjectPartitioner(1), 0)
    slow, fast = (config.topics.mail_events, 0), (config.topics.mail_events, 1)
    loop._assigned_sources = {slow, fast}
    lead = loop._lead_ms
    router.route(slow, 0, mail(at_ms=0).model_dump_json().encode())
    router.route(fast, 0, mail(at_ms=lead + 1).model_dump_json().encode())
    loop._partitions = {0: Held(loop._max_held // 2)}  # type: ignore[dict-item]
    loop._pace()
    assert consumer.paused == set()  # memory is not at stake: no fetch is wasted
    loop._partitions = {0: Held(loop._max_held)}  # type: ignore[dict-item]
    loop._pace()
    assert consumer.paused == {fast}
    router.route(slow, 1, mail(at_ms=lead // 2).model_dump_json().encode())
    loop._pace()
    assert consumer.paused == {fast}  # not yet half way
    router.route(slow, 2, mail(at_ms=lead // 2 + 1).model_dump_json().encode())
    loop._pace()
    assert consumer.paused == set()


class _Ticked:
    """A counting partition as ``_tick_due`` sees it: records when it was ticked."""

    def __init__(self, number: int, next_tick: float) -> None:
        self.number, self.next_tick = number, next_tick
        self.at: list[float] = []
        self.order = SimpleNamespace(watermark=lambda: 1_000, frontier=(900, "x"))
        self.counter = SimpleNamespace(tick=self._tick)
        self._now = 0.0

    def _tick(self, watermark: int, counted: int | None) -> SimpleNamespace:
        assert (watermark, counted) == (1_000, 900)
        self.at.append(self._now)
        return SimpleNamespace(dropped=0)


def ticking_loop(partitions: int) -> tuple[CountingLoop, list[_Ticked]]:
    loop = CountingLoop(FloodgateConfig(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1")),
                        WorkerMetrics())
    fakes = [_Ticked(n, loop._tick_s * counting_loop._phase(n)) for n in range(partitions)]
    loop._partitions = dict(enumerate(fakes))  # type: ignore[arg-type]
    return loop, fakes


def run_cycles(loop: CountingLoop, fakes: list[_Ticked], times: list[float]) -> None:
    for now in times:
        for fake in fakes:
            fake._now = now
        loop._tick_due(now)


def test_partitions_tick_once_an_interval_each_at_its_own_moment() -> None:
    loop, fakes = ticking_loop(8)
    interval = loop._tick_s
    run_cycles(loop, fakes, [i * interval / 50 for i in range(1, 501)])  # 10 intervals
    for fake in fakes:
        assert 10 <= len(fake.at) <= 11  # 10 intervals, both ends in
        assert all(b - a == pytest.approx(interval, abs=interval / 40)
                   for a, b in zip(fake.at, fake.at[1:], strict=False))
    firsts = sorted(fake.at[0] for fake in fakes)  # spread over the interval, not bunched
    assert firsts[-1] - firsts[0] > interval / 2
    per_cycle = [sum(now in fake.at for fake in fakes) for now in {t for f in fakes for t in f.at}]
    assert max(per_cycle) <= 2


def test_a_long_cycle_does_not_leave_partitions_ticking_every_cycle() -> None:
    loop, fakes = ticking_loop(4)
    interval = loop._tick_s
    late = 10 * interval + interval / 10
    run_cycles(loop, fakes, [late])  # a backlog's long cycle: all are due
    assert all(len(fake.at) == 1 for fake in fakes)
    run_cycles(loop, fakes, [late + i * interval / 50 for i in range(1, 51)])
    for fake in fakes:  # once more in the next interval, at its own moment again
        assert len(fake.at) == 2
        assert (fake.at[1] % interval) == pytest.approx(
            interval * counting_loop._phase(fake.number), abs=interval / 40)
