"""Spam-filter verdicts from rspamd, Amavis and SpamAssassin's spamd log lines.

Each gives the keys it has for joining with the Postfix message: rspamd and
Amavis name the queue id, spamd only the Message-ID. Amavis also names the
queue id of the copy it re-injected (``queued_as``): the same message again.

These lines also carry what the client wrote (Message-ID, sender, recipients),
which can spell a verdict or a queue id of its own, so each is read where the
filter writes it, never at the first place verdict-like text appears:

* Amavis and spamd put the verdict first (``(ID) Passed CLEAN``, ``result: Y``);
  an Amavis line whose Queue-ID or Message-ID is spelled two ways is ambiguous.
* rspamd starts with ``id: <MID>, qid: <QID>, `` and writes the verdict after
  the envelope sender: an ``RspamdLine`` is joined to the message whose own
  Message-ID and queue id start it (the longest such start: a Message-ID that
  spells another message's start is longer than that start), and its verdict
  is read right after that message's sender once the sender is known.

An ambiguous line joins no message and decides nothing (AMBIGUOUS).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_RSPAMD = re.compile(
    r"\(\S+: (?P<flag>[TFS]) \((?P<action>[^)]*)\): "
    r"\[(?P<score>-?\d+(?:\.\d+)?)/(?P<required>-?\d+(?:\.\d+)?)\]")
_AMAVIS = re.compile(r"\([\w-]+\) (?P<verb>Passed|Blocked|Not-Delivered) (?P<category>[A-Z-]+)\b")
_RSPAMD_START = re.compile(r".*?rspamd_task_write_log: id: <")
_RSPAMD_QID = re.compile(r", qid: <(?P<qid>[^>]*)>, ")
# Optional fields are searched one by one: one regex with many optional parts
# silently matches them as empty.
_FIELD = {name: re.compile(pattern) for name, pattern in {
    "amavis_qid": r"\bQueue-ID: (?P<v>\w+)",
    "amavis_mid": r"\bMessage-ID: <(?P<v>[^>]*)>",
    "amavis_hits": r"\bHits: (?P<v>-?\d+(?:\.\d+)?)",
    "amavis_queued": r"\bqueued_as: (?P<v>\w+)",
}.items()}
_SPAMD = re.compile(
    r"(?:spamd: )?result: (?P<flag>[Y.]) (?P<score>-?\d+) - .*?\bmid=<?(?P<mid>[^>,\s]*)>?", re.S)
_SPAMD_MID = re.compile(r"\bmid=<?(?P<mid>[^>,\s]*)>?")
# What rspamd writes between a message's start and "from: <": ip and user (not client text).
_RSPAMD_SENDER = re.compile(r"(?:ip: [0-9A-Fa-f:.]+, )?(?:user: [^,]*, )?")

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
    candidates: tuple[str, ...] = ()  # queue ids it may name when client text spelled more


@dataclass(frozen=True, slots=True)
class RspamdLine:
    """rspamd's task log line, from ``id: <`` on; see the module notes."""

    fields: str
    qids: tuple[str, ...]  # every queue id the line may name

    def start_length(self, message_id: str | None, qid: str) -> int:
        """Length of this message's own start of the line; 0 when the line does not start so."""
        head, tail = f"id: <{message_id or 'undef'}", f">, qid: <{qid}>, "
        if not self.fields.startswith(head):
            return 0
        # The log line the Message-ID came from may have lost trailing blanks.
        at = len(head) + len(self.fields[len(head):]) - len(self.fields[len(head):].lstrip(" "))
        return at + len(tail) if self.fields.startswith(tail, at) else 0

    def verdict(self, start_length: int, sender: str | None) -> SpamVerdict | Ambiguous | None:
        """The verdict after the message's start and its envelope sender."""
        rest = self.fields[start_length:]
        if sender is not None:
            head = f"from: <{sender}>, "
            at = rest.find(head)
            if at >= 0 and _RSPAMD_SENDER.fullmatch(rest, 0, at):
                m = _RSPAMD.match(rest, at + len(head))
                if m is not None:
                    return SpamVerdict("rspamd", _rspamd_spam(m), float(m["score"]), None, None)
        try:  # the sender not as Postfix logged it: every reading must agree
            m = _one(_RSPAMD, rest, lambda m: (_rspamd_spam(m), m["score"]))
        except _Ambiguous:
            return AMBIGUOUS
        if m is None:
            return None
        return SpamVerdict("rspamd", _rspamd_spam(m), float(m["score"]), None, None)


class Ambiguous:
    __slots__ = ()

    def __repr__(self) -> str:
        return "AMBIGUOUS"


AMBIGUOUS = Ambiguous()


class _Ambiguous(Exception):
    """A field read two ways: the line decides nothing."""


def parse_verdict(tag: str, message: str) -> SpamVerdict | RspamdLine | Ambiguous | None:
    """The verdict in a spam filter's line, None when the line holds none, AMBIGUOUS when
    client text in it spells a second, different verdict or key."""
    try:
        return _parse_verdict(tag, message)
    except _Ambiguous:
        return AMBIGUOUS


def _parse_verdict(tag: str, message: str) -> SpamVerdict | RspamdLine | None:
    if "rspamd_task_write_log" in message:
        return _rspamd(message)
    if tag.startswith("amavis") and (" Passed " in message or " Blocked " in message
                                     or " Not-Delivered " in message):
        return _amavis(message)
    if "result: " in message and "mid=" in message:
        return _spamd(message)
    return None


def _values(name: str, message: str) -> list[str]:
    """Every distinct value of an optional field (client text may spell more than one)."""
    found = dict.fromkeys(m["v"] for m in _FIELD[name].finditer(message))
    return [v for v in found if v not in ("", "undef")]


def _only(values: list[str]) -> str | None:
    """The field's value when the line spells exactly one."""
    return values[0] if len(values) == 1 else None


def _one(pattern: re.Pattern[str], message: str,
         key: Callable[[re.Match[str]], object]) -> re.Match[str] | None:
    """The match of ``pattern``; every other match must read the same (``key``)."""
    matches = list(pattern.finditer(message))
    if len({key(m) for m in matches}) > 1:
        raise _Ambiguous(pattern.pattern)
    return matches[0] if matches else None


def _rspamd(message: str) -> RspamdLine | None:
    start = _RSPAMD_START.match(message)
    if start is None or _RSPAMD.search(message) is None:
        return None
    fields = "id: <" + message[start.end():]
    qids = tuple(dict.fromkeys(m["qid"] for m in _RSPAMD_QID.finditer(fields)))
    return RspamdLine(fields, qids) if qids else None


def _rspamd_spam(m: re.Match[str]) -> bool:
    return m["flag"] == "T" or m["action"].strip() in _RSPAMD_SPAM_ACTIONS


def _amavis(message: str) -> SpamVerdict | None:
    m = _AMAVIS.match(message)
    if m is None:
        return None
    category = m["category"]
    spam: bool | None = True if category in _AMAVIS_SPAM else (False if category == "CLEAN" else None)
    qids = _values("amavis_qid", message)
    hits = _only(_values("amavis_hits", message))
    return SpamVerdict("amavis", spam, float(hits) if hits else None, _only(qids),
                       _only(_values("amavis_mid", message)),
                       _only(_values("amavis_queued", message)),
                       tuple(qids) if len(qids) > 1 else ())


def _spamd(message: str) -> SpamVerdict | None:
    m = _SPAMD.match(message)
    if m is None:
        return None
    if len({found["mid"] for found in _SPAMD_MID.finditer(message)}) > 1:
        raise _Ambiguous("mid")
    if not m["mid"] or m["mid"] == "(unknown)":
        return None
    return SpamVerdict("spamd", m["flag"] == "Y", float(m["score"]), None, m["mid"])
