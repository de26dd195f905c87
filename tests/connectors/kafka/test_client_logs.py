from __future__ import annotations

import logging

from connectors.kafka.client_logs import RepeatThrottle, kafka_logger


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
    assert throttle.filter(record("aiokafka.conn", "b %s", 1))  # another message
    assert throttle.filter(record("aiokafka.cluster", "a %s", 1))  # another logger
    assert throttle.filter(record("floodgate.worker", "x"))
    assert throttle.filter(record("floodgate.worker", "x"))  # ours are never held
    assert throttle.filter(record("aiokafka.conn", "a %s", 2, level=logging.INFO))
    assert not throttle.filter(record("aiokafka.conn", "a %s", 3))


def test_librdkafka_lines_differing_only_in_numbers_are_one_kind() -> None:
    now = [0.0]
    throttle = RepeatThrottle(clock=lambda: now[0])
    fail = "%s [%s] %s"  # confluent-kafka's template for every librdkafka line
    first = record("floodgate.kafka", fail, "FAIL", "floodgate#producer-1",
                   "Connect to ipv4#127.0.0.1:35545 failed: Connection refused (after 0ms)")
    again = record("floodgate.kafka", fail, "FAIL", "floodgate#producer-1",
                   "Connect to ipv4#127.0.0.1:35545 failed: Connection refused (after 12ms)")
    other = record("floodgate.kafka", fail, "AUTH", "floodgate#producer-1",
                   "SASL authentication error: unknown-user")
    assert throttle.filter(first) and not throttle.filter(again) and throttle.filter(other)


def test_kafka_logger_is_throttled_once() -> None:
    assert kafka_logger() is kafka_logger()
    assert sum(isinstance(f, RepeatThrottle) for f in kafka_logger().filters) == 1


def test_a_record_gets_one_decision_whatever_the_number_of_handlers() -> None:
    throttle = RepeatThrottle(clock=lambda: 0.0)
    first, second = (record("aiokafka.conn", "x %s", n) for n in (1, 2))
    assert throttle.filter(first) and throttle.filter(first)  # console and file handler
    assert not throttle.filter(second) and not throttle.filter(second)
