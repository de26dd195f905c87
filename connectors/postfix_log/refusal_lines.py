"""Postfix's refusal lines read by their structure, knowing which parts a client wrote.

smtpd and the before-queue proxy end a refusal with a fixed trailer::

    REPLY; from=<SENDER> to=<RECIPIENT> proto=ESMTP helo=<HELO>

and cleanup's header/body checks with the same trailer after the header text,
followed by the operator's text (``...; from=<S> to=<R> proto=P helo=<H>: TEXT``).
Every field is optional. SENDER, RECIPIENT and HELO are what the client sent;
Postfix logs an address with a quoted local part when it holds ``>``, ``;`` or
a blank, but the HELO name as sent, and the reply often echoes them, so a line
can have several readings. A value is taken only when every reading agrees on
it; the rest are None (nothing is decided from them: the message keeps what
its session established, the smtpd ``client=`` line, the SASL login, the queue
record).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FIELDS = ((" from=<", True), (" to=<", True), (" proto=", False), (" helo=<", True))
_PROTO = re.compile(r"[A-Za-z0-9]{1,16}")
_STARTS = re.compile(r";(?= from=<| to=<| proto=| helo=<|: |\Z)")
_HELO_ENDS = re.compile(r">(?=: |\Z)")
_BLANKS = re.compile(r" {2,}")
_UNESCAPE = re.compile(r"\\(.)")
MAX_STARTS = 16  # more places a trailer could start than this: not worth reading, ambiguous
MAX_READINGS = 16


@dataclass(frozen=True, slots=True)
class Trailer:
    """A refusal's reply before the trailer, its fields and the text after (None: the
    readings disagree on it, or it is absent)."""

    reply: str | None
    sender: str | None
    recipient: str | None
    helo: str | None
    text: str | None  # cleanup's ": TEXT" (the operator's header/body check text)


def read_trailer(line: str, with_text: bool = False) -> Trailer | None:
    """What every reading of ``line`` (the part after ``from NAME[IP]: `` or ``STAGE: ``)
    agrees on; None when it has no reading, or too many to weigh.

    ``with_text``: cleanup's form, where ``: TEXT`` may follow the trailer.
    """
    starts = [m.end() for m in _STARTS.finditer(line)]
    if len(starts) > MAX_STARTS:
        return None
    readings: list[Trailer] = []
    for start in starts:
        for fields, text in _readings(line, start, 0, with_text):
            readings.append(Trailer(line[:start - 1], fields.get("from"), fields.get("to"),
                                    fields.get("helo"), text))
            if len(readings) > MAX_READINGS:
                return None
    if len(readings) <= 1:
        return readings[0] if readings else None
    return Trailer(*(_agreed([getattr(r, f) for r in readings])
                     for f in ("reply", "sender", "recipient", "helo", "text")))


def _agreed(values: list[str | None]) -> str | None:
    return values[0] if len(set(values)) == 1 else None


Fields = tuple[dict[str, str], str | None]


def _readings(line: str, pos: int, first: int, with_text: bool) -> list[Fields]:
    """Readings of ``line[pos:]`` as the fields from ``_FIELDS[first]`` on, then the end.

    An address ends at its first ``>`` outside a quoted local part (Postfix logs
    addresses quoted); the HELO name, logged as sent, may end at any ``>`` that
    the end of the line (or cleanup's ``: TEXT``) follows.
    """
    found: list[Fields] = []
    if pos == len(line):
        found.append(({}, None))
    elif with_text and line.startswith(": ", pos):
        found.append(({}, line[pos + 2:]))
    for index in range(first, len(_FIELDS)):
        head, bracketed = _FIELDS[index]
        if not line.startswith(head, pos):
            continue
        start, name = pos + len(head), head.strip(" =<")
        if name == "helo":
            ends = [m.start() for m in _HELO_ENDS.finditer(line, start)][:MAX_STARTS]
            values = [(line[start:end], end + 1) for end in ends]
        elif bracketed:
            end = address_end(line, start)
            values = [(line[start:end], end + 1)] if end >= 0 else []
        else:
            m = _PROTO.match(line, start)
            values = [(m[0], m.end())] if m else []
        for value, after in values:
            for rest, text in _readings(line, after, index + 1, with_text):
                found.append(({name: value, **rest}, text))
    return found


def address_end(line: str, pos: int) -> int:
    """Index of the ``>`` that closes the address starting at ``pos``; -1 when none does."""
    end = line.find(">", pos)
    if end < 0 or line.find('"', pos, end) < 0:
        return end  # no quote before the first ">": it closes the address
    quoted = escaped = False
    for index in range(pos, len(line)):
        char = line[index]
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ">" and not quoted:
            return index
    return -1


def server_text(reply: str, trailer: Trailer) -> str:
    """The reply with every address or HELO name it echoes taken out (``550 5.1.1 <R>: ...``).

    Postfix echoes an address unquoted (``<a b@x>``) but logs it quoted in the
    trailer (``to=<"a b"@x>``): both spellings go, bracketed anywhere, any case,
    and an address bare too; each leaves a blank, so no two pieces of the
    server's text are joined into words it did not write.
    """
    text = reply
    for echoed in (trailer.recipient, trailer.sender, trailer.helo):
        if echoed:
            for spelling in _spellings(echoed):
                text = _cut(text, f"<{spelling}>", colon=True)
                if "@" in spelling:
                    text = _cut(text, spelling)
    return reply if text == reply else _BLANKS.sub(" ", text)


def _spellings(address: str) -> set[str]:
    """An address as logged (quoted local part) and as a reply echoes it (unquoted)."""
    found = {address}
    local, at, domain = address.rpartition("@")
    if at and len(local) >= 2 and local[0] == local[-1] == '"':
        found.add(_UNESCAPE.sub(r"\1", local[1:-1]) + "@" + domain)
    return found


def _cut(text: str, needle: str, colon: bool = False) -> str:
    """``text`` with every ``needle`` (any case; with ``colon``, and a ``:`` right after it
    that a blank follows) replaced by a blank."""
    lowered, wanted = text.lower(), needle.lower()
    if len(lowered) != len(text):  # lower-casing moved characters: compare as the regex does
        pattern = re.escape(needle) + ("(?::(?= ))?" if colon else "")
        return re.sub(pattern, " ", text, flags=re.I)
    pieces, start = [], 0
    while (found := lowered.find(wanted, start)) >= 0:
        pieces.append(text[start:found])
        start = found + len(wanted)
        if colon and text.startswith(": ", start):
            start += 1
    if not pieces:
        return text
    return " ".join(pieces) + " " + text[start:]
