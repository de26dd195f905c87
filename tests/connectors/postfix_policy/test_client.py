"""The policy client keeps its connection open across questions, as smtpd does, and opens
a new one when the service closed it."""

from __future__ import annotations

import socket
import threading

import pytest

from connectors.postfix_policy.client import PolicyClient, PolicyUnreachable


def serve(answers_per_connection: int) -> tuple[int, list[int]]:
    """A service answering DUNNO, closing each connection after so many answers; returns its
    port and the questions each connection got."""
    listener = socket.create_server(("127.0.0.1", 0))
    connections: list[int] = []

    def run() -> None:
        while True:
            connection, _ = listener.accept()
            connections.append(0)
            with connection:
                buffer = b""
                while connections[-1] < answers_per_connection:
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    buffer += chunk
                    while b"\n\n" in buffer:
                        _, buffer = buffer.split(b"\n\n", 1)
                        connections[-1] += 1
                        connection.sendall(b"action=DUNNO\n\n")

    threading.Thread(target=run, daemon=True).start()
    return listener.getsockname()[1], connections


def test_one_connection_for_many_questions_and_a_new_one_after_a_close() -> None:
    port, connections = serve(answers_per_connection=3)
    client = PolicyClient("127.0.0.1", port, timeout_s=5)
    answers = []
    for _ in range(3):
        answers.append(client.ask({"sasl_username": "alice"}).action)
    with pytest.raises(PolicyUnreachable):  # the service closed after its third answer
        client.ask({"sasl_username": "alice"})
    answers.append(client.ask({"sasl_username": "alice"}).action)  # a new connection
    client.close()
    assert answers == ["DUNNO"] * 4
    assert connections[:2] == [3, 1]


def test_nobody_listening_names_the_address() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(PolicyUnreachable, match=f"127.0.0.1:{port}"):
        PolicyClient("127.0.0.1", port, timeout_s=2).ask({})
