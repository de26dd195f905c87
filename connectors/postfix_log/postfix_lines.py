"""Postfix log messages (the text after ``tag[pid]: ``) as typed facts.

One function per daemon family; each returns a fact, ``IGNORED`` for lines
that carry nothing Floodgate needs (connects, TLS, statistics), or None for
a line it does not understand (counted and sampled by the caller).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from connectors.postfix_log.refusal_lines import address_end, read_trailer, server_text

# Short ids are upper-case hex; long ids (enable_long_queue_ids) use an alphabet
# without vowels, so words like "warning" never look like one.
_QID = r"(?P<qid>[0-9A-F]{5,20}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,25})"
_QID_PREFIX = re.compile(_QID + r": (?P<rest>.*)", re.S)
_CLIENT = re.compile(
    r"client=(?P<name>[^\[\s,]*)\[(?P<ip>[^\]]*)\](?::\d+)?"
    r"(?:, sasl_method=(?P<method>[^,\s]*))?(?:, sasl_username=(?P<user>[^,]*))?"
    r"(?:, sasl_sender=(?P<ssender>[^,]*))?")
_ORIG_QID = re.compile(r", orig_queue_id=" + _QID + r"(?:,|$)")  # XFORWARD from a content filter
_PICKUP = re.compile(r"uid=(?P<uid>\d+) from=<(?P<sender>[^>]*)>")
# cleanup logs the header's value as the client wrote it, to the end of the line.
_MESSAGE_ID = re.compile(r"message-id=<?(?P<mid>.*?)>?$", re.S)
# qmgr's record: everything after the sender is Postfix's, so the sender (a quoted local
# part may hold "," or ">") runs to the last "size=" of the line.
# Some syslog setups drop the angle brackets: a bare address has no "," or "<>".
_SENDER = r"from=(?:<(?P<sender>.*)>|(?P<bare>[^<>,]*))"
_QUEUED = re.compile(_SENDER + r", size=(?P<size>\d+), nrcpt=(?P<nrcpt>\d+)"
                     r"(?: \(queue active\))?$", re.S)
_EXPIRED = re.compile(_SENDER + r", status=expired(?:, returned to sender)?$", re.S)
# A delivery line is ``to=<R>, orig_to=<O>, relay=..., delay=..., delays=..., dsn=..., status=S
# (TEXT)``. R and O are what the client sent: a quoted local part may hold ">", ",", "=" and
# any field name, so each address ends at the ">" that closes it outside quotes
# (``refusal_lines.address_end``), and only then are Postfix's own fields read, anchored.
_BARE_ADDRESS = re.compile(r"[^<>,\s]*")  # some syslog setups drop the angle brackets
_FIELDS = (r" relay=(?P<relay>[^,\s]*),(?: conn_use=\d+,)? delay=(?P<delay>\d+(?:\.\d+)?),"
           r"(?: delays=[\d./]+,)? dsn=(?P<dsn>\d\.\d{1,3}\.\d{1,3}), status=(?P<status>[\w-]+)"
           r"(?: \((?P<text>.*))?$")  # its ")" is taken off after: a reply cut short keeps none
_DELIVERY_FIELDS = re.compile(_FIELDS, re.S)
# Most lines: addresses with neither a quote nor a ">", which end at their first ">".
_PLAIN_DELIVERY = re.compile(r'to=<(?P<to>[^">]*)>,(?: orig_to=<(?P<orig>[^">]*)>,)?' + _FIELDS,
                             re.S)
_NOTIFY = re.compile(r"(?P<kind>sender|postmaster) (?:non-delivery|delivery status|delay)"
                     r" notification: (?P<new>\w+)")
# Refusals: the head up to the reply is Postfix's own (a client name is a validated
# hostname or "unknown"); the rest is read by refusal_lines, which knows what the client wrote.
_PROXY = re.compile(r"(?:(?P<qid>\w+): )?proxy-(?P<verdict>reject|accept): (?P<stage>[A-Z-]+): ")
_REJECT = re.compile(
    r"(?P<action>reject|milter-reject|discard|hold|filter|redirect|warn): "
    r"(?P<stage>[A-Z-]+) from (?P<name>[^\[\s]*)\[(?P<ip>[^\]]*)\](?::\d+)?: ")
_HEADER_REJECT = re.compile(r"(?P<action>reject|discard|hold|warning|redirect|filter): "
                            r"(?P<class>header|body) ")
# The next hop's own "250 ... queued as QID" closes its reply (a content filter's reply ends
# with what the re-injection smtpd said): a queue id anywhere else proves nothing.
_QUEUED_AS = re.compile(r"250[ -].*\bqueued as (?P<qid>[0-9A-F]{5,20}|"
                        r"[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,25})\)?$", re.S)

DELIVERY_DAEMONS: Final = frozenset({"smtp", "lmtp", "local", "virtual", "pipe", "error", "retry",
                                     "discard"})
# Daemons that start, stop and configure Postfix: what they say without a queue id is about the
# mail system, never about a message (``waiting for the Postfix mail system to terminate``).
_LIFECYCLE_DAEMONS: Final = frozenset({"postfix-script", "master", "postfix", "postmulti",
                                       "postconf", "postalias", "postmap", "postlogd", "tlsmgr"})
# Messages that carry nothing Floodgate needs: recognised, not counted as unparsed.
_NOISE = re.compile(
    r"(?:dis)?connect (?:from|to) |(?:Anonymous|Trusted|Untrusted|Verified) TLS connection |"
    r"(?:warning|statistics|fatal|panic|error): |lost connection |timeout after |"
    r"too many errors |improper command pipelining |setting up TLS |Server certificate |"
    r"SSL_accept |TLS library problem|host \S+ said: |message repeated |conversation with |"
    r"CONNECT from |PASS (?:NEW|OLD) |PREGREET |DNSBL rank |HANGUP |COMMAND |WHITELISTED |"
    r"PASS |DISCONNECT |NOQUEUE: (?:client=|filter: |warn: |reject_warning: )|addr \S+ listed by |"
    r"(?:Deleted|Requeued|Placed on hold|Released from hold): \d+ message|"
    r"certificate verification failed |SSL_connect error |bare <LF> received |"
    r"reload |daemon started|terminating on signal|starting the Postfix|stopping the Postfix|"
    r"refreshing the Postfix|Postfix is |postfix/postfix-script|"
    r"max (?:connection|cache|message|recipient|new) |sent queue file update |"
    r"(?:SASL )?\w+ authentication failed|discarding EHLO keywords|"
    r"the Postfix mail system is |cache \S+ full cleanup|"
    r"(?:table|dict_|deleting|mapping|fork|spawn|rewriting)", re.S)


class Ignored:
    """A line recognised as carrying nothing Floodgate needs."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "IGNORED"


IGNORED: Final = Ignored()


@dataclass(slots=True)  # not frozen: one is built per log line, and frozen ones build 5x slower
class ClientSeen:
    qid: str
    client_name: str
    client_ip: str
    sasl_method: str | None
    sasl_username: str | None
    orig_qid: str | None = None  # XFORWARD: the queue id of the message this is a copy of


@dataclass(slots=True)  # not frozen: one is built per log line, and frozen ones build 5x slower
class PickedUp:
    qid: str
    uid: int
    sender: str


@dataclass(slots=True)  # not frozen: one is built per log line, and frozen ones build 5x slower
class MessageIdSeen:
    qid: str
    message_id: str


@dataclass(slots=True)  # not frozen: one is built per log line, and frozen ones build 5x slower
class Queued:
    qid: str
    sender: str
    size: int
    nrcpt: int


@dataclass(slots=True)  # not frozen: one is built per log line, and frozen ones build 5x slower
class Delivery:
    qid: str
    recipient: str
    orig_recipient: str | None
    relay: str
    delay_s: float
    dsn: str
    status: str  # sent | deferred | bounced | expired | ...
    text: str
    queued_as: str | None  # "250 ... queued as X": the next hop queued it under X


@dataclass(slots=True)  # not frozen: one is built per log line, and frozen ones build 5x slower
class Removed:
    qid: str


@dataclass(slots=True)  # not frozen: one is built per log line, and frozen ones build 5x slower
class Expired:
    qid: str
    sender: str


@dataclass(slots=True)  # not frozen: one is built per log line, and frozen ones build 5x slower
class Notification:
    """Postfix made a new message (bounce, delay notice) about ``qid``: ``new_qid``."""

    qid: str
    new_qid: str


@dataclass(slots=True)  # not frozen: one is built per log line, and frozen ones build 5x slower
class Refused:
    """smtpd or cleanup refused mail (per recipient at RCPT, or the whole message).

    ``reply`` is the server's own text (echoed addresses taken out), None when the
    line's readings disagree on it (see refusal_lines): then nothing may be decided
    from it. ``sender`` and ``recipient`` are likewise None unless every reading
    agrees on them.
    """

    qid: str | None  # None for NOQUEUE
    action: str  # reject | milter-reject | discard | hold | ...
    stage: str  # RCPT, DATA, END-OF-MESSAGE, header, ...
    client_name: str | None
    client_ip: str | None
    reason: str  # for people: the reply as logged
    sender: str | None
    recipient: str | None
    reply: str | None = None


Fact = ClientSeen | PickedUp | MessageIdSeen | Queued | Delivery | Removed | Expired | Notification | Refused


def parse_postfix(daemon: str, message: str) -> Fact | Ignored | None:
    """The fact in one Postfix message, IGNORED for noise, None when not understood."""
    proxy = _PROXY.match(message) if "proxy-" in message else None
    if proxy is not None and proxy["qid"] is not None:
        return _proxy(proxy, message)
    if message.startswith("NOQUEUE: "):
        return _refused(None, message[9:]) or (IGNORED if _NOISE.match(message) else None)
    match = _QID_PREFIX.match(message)
    if match is None:
        return IGNORED if daemon in _LIFECYCLE_DAEMONS or _NOISE.match(message) else None
    qid, rest = match["qid"], match["rest"]
    fact = _by_daemon(daemon, qid, rest)
    if fact is not None:
        return fact
    return IGNORED if _known_qid_noise(rest) else None


def _by_daemon(daemon: str, qid: str, rest: str) -> Fact | Ignored | None:
    if daemon in DELIVERY_DAEMONS:
        return _delivery(qid, rest)
    if daemon == "qmgr":
        return _qmgr(qid, rest)
    if daemon == "cleanup":
        if rest.startswith("message-id="):
            m = _MESSAGE_ID.match(rest)
            return MessageIdSeen(qid, m["mid"]) if m else None
        return _refused(qid, rest) or _header_action(qid, rest)
    if daemon == "smtpd":
        if rest.startswith("client="):
            m = _CLIENT.match(rest)
            if m:
                orig = _ORIG_QID.search(rest, m.end())
                return ClientSeen(qid, m["name"], m["ip"], m["method"] or None,
                                  (m["user"] or "").strip() or None, orig["qid"] if orig else None)
            return None
        return _refused(qid, rest)
    if daemon == "pickup":
        m = _PICKUP.match(rest)
        return PickedUp(qid, int(m["uid"]), m["sender"]) if m else None
    if daemon == "bounce":
        m = _NOTIFY.match(rest)
        return Notification(qid, m["new"]) if m else None
    if daemon == "postsuper" and rest.startswith("removed"):
        return Removed(qid)
    return None


def _qmgr(qid: str, rest: str) -> Fact | Ignored | None:
    if rest == "removed":
        return Removed(qid)
    m = _QUEUED.match(rest)
    if m:
        return Queued(qid, _sender(m), int(m["size"]), int(m["nrcpt"]))
    m = _EXPIRED.match(rest)
    if m:
        return Expired(qid, _sender(m))
    return _delivery(qid, rest)  # qmgr logs some deliveries itself (e.g. "delivery temporarily suspended")


def _sender(m: re.Match[str]) -> str:
    sender: str = m["sender"] if m["sender"] is not None else m["bare"]
    return sender


def _delivery(qid: str, rest: str) -> Delivery | None:
    """A delivery line by Postfix's grammar; None when the line does not follow it."""
    m = _PLAIN_DELIVERY.match(rest)
    if m is not None:
        recipient, orig = m["to"], m["orig"]
    else:
        if not rest.startswith("to="):
            return None
        to = _address_field(rest, 3)
        if to is None or not rest.startswith(",", to[1]):
            return None
        recipient, pos = to[0], to[1] + 1
        orig = None
        if rest.startswith(" orig_to=", pos):
            found = _address_field(rest, pos + 9)
            if found is None or not rest.startswith(",", found[1]):
                return None
            orig, pos = found[0], found[1] + 1
        m = _DELIVERY_FIELDS.match(rest, pos)
        if m is None:
            return None
    text = m["text"] or ""
    text = text[:-1] if text.endswith(")") else text
    queued = _QUEUED_AS.match(text) if m["status"] == "sent" and "queued as" in text else None
    return Delivery(qid, recipient, orig, m["relay"], float(m["delay"]), m["dsn"],
                    m["status"], text, queued["qid"] if queued else None)


def _address_field(line: str, pos: int) -> tuple[str, int] | None:
    """The address at ``pos`` (``<ADDR>`` closed outside quotes, or bare) and where it ends."""
    if line.startswith("<", pos):
        end = address_end(line, pos + 1)
        return (line[pos + 1:end], end + 1) if end >= 0 else None
    m = _BARE_ADDRESS.match(line, pos)
    return (m[0], m.end()) if m else None


def _refused(qid: str | None, rest: str) -> Refused | None:
    m = _REJECT.match(rest)
    if m is None:
        return None
    return _read_refusal(qid, m["action"], m["stage"], m["name"] or None, m["ip"] or None,
                         rest[m.end():])


def _read_refusal(qid: str | None, action: str, stage: str, name: str | None, ip: str | None,
                  tail: str) -> Refused:
    trailer = read_trailer(tail)
    if trailer is None or trailer.reply is None:
        return Refused(qid, action, stage, name, ip, tail.strip(),
                       trailer.sender if trailer else None, trailer.recipient if trailer else None)
    return Refused(qid, action, stage, name, ip, trailer.reply.strip(), trailer.sender,
                   trailer.recipient, server_text(trailer.reply, trailer).strip())


def _proxy(m: re.Match[str], message: str) -> Refused | Ignored:
    """A before-queue content filter's verdict (smtpd_proxy_filter)."""
    if m["verdict"] == "accept":
        return IGNORED  # the filter queued it; that queue's lines tell the rest
    qid = None if m["qid"] == "NOQUEUE" else m["qid"]
    return _read_refusal(qid, "proxy-reject", m["stage"], None, None, message[m.end():])


def _header_action(qid: str, rest: str) -> Refused | None:
    """cleanup's header/body checks: ``reject: header Subject: TEXT from C[IP]; from=<S> ...``"""
    m = _HEADER_REJECT.match(rest)
    if m is None:
        return None
    trailer = read_trailer(rest[m.end():], with_text=True)
    if trailer is None:
        return Refused(qid, m["action"], m["class"], None, None, "", None, None)
    # The reply is the operator's text after the trailer; when readings disagree, none.
    text = trailer.text.strip() if trailer.text is not None else None
    return Refused(qid, m["action"], m["class"], None, None, text or "", trailer.sender,
                   trailer.recipient, text)


def _known_qid_noise(rest: str) -> bool:
    """Per-message lines we recognise but need not act on."""
    return rest.startswith((
        "enabling PIX workarounds", "host ", "lost connection", "conversation with",
        "replace: ", "prepend: ", "warning: ", "info: ", "redirect: ", "filter: ",
        "placed on hold", "released from hold", "requeued", "sender delivery status",
        "skipped", "to=<", "uid=", "from=<", "resent-message-id=", "hold: ", "discard: ",
        "BDAT ", "DATA ", "reject_warning: ", "milter-", "skipped, ",
    )) or _NOISE.match(rest) is not None
