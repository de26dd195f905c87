"""Webhook alerts: retried after a failure, sent once per action id, only for new actions."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from connectors.siem.webhook import Webhook
from tests.fixtures.siem_records import action


class Receiver(BaseHTTPRequestHandler):
    statuses: ClassVar[list[int]] = []
    bodies: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = Receiver.statuses.pop(0) if Receiver.statuses else 200
        if status == 200:
            Receiver.bodies.append(json.loads(body))
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_retried_then_delivered_once_per_action() -> None:
    Receiver.statuses, Receiver.bodies = [500, 503], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    waits: list[float] = []
    hook = Webhook(f"http://127.0.0.1:{server.server_address[1]}/alerts", sleep=waits.append)
    try:
        assert hook.notify(action()) is True  # after two failures
        assert hook.notify(action()) is False  # the same action id again: not re-sent
        assert hook.notify(action(state="expired")) is False  # only new actions alert
        assert hook.notify(action(action_id="other")) is True
    finally:
        server.shutdown()
    assert waits == [1, 2]
    assert [b["action"]["action_id"] for b in Receiver.bodies] == ["a1b2", "other"]  # type: ignore[index]
    assert "defer sasl_username alice" in str(Receiver.bodies[0]["text"])
    assert hook.delivered == 2 and hook.failed == 0


def test_gives_up_after_the_attempts_and_says_so() -> None:
    hook = Webhook("http://127.0.0.1:9/nothing-listens", attempts=2, timeout_s=1,
                   sleep=lambda _s: None)
    assert hook.notify(action()) is False
    assert hook.failed == 1


def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="http"):
        Webhook("file:///etc/passwd")
