"""Faults: the policy service restarted under load: as ``systemctl restart`` does (SIGTERM),
after a crash (SIGKILL), and after a crash while the broker is frozen. Clients behave like
smtpd: two tries a second apart on a broken connection, then
``smtpd_policy_service_default_action`` (DUNNO: fail open). The service never lets a blocked
account through (``policy.state_dir`` keeps the actions across restarts, so it needs no Kafka
to start), the outages are short, and the PolicyEvents of answered requests all reach Kafka:
after SIGTERM every one, after SIGKILL all but those answered in the second before it."""

from __future__ import annotations

import itertools
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.kafka.embedded_broker import EmbeddedBroker, free_port
from connectors.kafka.topics import TopicSpec, ensure_topics
from schemas.config import KafkaSettings
from schemas.events import ActionEvent, PolicyEvent
from tests.figures import Figures
from tests.fixtures.http_probe import wait_ready
from tests.fixtures.processes import start_floodgate, stop
from tests.fixtures.topic_reader import read_to_end
from tests.fixtures.worker_process import produce

pytestmark = pytest.mark.slow
CLIENTS = 8  # smtpd processes, each with its own connection, about 100 requests/s each
REQUEST = ("request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username={user}\n"
           "sender={user}@example.net\nrecipient=r@far.example\nclient_address=10.0.0.9\n"
           "instance={instance}\n\n")


@dataclass(frozen=True)
class Try:
    sent_at: float
    seconds: float
    user: str
    instance: str
    answer: bytes | None  # None: both tries failed, smtpd's default action (DUNNO) applies


class SmtpdLikeClient(threading.Thread):
    def __init__(self, number: int, port: int, done: threading.Event) -> None:
        super().__init__(daemon=True)
        self.number, self.port, self.done = number, port, done
        self.tries: list[Try] = []
        self._conn: socket.socket | None = None

    def run(self) -> None:
        n = 0
        while not self.done.is_set():
            user = "mallory" if n % 4 == 0 else f"user{self.number}"
            instance = f"c{self.number}.{n}"
            started = time.monotonic()
            answer = self._ask(REQUEST.format(user=user, instance=instance).encode())
            self.tries.append(Try(started, time.monotonic() - started, user, instance, answer))
            n += 1
            time.sleep(0.01)

    def _ask(self, request: bytes) -> bytes | None:
        for attempt in range(2):  # smtpd_policy_service_try_limit = 2
            try:
                if self._conn is None:
                    self._conn = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                self._conn.sendall(request)
                answer = b""
                while not answer.endswith(b"\n\n"):
                    chunk = self._conn.recv(4096)
                    if not chunk:
                        raise ConnectionResetError("closed")
                    answer += chunk
                return answer
            except OSError:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                if attempt == 0:
                    time.sleep(1.0)  # smtpd_policy_service_retry_delay
        return None


def test_policy_service_restarted_under_load(tmp_path: Path, figures: Figures) -> None:
    broker = EmbeddedBroker(tmp_path / "broker.log")  # its own: this test freezes it
    broker.start()
    kafka_settings = KafkaSettings(bootstrap_servers=broker.bootstrap)
    run = uuid.uuid4().hex[:6]
    actions, events = f"actions-{run}", f"policy-{run}"
    ensure_topics(kafka_settings, [TopicSpec(actions, 2), TopicSpec(events, 2)])
    now = datetime.now(UTC)
    block = ActionEvent(action_id=f"restart-{run}", ts=now, subject_type="sasl_username",
                        subject="mallory", action="block", threshold="t", state="active",
                        origin="auto", triggered_at=now, expires_at=now + timedelta(hours=1))
    produce(kafka_settings, actions, [block.model_dump_json().encode()], [block.key])
    port, health = free_port(), free_port()
    config = tmp_path / "floodgate.yaml"
    config.write_text(f"kafka: {{bootstrap_servers: '{kafka_settings.bootstrap_servers}'}}\n"
                      f"topics: {{actions: {actions}, policy_events: {events}}}\n"
                      f"policy: {{listen: '127.0.0.1:{port}', health_listen: '127.0.0.1:{health}',"
                      f" state_dir: '{tmp_path / 'state'}'}}\n")
    service = lambda: start_floodgate(["policy-server", "--config", str(config)],  # noqa: E731
                                      tmp_path / "policy.log")
    process = service()
    done = threading.Event()
    clients = [SmtpdLikeClient(n, port, done) for n in range(CLIENTS)]
    restarts: list[tuple[str, float]] = []
    try:
        wait_ready(health, 60)
        for client in clients:
            client.start()
        for sig, frozen in ((signal.SIGTERM, False), (signal.SIGKILL, False),
                            (signal.SIGKILL, True)):
            time.sleep(5)
            if frozen:
                broker.pause()
            restarts.append((sig.name + " with the broker frozen" * frozen, time.monotonic()))
            stop(process, sig)
            process = service()  # as systemd's Restart= would
            if frozen:  # it answers from state_dir; ready (caught up) only once Kafka is back
                time.sleep(10)
                broker.resume()
            wait_ready(health, 60)
        time.sleep(5)
        done.set()
        for client in clients:
            client.join(30)
        stop(process)  # SIGTERM: what it still holds goes to Kafka first
        raw = read_to_end(kafka_settings, events, 2)
        published = {PolicyEvent.model_validate_json(v).request.instance for v in raw}
    finally:
        stop(process)
        broker.stop()
    tries = [t for client in clients for t in client.tries]
    answered = [t for t in tries if t.answer is not None]

    let_through = [t for t in answered
                   if t.user == "mallory" and not (t.answer or b"").startswith(b"action=REJECT")]
    assert not let_through, f"the blocked account got {let_through[0].answer!r}"
    assert all(t.answer == b"action=DUNNO\n\n" for t in answered if t.user != "mallory")
    first_try = [t.seconds for t in answered if t.seconds < 1.0]
    assert max(first_try) < 0.5
    failed_open = [t for t in tries if t.answer is None]
    outages = [_outage(tries, at) for _, at in restarts]
    assert all(outage < 5.0 for outage in outages), outages
    assert len(failed_open) < CLIENTS * 2 * 3  # a few per client and restart, no more

    missing = [t for t in answered if t.instance not in published]
    kills = [at for name, at in restarts if name.startswith("SIGKILL")]
    # lost: answered in the second before the kill, or in the moment the signal takes to land
    assert all(any(at - 1.0 <= t.sent_at + t.seconds <= at + 0.5 for at in kills)
               for t in missing), \
        f"{len(missing)} events missing, some not answered just before a SIGKILL: " \
        f"{[(t.instance, [round(t.sent_at + t.seconds - at, 3) for _, at in restarts]) for t in missing]}"
    assert not [t for t in missing if t.sent_at + t.seconds < kills[0] - 1.0]  # SIGTERM: none
    figures.add("policy service restarted: SIGTERM, SIGKILL, SIGKILL with the broker frozen",
                f"{len(tries):,} requests from {CLIENTS} smtpd-like clients",
                f"blocked account never let through; no answer for "
                f"{'/'.join(f'{o:.1f}' for o in outages)} s; {len(failed_open)} fell to smtpd's "
                "default action", lost=len(missing), worst_ms=max(first_try) * 1000)
    print(f"{len(tries):,} requests from {CLIENTS} smtpd-like clients; restarts "
          f"({'; '.join(name for name, _ in restarts)}) left them without an answer for "
          f"{', '.join(f'{o:.1f}' for o in outages)} s; {len(failed_open)} fell to smtpd's "
          f"default action; the blocked account never let through; slowest first-try answer "
          f"{max(first_try) * 1000:.1f} ms; policy events missing after SIGTERM 0, "
          f"after the SIGKILLs {len(missing)}")


def _outage(tries: list[Try], stopped_at: float) -> float:
    """The longest time without any answer to any client, around the stop signal."""
    ends = sorted(t.sent_at + t.seconds for t in tries if t.answer is not None
                  and stopped_at - 1 <= t.sent_at + t.seconds <= stopped_at + 15)
    return max(later - earlier for earlier, later in itertools.pairwise(ends))
