"""Which client errors call for a new client, and how many new clients a process may start."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from connectors.kafka.client_failures import RestartBudget, is_fatal


def test_fatal_errors_and_their_callback_form_are_fatal_others_are_not() -> None:
    assert is_fatal(KafkaException(KafkaError(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, fatal=True)))
    assert is_fatal(KafkaException(KafkaError(KafkaError._FATAL)))
    assert is_fatal(SystemError("<function Delivery.__call__> returned a result with an exception set"))
    assert not is_fatal(KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT)))
    assert not is_fatal(ValueError("bad record"))


def test_the_budget_allows_so_many_restarts_in_a_window() -> None:
    now = [0.0]
    budget = RestartBudget(limit=2, window_s=60, clock=lambda: now[0])
    assert budget.spend() and budget.spend()
    assert not budget.spend()  # a third within the minute
    now[0] = 61.0
    assert budget.spend() and budget.used == 1  # the old ones have left the window
