"""The console over HTTP: one page, its static files, and the JSON API behind each panel.

GET  /                       the page
GET  /static/NAME            its script, style sheet and the chart library (uPlot, MIT)
GET  /api/actions?q=TEXT     actions in force (q: text the subject contains)
GET  /api/top?window=limits  the subjects nearest a threshold's limit (the default)
GET  /api/top?window=S       top subjects over the last S seconds (60, 300 or 3600)
GET  /api/answers            policy answers by kind, 10-second buckets, 15 minutes
GET  /api/status             readers' progress and the summary's size
GET  /api/whoami             {"operator": the name changes are recorded under, or null}
POST /api/actions/lift       {"subject", "actor", "reason", "reset"}
POST /api/actions/add        {"subject", "action", "duration", "actor", "reason"}
GET  /api/settings?subject=S a subject's settings and the numbers it gets
POST /api/settings/set       {"subject", "class", "overrides" ("burst.messages=600, ..."),
                             "off" ("threshold, ..."), "exempt", "actor", "reason"}
POST /api/settings/unset     {"subject", "actor", "reason"}

Guards: with credentials (``connectors.http.operators``: each operator's own
token, a reverse proxy's signed-in user, or one shared FLOODGATE_CONSOLE_TOKEN)
every request needs one (``Authorization: Bearer TOKEN``, or basic auth with
TOKEN as the password, which a browser asks for itself); on a non-loopback
address a credential is required to start at all. A change made with a named
credential is recorded under that name, whatever the form says; otherwise the
form's "who" is required. Without credentials the Host header must name the
loopback address, so a web page
elsewhere cannot reach the console through a DNS name that points at
127.0.0.1. A change (POST) must carry ``X-Floodgate-Console: 1`` and JSON, and
an Origin, when sent, must be the console's own: another site's page can
neither send that header without the console's consent (CORS), nor post
through the operator's browser.
"""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler
from importlib import resources
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from connectors.http.operators import (
    Credentials,
    CredentialsError,
    Visitor,
    networks,
    read_operators,
)
from connectors.http.server import SmallHttpServer, is_loopback_host, split_listen
from connectors.kafka.errors import NotConfirmed
from schemas.config import ConsoleSettings
from schemas.events import ActionEvent
from schemas.subject_settings import SubjectSettings

log = logging.getLogger("floodgate.console")

TOKEN_ENV = "FLOODGATE_CONSOLE_TOKEN"  # in schemas.config_file.NOT_SETTINGS
MAX_BODY = 16_384
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".txt": "text/plain; charset=utf-8"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class ConsoleConfigError(ValueError):
    """The console cannot start as configured (e.g. open address without a token)."""


CHANGES = ("/api/actions/lift", "/api/actions/add", "/api/settings/set", "/api/settings/unset")
TEXT_FIELDS = ("subject", "actor", "reason", "action", "duration", "class", "overrides", "off")


class OperatorError(ValueError):
    """A lift or add the operator got wrong: the message says what (answered 400)."""


class ConsoleBackend(Protocol):
    """What the console's pages and API read and change (``pipeline.console.live_state``)."""

    def actions(self, query: str) -> dict[str, Any]: ...
    def top(self, view_s: int) -> dict[str, Any]: ...
    def near(self) -> dict[str, Any]: ...
    def answers(self) -> dict[str, Any]: ...
    def status(self) -> dict[str, Any]: ...
    def lift(self, subject: str, actor: str, reason: str, reset: bool) -> list[ActionEvent]: ...
    def add(self, subject: str, action: str, duration: str, actor: str,
            reason: str) -> ActionEvent: ...
    def subject_settings(self, subject: str) -> dict[str, Any]: ...
    def set_settings(self, subject: str, subject_class: str, overrides: str, off: str,
                     exempt: bool, actor: str, reason: str) -> SubjectSettings: ...
    def unset_settings(self, subject: str, actor: str, reason: str) -> str: ...


def static_files() -> dict[str, tuple[bytes, str]]:
    """Every file the page needs, read once from the package: name -> (content, type)."""
    root = resources.files("connectors.http") / "static"
    files = {}
    for entry in root.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _TYPES:
            files[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return files


class ConsoleServer:
    def __init__(self, listen: str, state: ConsoleBackend, credentials: Credentials) -> None:
        host, _ = split_listen(listen)
        if not is_loopback_host(host) and not credentials.required:
            raise ConsoleConfigError(
                f"console.listen {listen} is not a loopback address: give operators their own "
                f"tokens (console.operators_file), sign them in at a reverse proxy "
                f"(console.user_header), or set {TOKEN_ENV} (a long random secret) so that "
                "only operators can see and change actions")
        self._state, self._credentials = state, credentials
        self._files = static_files()
        try:
            self._server = SmallHttpServer(listen, self._handle, "console-http", ("GET", "POST"),
                                           quiet=False, server_name="floodgate-console")
        except OSError as exc:
            raise ConsoleConfigError(f"cannot serve the console on {listen}: "
                                     f"{exc.strerror or exc}") from None

    @property
    def url(self) -> str:
        host, port = self._server.address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def start(self) -> ConsoleServer:
        self._server.start()
        return self

    def close(self) -> None:
        self._server.close()

    # -- one request --------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        try:
            status, body, kind, extra = self._route(request, method)
        except Exception:  # a bug must cost one request, never the server
            log.exception("console request %s %s failed", method, request.path)
            status, body, kind, extra = _json(500, {"error": "internal error (see the log)"})
        request.send_response(status)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(body)))
        request.send_header("Cache-Control", "no-store")
        for name, value in {**_SECURITY_HEADERS, **extra}.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(body)

    def _route(self, request: BaseHTTPRequestHandler, method: str
               ) -> tuple[int, bytes, str, dict[str, str]]:
        visitor = self._visitor(request)
        if not isinstance(visitor, Visitor):
            return visitor
        url = urlsplit(request.path)
        query = parse_qs(url.query)
        if method == "GET":
            if url.path == "/api/whoami":
                return _json(200, {"operator": visitor.name})
            return self._get(url.path, query)
        return self._post(request, url.path, visitor)

    def _get(self, path: str, query: dict[str, list[str]]) -> tuple[int, bytes, str, dict[str, str]]:
        if path in ("/", "/index.html"):
            content, kind = self._files["index.html"]
            return 200, content, kind, {}
        if path.startswith("/static/") and path[8:] in self._files:
            content, kind = self._files[path[8:]]
            return 200, content, kind, {}
        if path == "/api/actions":
            return _json(200, self._state.actions(query.get("q", [""])[0][:200]))
        if path == "/api/top":
            window = query.get("window", ["limits"])[0]
            if window == "limits":
                return _json(200, self._state.near())
            try:
                return _json(200, self._state.top(int(window) if window.isdigit() else -1))
            except ValueError as exc:
                return _json(400, {"error": str(exc)})
        if path == "/api/answers":
            return _json(200, self._state.answers())
        if path == "/api/status":
            return _json(200, self._state.status())
        if path == "/api/settings":
            try:
                return _json(200, self._state.subject_settings(query.get("subject", [""])[0]))
            except OperatorError as exc:
                return _json(400, {"error": str(exc)})
        return _json(404, {"error": f"no such page: {path[:100]}"})

    def _post(self, request: BaseHTTPRequestHandler, path: str, visitor: Visitor
              ) -> tuple[int, bytes, str, dict[str, str]]:
        if path not in CHANGES:
            return _json(404, {"error": f"no such action: {path[:100]}"})
        if request.headers.get("X-Floodgate-Console") != "1":
            return _json(403, {"error": "a change needs the header X-Floodgate-Console: 1"})
        if not (request.headers.get("Content-Type") or "").startswith("application/json"):
            return _json(415, {"error": "send JSON (Content-Type: application/json)"})
        try:
            length = int(request.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            return _json(413 if length > MAX_BODY else 411,
                         {"error": f"a JSON body of at most {MAX_BODY} bytes is needed"})
        try:
            body = json.loads(request.rfile.read(length))
            if not isinstance(body, dict):
                raise ValueError
        except (ValueError, UnicodeDecodeError):
            return _json(400, {"error": "the body is not a JSON object"})
        fields = {name: body.get(name) for name in TEXT_FIELDS}
        if any(value is not None and not isinstance(value, str) for value in fields.values()):
            return _json(400, {"error": f"{', '.join(TEXT_FIELDS)} are text"})
        text = {name: value or "" for name, value in fields.items()}
        if visitor.name is not None:  # the credential says who, not the form
            text["actor"] = visitor.name
        try:
            if path == "/api/settings/set":
                record = self._state.set_settings(
                    text["subject"], text["class"], text["overrides"], text["off"],
                    body.get("exempt") is True, text["actor"], text["reason"])
                return _json(200, {"set": record.subject, "settings": record.describe()})
            if path == "/api/settings/unset":
                return _json(200, {"unset": self._state.unset_settings(
                    text["subject"], text["actor"], text["reason"])})
            if path.endswith("/lift"):
                lifts = self._state.lift(text["subject"], text["actor"], text["reason"],
                                         body.get("reset") is True)
                return _json(200, {"lifted": [a.action_id for a in lifts]})
            action = self._state.add(text["subject"], text["action"], text["duration"],
                                     text["actor"], text["reason"])
            return _json(200, {"added": action.action_id, "until": action.expires_at.isoformat()})
        except OperatorError as exc:
            return _json(400, {"error": str(exc)})
        except NotConfirmed as exc:
            return _json(503, {"error": str(exc)})

    def _visitor(self, request: BaseHTTPRequestHandler
                 ) -> Visitor | tuple[int, bytes, str, dict[str, str]]:
        """Who the request comes from, or the answer refusing it."""
        credentials = self._credentials
        visitor = Visitor(None)
        if credentials.required:
            proxy_user = (request.headers.get(credentials.user_header)
                          if credentials.user_header else None)
            found = credentials.identify(request.headers.get("Authorization") or "",
                                         proxy_user, request.client_address[0])
            if found is None:
                return _json(401, {"error": "sign in: the console needs an operator's token"},
                             {"WWW-Authenticate": 'Basic realm="Floodgate console", charset="UTF-8"'})
            visitor = found
        else:
            host = (request.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
            if not is_loopback_host(host):
                return _json(403, {"error": "open the console at its loopback address"})
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("Host"):
            return _json(403, {"error": "requests from other sites are refused"})
        return visitor


def console_credentials(settings: ConsoleSettings, shared_token: str | None) -> Credentials:
    """The console's credentials from its settings and the environment's shared token;
    ConsoleConfigError when the operators file cannot be used."""
    try:
        operators = read_operators(settings.operators_file) if settings.operators_file else {}
    except CredentialsError as exc:
        raise ConsoleConfigError(str(exc)) from None
    return Credentials(shared_token or None, operators, settings.user_header,
                       networks(settings.trusted_proxies))


def _json(status: int, document: Any, extra: dict[str, str] | None = None
          ) -> tuple[int, bytes, str, dict[str, str]]:
    return status, json.dumps(document).encode(), "application/json", extra or {}
