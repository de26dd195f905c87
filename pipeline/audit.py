"""Who changed what and why: one rule for every change an operator makes (the CLI, the
console), so every action and settings record carries both, readable in the SIEM."""

from __future__ import annotations

import getpass
import os

from schemas.events import MAX_NAME, MAX_TEXT


def who_and_why(actor: str, reason: str) -> tuple[str, str]:
    """Both required, printable and within the records' limits; ValueError saying which is
    wrong."""
    actor, reason = actor.strip(), reason.strip()
    if not actor or not reason:
        raise ValueError("who (actor) and why (reason) are both required")
    if len(actor) > MAX_NAME or len(reason) > MAX_TEXT:
        raise ValueError(f"actor is at most {MAX_NAME} characters, reason {MAX_TEXT}")
    if not (actor.isprintable() and reason.isprintable()):
        raise ValueError("actor and reason must be printable text")
    return actor, reason


def operator_name() -> str:
    """The person at the command line: the one who ran sudo, else the login user."""
    return os.environ.get("SUDO_USER") or getpass.getuser()
