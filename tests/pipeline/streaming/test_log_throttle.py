from __future__ import annotations

import logging

from pipeline.streaming.log_throttle import RepeatThrottle


def record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_one_complaint_per_interval_then_the_count_of_those_held() -> None:
    now = [0.0]
    throttle = RepeatThrottle(interval_s=30, clock=lambda: now[0])
    template = "Unable connect to node with id %s: %s"
    shown = []
    for step in range(100):  # ten seconds of a dead broker
        now[0] = step * 0.1
        shown.append(throttle.filter(record("aiokafka.conn", template, 111, "refused")))
    assert shown.count(True) == 1
    now[0] = 31.0
    again = record("aiokafka.conn", template, 112, "refused")
    assert throttle.filter(again)
    assert again.getMessage() == ("Unable connect to node with id 112: refused "
                                  "[99 more like this in the last 31 s]")


def test_other_kinds_levels_and_loggers_pass() -> None:
    throttle = RepeatThrottle(clock=lambda: 0.0)
    assert throttle.filter(record("aiokafka.conn", "a %s", 1))
    assert throttle.filter(record("aiokafka.conn", "b %s", 1))  # another template
    assert throttle.filter(record("aiokafka.cluster", "a %s", 1))  # another logger
    assert throttle.filter(record("floodgate.worker", "x"))
    assert throttle.filter(record("floodgate.worker", "x"))  # ours are never held
    assert throttle.filter(record("aiokafka.conn", "a %s", 2, level=logging.INFO))
    assert not throttle.filter(record("aiokafka.conn", "a %s", 3))
