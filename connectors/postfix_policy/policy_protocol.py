"""Postfix policy delegation wire format (SMTPD_POLICY_README), bounded and defensive.

A request is ``name=value`` lines ended by an empty line; a connection carries
many requests. The reply is one ``action=...`` line and an empty line. Two
Postfix behaviours make a careless reply dangerous: an empty action means
permit, and the action is cut at the first newline. So every reply is built
from a fixed keyword, and any text in it is stripped of control characters
and cut well below Postfix's 510-character limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from schemas.events import ActionEvent, PolicyRequest

MAX_LINE: Final = 8192  # bytes; Postfix's own attribute values are far shorter
MAX_ATTRIBUTES: Final = 128
MAX_REPLY_TEXT: Final = 450
REPLY_KEYWORDS: Final = frozenset({"DUNNO", "OK", "REJECT", "DEFER", "DEFER_IF_PERMIT", "HOLD",
                                   "WARN", "INFO"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# The attributes PolicyRequest names, in its field order (the rest go in ``other``).
REQUEST_FIELDS: Final = tuple(name for name in PolicyRequest.model_fields if name != "other")
_KNOWN = frozenset(REQUEST_FIELDS)


# What an answer does to the mail, as the console charts it and counting reads it.
ANSWER_KINDS: Final = ("dunno", "warn", "defer", "quarantine", "block", "other")
_KIND_OF_WORD: Final = {"DUNNO": "dunno", "OK": "dunno", "PREPEND": "dunno", "WARN": "warn",
                        "DEFER": "defer", "DEFER_IF_PERMIT": "defer", "DEFER_IF_REJECT": "defer",
                        "HOLD": "quarantine", "REJECT": "block"}


@dataclass(frozen=True)
class Answer:
    wire: bytes  # the reply as sent
    action: ActionEvent | None  # what decided it, None for DUNNO
    line: str = field(init=False)  # what follows ``action=``, as a PolicyEvent records it
    keyword: str = field(init=False)  # its first word, as the metrics count it

    def __post_init__(self) -> None:
        # Worked out once per answer, not once per request answered with it.
        line = self.wire.decode().removeprefix("action=").strip()
        object.__setattr__(self, "line", line)
        object.__setattr__(self, "keyword", line.split(" ", 1)[0])


class ProtocolError(ValueError):
    """The peer broke the protocol (line or request too large): close the connection."""


class RequestReader:
    """Feed bytes as they arrive; get back each complete request's attributes."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._attributes: dict[str, str] = {}
        self.malformed_lines = 0  # lines without "=", skipped (counted for the operator)

    def feed(self, data: bytes) -> list[dict[str, str]]:
        if not self._buffer and not self._attributes:
            whole = _one_clean_request(data)
            if whole is not None:
                return [whole]
        self._buffer += data
        if b"\n" not in data:
            if len(self._buffer) > MAX_LINE:
                raise ProtocolError(f"line longer than {MAX_LINE} bytes")
            return []
        *lines, rest = bytes(self._buffer).split(b"\n")
        if len(rest) > MAX_LINE:
            raise ProtocolError(f"line longer than {MAX_LINE} bytes")
        self._buffer = bytearray(rest)
        requests: list[dict[str, str]] = []
        for raw in lines:
            if len(raw) > MAX_LINE:
                raise ProtocolError(f"line longer than {MAX_LINE} bytes")
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line:
                if self._attributes:
                    requests.append(self._attributes)
                    self._attributes = {}
                continue
            name, equals, value = line.decode("utf-8", "replace").partition("=")
            if not equals or not name:
                self.malformed_lines += 1
                continue
            if len(self._attributes) >= MAX_ATTRIBUTES and name not in self._attributes:
                raise ProtocolError(f"more than {MAX_ATTRIBUTES} attributes in one request")
            self._attributes[name] = value
        return requests

    @property
    def pending(self) -> bool:
        """True while a request has started but not ended."""
        return bool(self._attributes or self._buffer)


def _one_clean_request(data: bytes) -> dict[str, str] | None:
    """The attributes of ``data`` when it is exactly one request that needs none of
    ``feed``'s care (what smtpd sends, one request a write): within one line's limit, no
    ``\\r``, every line ``name=value``. None for anything else, which ``feed`` reads line by
    line; both read a request alike (``test_policy_protocol`` holds them to it)."""
    if (len(data) > MAX_LINE or not data.endswith(b"\n\n")
            or b"\r" in data or data.startswith(b"=") or b"\n=" in data):
        return None
    lines = data[:-2].decode("utf-8", "replace").split("\n")
    if len(lines) > MAX_ATTRIBUTES:
        return None
    attributes: dict[str, str] = {}
    for line in lines:
        name, equals, value = line.partition("=")
        if not equals:
            return None  # a line without "=": ``feed`` counts it
        attributes[name] = value
    return attributes


def to_policy_request(attributes: dict[str, str]) -> PolicyRequest:
    """The request as the contract model: known attributes by name, the rest in ``other``."""
    known = {k: v for k, v in attributes.items() if k in _KNOWN}
    other = {k: v for k, v in attributes.items() if k not in _KNOWN}
    return PolicyRequest(**known, other=other)


def encode_request(attributes: dict[str, str]) -> bytes:
    """A request as Postfix writes it; ValueError for a name or value that would break it."""
    lines = []
    for name, value in attributes.items():
        if not name or "=" in name or any(c in name + value for c in "\r\n"):
            raise ValueError(f"{name}={value!r}: names need no '=', and neither may hold a "
                             "line break")
        lines.append(f"{name}={value}\n")
    return ("".join(lines) + "\n").encode()


def clean_text(text: str) -> str:
    """Reply text safe to put after a keyword: one line, printable, bounded."""
    one_line = _CONTROL.sub(" ", text).strip()
    return one_line[:MAX_REPLY_TEXT]


def reply(keyword: str, text: str = "") -> bytes:
    """``action=KEYWORD text`` and the empty line that ends it.

    ``keyword`` must be one of the known actions: anything else would make
    Postfix answer ``451 4.3.5 Server configuration error``.
    """
    if keyword not in REPLY_KEYWORDS:
        raise ValueError(f"not a policy reply keyword: {keyword!r}")
    body = f"{keyword} {clean_text(text)}".rstrip() if text else keyword
    return f"action={body}\n\n".encode()


DUNNO: Final = reply("DUNNO")
PASS: Final = Answer(DUNNO, None)  # the answer to almost every request: made once


def answer_kind(answer: str) -> str:
    """One of ``ANSWER_KINDS`` for an action line sent to Postfix (``DUNNO``,
    ``DEFER_IF_PERMIT text``, ``450 4.7.1 text``, ...)."""
    parts = answer.split(maxsplit=1)
    word = parts[0].upper() if parts else ""
    kind = _KIND_OF_WORD.get(word)
    if kind is not None:
        return kind
    return {"4": "defer", "5": "block"}.get(word[:1], "other")


def is_refusal(answer: str) -> bool:
    """Whether the answer refused the mail (deferred or rejected it)."""
    return answer_kind(answer) in ("defer", "block")
