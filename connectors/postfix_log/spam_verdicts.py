"""Spam-filter verdicts from rspamd, Amavis and SpamAssassin's spamd log lines.

Each gives the keys it has for joining with the Postfix message: rspamd and
Amavis name the queue id, spamd only the Message-ID. Amavis also names the
queue id of the copy it re-injected (``queued_as``): the same message again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_RSPAMD = re.compile(
    r"\(\S+: (?P<flag>[TFS]) \((?P<action>[^)]*)\): "
    r"\[(?P<score>-?\d+(?:\.\d+)?)/(?P<required>-?\d+(?:\.\d+)?)\]")
_AMAVIS = re.compile(r"\([\w-]+\) (?P<verb>Passed|Blocked|Not-Delivered) (?P<category>[A-Z-]+)\b")
# Optional fields are searched one by one: one regex with many optional parts
# silently matches them as empty.
_FIELD = {name: re.compile(pattern) for name, pattern in {
    "rspamd_qid": r"\bqid: <(?P<v>[^>]*)>",
    "rspamd_mid": r"\bid: <(?P<v>[^>]*)>",
    "amavis_qid": r"\bQueue-ID: (?P<v>\w+)",
    "amavis_mid": r"\bMessage-ID: <(?P<v>[^>]*)>",
    "amavis_hits": r"\bHits: (?P<v>-?\d+(?:\.\d+)?)",
    "amavis_queued": r"\bqueued_as: (?P<v>\w+)",
}.items()}
_SPAMD = re.compile(
    r"(?:spamd: )?result: (?P<flag>[Y.]) (?P<score>-?\d+) - .*?\bmid=<?(?P<mid>[^>,\s]*)>?", re.S)

# rspamd actions that mean "this is spam" (greylist and soft reject are not verdicts).
_RSPAMD_SPAM_ACTIONS = frozenset({"reject", "add header", "rewrite subject", "discard", "quarantine"})
_AMAVIS_SPAM = frozenset({"SPAM", "SPAMMY", "INFECTED"})


@dataclass(frozen=True, slots=True)
class SpamVerdict:
    filter: str  # rspamd | amavis | spamd
    spam: bool | None
    score: float | None
    qid: str | None
    message_id: str | None
    queued_as: str | None = None


def parse_verdict(tag: str, message: str) -> SpamVerdict | None:
    """The verdict in a spam filter's line, or None when the line holds none."""
    if "rspamd_task_write_log" in message:
        return _rspamd(message)
    if tag.startswith("amavis") and (" Passed " in message or " Blocked " in message
                                     or " Not-Delivered " in message):
        return _amavis(message)
    if "result: " in message and "mid=" in message:
        return _spamd(message)
    return None


def _field(name: str, message: str) -> str | None:
    m = _FIELD[name].search(message)
    return m["v"] if m and m["v"] not in ("", "undef") else None


def _rspamd(message: str) -> SpamVerdict | None:
    m = _RSPAMD.search(message)
    if m is None:
        return None
    spam = m["flag"] == "T" or m["action"].strip() in _RSPAMD_SPAM_ACTIONS
    return SpamVerdict("rspamd", spam, float(m["score"]), _field("rspamd_qid", message),
                       _field("rspamd_mid", message))


def _amavis(message: str) -> SpamVerdict | None:
    m = _AMAVIS.search(message)
    if m is None:
        return None
    category = m["category"]
    spam: bool | None = True if category in _AMAVIS_SPAM else (False if category == "CLEAN" else None)
    hits = _field("amavis_hits", message)
    return SpamVerdict("amavis", spam, float(hits) if hits else None, _field("amavis_qid", message),
                       _field("amavis_mid", message), _field("amavis_queued", message))


def _spamd(message: str) -> SpamVerdict | None:
    m = _SPAMD.search(message)
    if m is None or not m["mid"] or m["mid"] == "(unknown)":
        return None
    return SpamVerdict("spamd", m["flag"] == "Y", float(m["score"]), None, m["mid"])
