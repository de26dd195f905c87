"""The console's HTTP guards and API, on a real socket (no Kafka needed: nothing here
reaches it)."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.http.console_server import (
    ConsoleConfigError,
    ConsoleServer,
    console_credentials,
)
from connectors.http.operators import Credentials, Visitor, networks, new_operator
from connectors.kafka.embedded_broker import free_port
from pipeline.console.live_state import ConsoleState
from schemas.config import ConsoleSettings, FloodgateConfig
from schemas.events import ActionEvent

CONFIG = FloodgateConfig.model_validate({"kafka": {"bootstrap_servers": "127.0.0.1:1"}})
CHANGE = {"Content-Type": "application/json", "X-Floodgate-Console": "1"}


def serve(token: str | None, host: str = "127.0.0.1") -> ConsoleServer:
    return ConsoleServer(f"{host}:{free_port()}", ConsoleState(CONFIG),
                         Credentials(shared_token=token)).start()


@pytest.fixture
def open_console() -> Iterator[ConsoleServer]:
    server = serve(None)
    yield server
    server.close()


def request(server: ConsoleServer, method: str, path: str, body: object = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    connection.request(method, path, body=data, headers=headers or {})
    response = connection.getresponse()
    answer = (response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    connection.close()
    return answer


def test_the_page_and_its_assets_come_from_the_package(open_console: ConsoleServer) -> None:
    status, headers, page = request(open_console, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"/static/uPlot.iife.min.js" in page and b"https://" not in page  # no CDN
    assert "default-src 'self'" in headers["content-security-policy"]
    for asset, kind in (("console.js", "text/javascript"), ("uPlot.iife.min.js", "text/javascript"),
                        ("console.css", "text/css"), ("uPlot-LICENSE.txt", "text/plain")):
        status, headers, content = request(open_console, "GET", f"/static/{asset}")
        assert status == 200 and headers["content-type"].startswith(kind) and content
    assert request(open_console, "GET", "/static/../http_server.py")[0] == 404
    assert request(open_console, "GET", "/static/%2e%2e/live_state.py")[0] == 404


def test_the_api_answers_json(open_console: ConsoleServer) -> None:
    status, _, body = request(open_console, "GET", "/api/actions?q=alice")
    assert status == 200 and json.loads(body)["actions"] == []
    top = json.loads(request(open_console, "GET", "/api/top?window=60")[2])
    assert set(top["dimensions"]) == {"sasl_username", "sender", "sender_domain", "client_ip"}
    answers = json.loads(request(open_console, "GET", "/api/answers")[2])
    assert len(answers["series"]) == 89 and answers["bucket_s"] == 10
    for window in ("61", "abc", "-60", "9" * 400):
        status, _, body = request(open_console, "GET", f"/api/top?window={window}")
        assert status == 400 and b"window must be limits or one of 60, 300, 3600" in body


def test_a_foreign_host_name_is_refused_without_a_token(open_console: ConsoleServer) -> None:
    # a page elsewhere reaching 127.0.0.1 through its own DNS name (rebinding)
    status, _, _ = request(open_console, "GET", "/api/actions", headers={"Host": "evil.example"})
    assert status == 403
    status, _, _ = request(open_console, "GET", "/api/actions", headers={"Host": "localhost:80"})
    assert status == 200


def test_changes_need_the_console_header_json_and_their_own_origin(open_console: ConsoleServer) -> None:
    lift = {"subject": "sasl_username:alice", "actor": "ann", "reason": "test"}
    assert request(open_console, "POST", "/api/actions/lift", lift,
                   {"Content-Type": "application/json"})[0] == 403
    assert request(open_console, "POST", "/api/actions/lift", lift,
                   {"X-Floodgate-Console": "1", "Content-Type": "text/plain"})[0] == 415
    status, _, body = request(open_console, "POST", "/api/actions/lift", lift,
                              {**CHANGE, "Origin": "http://evil.example"})
    assert status == 403 and b"other sites" in body
    for bad, says in ((b"[1]", b"not a JSON object"), (b"{", b"not a JSON object"),
                      (b"x" * 20_000, b"at most"),
                      (json.dumps({**lift, "actor": 7}).encode(), b"are text")):
        status, _, body = request(open_console, "POST", "/api/actions/lift", bad, CHANGE)
        assert status in (400, 413) and says in body, body


@pytest.mark.parametrize(("body", "says"), [
    ({"subject": "alice", "actor": "ann", "reason": "r"}, "type:value"),
    ({"subject": "sasl_username:", "actor": "ann", "reason": "r"}, "no value"),
    ({"subject": "sender:" + "a" * 600, "actor": "ann", "reason": "r"}, "longer than 512"),
    ({"subject": "sasl_username:alice", "actor": "", "reason": "r"}, "both required"),
    ({"subject": "sasl_username:alice", "actor": "ann"}, "both required"),
    ({"subject": "sasl_username:alice", "actor": "ann\x1b[2J", "reason": "r"}, "printable"),
    ({"subject": "sasl_username:alice", "actor": "ann", "reason": "r"}, "no action in force"),
])
def test_a_lift_says_what_is_wrong(open_console: ConsoleServer, body: dict[str, str],
                                   says: str) -> None:
    status, _, answer = request(open_console, "POST", "/api/actions/lift", body, CHANGE)
    assert status == 400 and says in json.loads(answer)["error"]


@pytest.mark.parametrize(("body", "says"), [
    ({"subject": "sender:a@b.example", "action": "nuke", "duration": "1h"}, "action must be one of"),
    ({"subject": "sender:a@b.example", "action": "block", "duration": "soon"}, "not a duration"),
    ({"subject": "sender:a@b.example", "action": "block", "duration": "99999d"}, "at most 3650d"),
    ({"subject": "sender:a@b.example", "action": "block", "duration": "0s"}, "longer than 0"),
])
def test_an_add_says_what_is_wrong(open_console: ConsoleServer, body: dict[str, str],
                                   says: str) -> None:
    status, _, answer = request(open_console, "POST", "/api/actions/add",
                                {**body, "actor": "ann", "reason": "r"}, CHANGE)
    assert status == 400 and says in json.loads(answer)["error"]


def test_with_a_token_every_request_needs_it() -> None:
    server = serve("s3cret-token")
    try:
        status, headers, _ = request(server, "GET", "/")
        assert status == 401 and headers["www-authenticate"].startswith("Basic")
        assert request(server, "GET", "/api/top", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert request(server, "GET", "/api/top",
                       headers={"Authorization": "Bearer s3cret-token"})[0] == 200
        basic = base64.b64encode(b"ann:s3cret-token").decode()
        assert request(server, "GET", "/", headers={"Authorization": f"Basic {basic}"})[0] == 200
        assert request(server, "GET", "/", headers={"Authorization": "Basic !!!"})[0] == 401
    finally:
        server.close()


def test_a_non_loopback_address_needs_a_token() -> None:
    with pytest.raises(ConsoleConfigError, match="FLOODGATE_CONSOLE_TOKEN"):
        ConsoleServer(f"0.0.0.0:{free_port()}", ConsoleState(CONFIG), Credentials())
    server = ConsoleServer(f"0.0.0.0:{free_port()}", ConsoleState(CONFIG),
                           Credentials(shared_token="t0ken")).start()
    try:
        # reached from outside loopback (any Host), the token decides
        assert request(server, "GET", "/api/actions", headers={"Host": "mail.example:1"})[0] == 401
        assert request(server, "GET", "/api/actions", headers={
            "Host": "mail.example:1", "Authorization": "Bearer t0ken"})[0] == 200
    finally:
        server.close()


class Recorder(ConsoleState):
    """The console's state, recording who each lift is by instead of publishing it."""

    def __init__(self) -> None:
        super().__init__(CONFIG)
        self.lifts: list[tuple[str, str]] = []

    def lift(self, subject: str, actor: str, reason: str, reset: bool) -> list[ActionEvent]:
        self.lifts.append((actor, reason))
        return []


def test_each_operator_s_own_token_names_the_actor(tmp_path: Path) -> None:
    """Named tokens and a trusted proxy's user: the record's actor is the credential's name,
    whatever the form says; the shared token names nobody, so the form's who is needed."""
    ann_token, ann_line = new_operator("ann")
    bob_token, bob_line = new_operator("bob@isp.example")
    operators = tmp_path / "operators"
    operators.write_text(f"# the abuse desk\n{ann_line}\n{bob_line}\n")
    settings = ConsoleSettings(operators_file=str(operators), user_header="X-Forwarded-User")
    recorder = Recorder()
    server = ConsoleServer(f"0.0.0.0:{free_port()}", recorder,
                           console_credentials(settings, "shared-secret")).start()
    lift = {"subject": "sasl_username:x", "actor": "mallory", "reason": "paid"}
    try:
        for credential, expected in (({"Authorization": f"Bearer {ann_token}"}, "ann"),
                                     ({"Authorization": f"Bearer {bob_token}"}, "bob@isp.example"),
                                     ({"X-Forwarded-User": "carol"}, "carol"),  # from loopback
                                     ({"Authorization": "Bearer shared-secret"}, "mallory")):
            status, _, body = request(server, "POST", "/api/actions/lift", lift,
                                      {**CHANGE, **credential})
            assert status == 200, body
            assert recorder.lifts[-1] == (expected, "paid")
            who = json.loads(request(server, "GET", "/api/whoami", headers=credential)[2])
            assert who["operator"] == (None if expected == "mallory" else expected)
        assert request(server, "GET", "/api/whoami",
                       headers={"Authorization": "Bearer not-a-token"})[0] == 401
    finally:
        server.close()


def test_a_proxy_s_user_is_believed_only_from_a_trusted_proxy() -> None:
    credentials = Credentials(user_header="X-Forwarded-User",
                              trusted_proxies=networks(["10.0.0.5/32"]))
    assert credentials.identify("", "carol", "10.0.0.5") == Visitor("carol")
    assert credentials.identify("", "carol", "10.0.0.6") is None
    assert credentials.identify("", "carol\x1b[2J", "10.0.0.5") is None


@pytest.mark.parametrize(("text", "says"), [
    ("ann:plaintext-token\n", ":1: write NAME:sha256:HEX"),
    (f"ann:sha256:{'0' * 64}\nann:sha256:{'1' * 64}\n", ":2: ann is listed twice"),
    ("# nobody yet\n", "names no operator"),
])
def test_an_unusable_operators_file_is_said(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "operators"
    path.write_text(text)
    with pytest.raises(ConsoleConfigError, match=says):
        console_credentials(ConsoleSettings(operators_file=str(path)), None)
