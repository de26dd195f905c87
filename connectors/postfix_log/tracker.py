"""Correlate Postfix log lines by (host, queue id) into MailEvents and DeliveryEvents.

Lines of many concurrent sessions arrive interleaved; a message's facts are
gathered in a small record until it can be reported:

* as soon as every recipient (``nrcpt``) has a first delivery outcome, or it
  is removed or expired, or ``settle_s`` of log time passed since it was
  queued (a deferred recipient may not be retried for hours);
* at once when it was refused before it had a queue id (``NOQUEUE: reject``);
* ``log_reading.verdict_wait`` after a milter, proxy or header/body-check refusal
  of the whole message, so the spam filter's verdict line can join it.

Refusal lines are read by their structure (``refusal_lines``): an address the
client wrote never decides a sender, a recipient or a spam verdict, and a
refusal counts as spam only when a spam filter said so (its verdict line, or
its reply text: ``refusal_replies``). Values too long for the event contract
are cut and the event flagged ``truncated``; a message no valid event can be
made of is counted (``invalid``) and no other message is lost with it.

A copy that a content filter (Amavis on 127.0.0.1:10025, a DKIM milter
smtpd) re-injected is the same message: its own MailEvent is suppressed and
its deliveries are reported under the original's ``event_id``.

Memory is bounded: records are dropped when done, records idle for
``stale_after_s`` of log time and the oldest beyond ``max_messages`` are
evicted (reported first when they were queued) and counted.
"""

from __future__ import annotations

import heapq
import re
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Literal, TypeVar, overload

from connectors.postfix_log.postfix_lines import (
    ClientSeen,
    Delivery,
    Expired,
    Ignored,
    MessageIdSeen,
    Notification,
    PickedUp,
    Queued,
    Refused,
    Removed,
    parse_postfix,
)
from connectors.postfix_log.refusal_replies import RefusalReplies
from connectors.postfix_log.spam_verdicts import Ambiguous, RspamdLine, SpamVerdict, parse_verdict
from connectors.postfix_log.syslog_formats import LogRecord
from schemas.addresses import MAX_ADDRESS, client_address, domain_of, is_loopback
from schemas.config import LogReadingSettings, ReplyTexts
from schemas.direction import DirectionRules
from schemas.events import (
    MAX_NAME,
    MAX_RECIPIENTS_LISTED,
    MAX_TEXT,
    DeliveryEvent,
    MailEvent,
)
from schemas.time_ms import to_ms
from schemas.vocabulary import EventSource

Key = tuple[str, str]  # (host, queue id)
Position = tuple[int, ...]  # a reader's place in its input, ordered (e.g. file number, offset)
V = TypeVar("V")
Output = MailEvent | DeliveryEvent
SAMPLES_KEPT = 20
# Lookups that join lines seconds apart (message-id to queue id, next-hop queue
# ids, verdicts before their message): a few thousand recent entries suffice.
RECENT_LOOKUPS = 20_000
RESUME_HOLD_MS = 600_000
HOSTLESS_SCAN = 2_000  # open messages searched for a verdict line that names no host
REFUSING = frozenset({"reject", "milter-reject", "proxy-reject"})  # actions that refuse the mail
_LOOPBACK_RELAY = re.compile(r"^(?:[^\[]*)\[(?P<ip>[^\]]+)\]")


@dataclass
class TrackerStats:
    lines: int = 0
    postfix_lines: int = 0
    facts: int = 0
    ignored: int = 0
    unparsed: int = 0
    verdicts: int = 0
    other_lines: int = 0  # other programs' lines (opendkim, dovecot, ...): not ours to parse
    late_verdicts: int = 0
    ambiguous_verdicts: int = 0  # verdict lines whose client text spells another verdict
    ambiguous_refusals: int = 0  # refusal lines with more than one reading: they decide nothing
    own_refusals: int = 0  # Floodgate's own refusals (never counted)
    truncated: int = 0  # events with a value cut to fit the contract
    invalid: int = 0  # messages no valid event could be made of (sampled with the unparsed)
    mail_events: int = 0
    delivery_events: int = 0
    evicted: int = 0
    unparsed_samples: deque[str] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT))

    @property
    def unparsed_share(self) -> float:
        return self.unparsed / self.postfix_lines if self.postfix_lines else 0.0


@dataclass
class _Message:
    host: str
    qid: str
    first_ts: datetime
    last_ms: int
    client_name: str | None = None
    client_ip: str | None = None
    sasl_username: str | None = None
    local_submission: bool = False
    message_id: str | None = None
    sender: str | None = None
    size: int | None = None
    nrcpt: int | None = None
    queued_ts: datetime | None = None
    recipients: list[str] = field(default_factory=list)
    deferred: dict[str, None] = field(default_factory=dict)  # recipients still being retried
    spam: bool | None = None
    spam_score: float | None = None
    mta_generated: bool = False
    rspamd: tuple[RspamdLine, int, _Message] | None = None  # line, start length, message named
    refusal: str | None = None  # the reply that refused the whole message
    own_refusal: bool = False  # ... when the reply was Floodgate's own
    first_position: Position = ()  # where its first line is, for the tailer's checkpoint
    original_event_id: str | None = None  # set on a content filter's re-injected copy
    origin: _Message | None = None  # that original, while it is still tracked
    reported: bool = False

    @property
    def event_id(self) -> str:
        return self.original_event_id or f"{self.host}/{self.qid}"


class MessageTracker:
    def __init__(self, rules: DirectionRules, settle_s: float = 10.0,
                 stale_after_s: float = 6 * 3600, max_messages: int = 200_000,
                 replies: RefusalReplies | None = None,
                 reinjection_services: frozenset[str] = frozenset()) -> None:
        self._rules = rules
        self._reinjection = reinjection_services
        self._replies = replies or RefusalReplies(LogReadingSettings(), ReplyTexts())
        self._settle_ms = int(settle_s * 1000)
        self._stale_ms = int(stale_after_s * 1000)
        self._max = max_messages
        self._messages: OrderedDict[Key, _Message] = OrderedDict()
        self._due: list[tuple[int, str, str]] = []  # (deadline ms, host, qid)
        self._early_verdicts: OrderedDict[Key, SpamVerdict] = OrderedDict()
        self._reinjected: OrderedDict[Key, str] = OrderedDict()  # copy -> original event_id
        self._by_message_id: OrderedDict[Key, str] = OrderedDict()  # (host, msgid) -> qid
        self._finished: OrderedDict[Key, None] = OrderedDict()  # refused: later lines are repeats
        self._now_ms = 0
        self._last_ts: datetime | None = None
        self._last_ms = 0
        self._tag_kinds: dict[str, bool] = {}
        self._position: Position = ()
        self.stats = TrackerStats()

    # -- input -------------------------------------------------------------

    def feed(self, record: LogRecord, position: Position = ()) -> list[Output]:
        """Apply one log record; return what became reportable.

        ``position`` is where the record starts in the input; ``resume_position``
        tells the earliest one a restart must read again.
        """
        self._position = position
        self.stats.lines += 1
        if record.ts is not self._last_ts:  # parsers reuse one datetime per distinct stamp
            self._last_ts, self._last_ms = record.ts, to_ms(record.ts)
        ts_ms = self._last_ms
        self._now_ms = max(self._now_ms, ts_ms)
        out: list[Output] = []
        postfix = self._tag_kinds.get(record.tag)
        if postfix is None:
            postfix = self._tag_kinds[record.tag] = is_postfix_tag(record.tag)
            if len(self._tag_kinds) > RECENT_LOOKUPS:
                self._tag_kinds.clear()
        if postfix:
            self._postfix(record, ts_ms, out)
        else:
            verdict = parse_verdict(record.tag, record.message)
            if isinstance(verdict, Ambiguous):
                self.stats.ambiguous_verdicts += 1
            elif isinstance(verdict, RspamdLine):
                self.stats.verdicts += 1
                self._rspamd(record.host or "", verdict)
            elif verdict is not None:
                self.stats.verdicts += 1
                self._verdict(record.host or "", verdict)
            else:
                self.stats.other_lines += 1
        self._report_due(out)
        if self.stats.lines % 1024 == 0:
            self._evict_stale(out)
        return out

    def flush(self) -> list[Output]:
        """End of input: report every queued message still open."""
        out: list[Output] = []
        for message in list(self._messages.values()):
            self._report(message, out)
        self._messages.clear()
        return out

    def reject_unparsed(self, line: str) -> None:
        """A line no envelope fits: counted and sampled."""
        self.stats.lines += 1
        self.stats.postfix_lines += 1
        self._unparsed(line)

    def _unparsed(self, line: str) -> None:
        self.stats.unparsed += 1
        self.stats.unparsed_samples.append(line[:300])

    # -- Postfix facts -----------------------------------------------------

    def _postfix(self, record: LogRecord, ts_ms: int, out: list[Output]) -> None:
        self.stats.postfix_lines += 1
        fact = parse_postfix(record.daemon, record.message)
        if fact is None:
            self._unparsed(f"{record.tag}: {record.message}")
            return
        if isinstance(fact, Ignored):
            self.stats.ignored += 1
            return
        self.stats.facts += 1
        host = record.host or ""
        qid = fact.qid
        if qid is None:
            assert isinstance(fact, Refused)  # only NOQUEUE refusals have no queue id
            self._refused_noqueue(record, fact, out)
            return
        if isinstance(fact, Refused) and (host, qid) in self._finished:
            return  # the same refusal logged again (a client retrying in one session)
        message = self._message(host, qid, record.ts, ts_ms, out)
        if isinstance(fact, ClientSeen | PickedUp) and self._reinjection \
                and record.tag.rpartition("/")[0] in self._reinjection:
            message.original_event_id = message.original_event_id or message.event_id  # a copy
        if isinstance(fact, ClientSeen):
            message.client_name, message.client_ip = fact.client_name, client_address(fact.client_ip)
            message.sasl_username = fact.sasl_username
            if fact.orig_qid is not None and message.original_event_id is None:
                self._copy_of(message, fact.orig_qid)
        elif isinstance(fact, PickedUp):
            message.local_submission = True
            message.sender = fact.sender
        elif isinstance(fact, MessageIdSeen):
            self._message_id(message, fact.message_id)
        elif isinstance(fact, Queued):
            self._queued(message, fact, record.ts, ts_ms)
        elif isinstance(fact, Delivery):
            self._delivery(message, fact, record.ts, ts_ms, out)
        elif isinstance(fact, Removed | Expired):
            if isinstance(fact, Expired):
                message.sender = message.sender if message.sender is not None else fact.sender
                self._expired(message, record.ts, ts_ms, out)
            self._report(message, out)
            self._messages.pop((host, fact.qid), None)
        elif isinstance(fact, Notification):
            notice = self._message(host, fact.new_qid, record.ts, ts_ms, out)
            notice.mta_generated = True
        elif isinstance(fact, Refused):
            self._refused_queued(record, message, fact, out)

    def _message(self, host: str, qid: str, ts: datetime, ts_ms: int, out: list[Output]) -> _Message:
        key = (host, qid)
        message = self._messages.get(key)
        if message is None:
            message = self._messages[key] = _Message(host, qid, ts, ts_ms, first_position=self._position)
            original = self._reinjected.pop(key, None)
            if original is not None:
                message.original_event_id = original
            verdict = self._early_verdicts.pop(key, None) or self._early_verdicts.pop(("", qid), None)
            if verdict is not None:
                _apply(message, verdict)
            if len(self._messages) > self._max:
                oldest, first = next(iter(self._messages.items()))
                self._evict(oldest, first, out)
        else:
            message.last_ms = ts_ms
            self._messages.move_to_end(key)
        return message

    def _message_id(self, message: _Message, message_id: str) -> None:
        # Only for joining spamd's verdicts: a Message-ID is the client's text, so a copy
        # re-injected by a content filter is known by the filter's "queued as", never by it.
        message.message_id = message_id or None
        if message_id and message.original_event_id is None:
            _remember(self._by_message_id, (message.host, message_id), message.qid, RECENT_LOOKUPS)

    def _queued(self, message: _Message, fact: Queued, ts: datetime, ts_ms: int) -> None:
        if message.queued_ts is not None:
            return  # qmgr repeats this line on every retry: the message was queued once
        message.sender, message.size, message.nrcpt = fact.sender, fact.size, fact.nrcpt
        message.queued_ts = ts
        if (message.client_ip is None and not message.local_submission
                and (fact.sender == "" or fact.sender.lower().startswith("double-bounce@"))):
            # Postfix's own mail (bounce and cleanup inject it: no client, no pickup); a
            # client's MAIL FROM:<> is the client's mail and counts as such.
            message.mta_generated = True
        heapq.heappush(self._due, (ts_ms + self._settle_ms, message.host, message.qid))

    def _delivery(self, message: _Message, fact: Delivery, ts: datetime, ts_ms: int,
                  out: list[Output]) -> None:
        recipient = fact.orig_recipient or fact.recipient
        if recipient not in message.recipients and len(message.recipients) < MAX_RECIPIENTS_LISTED:
            message.recipients.append(recipient)
        if fact.status == "deferred":
            message.deferred[fact.recipient] = None
        else:
            message.deferred.pop(fact.recipient, None)
        handed_to_filter = fact.queued_as is not None and _is_loopback_relay(fact.relay)
        if handed_to_filter:
            self._link_copy(message, str(fact.queued_as))
        else:
            out.append(self._outcome(message, ts, ts_ms, fact.recipient, fact.status,
                                     orig=fact.orig_recipient, dsn=fact.dsn, relay=fact.relay,
                                     delay_s=fact.delay_s, response=fact.text))
        if message.nrcpt is not None and len(message.recipients) >= message.nrcpt:
            self._report(message, out)

    def _expired(self, message: _Message, ts: datetime, ts_ms: int, out: list[Output]) -> None:
        """The queue lifetime ended: every recipient still deferred has failed for good."""
        for recipient in message.deferred:
            out.append(self._outcome(message, ts, ts_ms, recipient, "expired"))
        message.deferred.clear()

    def _outcome(self, message: _Message, ts: datetime, ts_ms: int, recipient: str, status: str,
                 orig: str | None = None, dsn: str | None = None, relay: str | None = None,
                 delay_s: float | None = None, response: str | None = None) -> DeliveryEvent:
        self.stats.delivery_events += 1
        source = message.origin or message  # a copy's deliveries belong to the original
        fit = _Fit()
        return DeliveryEvent(
            delivery_id=fit(f"{message.host}/{message.qid}/{recipient}/{ts_ms}/{status}", MAX_TEXT),
            event_id=fit(message.event_id, MAX_TEXT), ts=ts,
            host=fit(message.host, MAX_NAME) or "unknown", queue_id=fit(message.qid, 64),
            recipient=fit(recipient, MAX_ADDRESS), orig_recipient=fit(orig, MAX_ADDRESS),
            status=fit(status, 32), dsn=fit(dsn, 16), relay=fit(relay, MAX_NAME), delay_s=delay_s,
            response=fit(response, MAX_TEXT), sender=fit(source.sender, MAX_ADDRESS),
            sasl_username=fit(source.sasl_username, MAX_ADDRESS), client_ip=source.client_ip,
            direction=self._rules.classify(source.client_ip, source.sasl_username,
                                           source.local_submission, [recipient]),
            mta_generated=source.mta_generated)

    def _refused_queued(self, record: LogRecord, message: _Message, fact: Refused,
                        out: list[Output]) -> None:
        if fact.action == "hold":
            self._held(message, fact, out)
            return
        if fact.action in REFUSING and fact.stage == "RCPT":
            self._refused_recipient(record, message, fact, out)
            return
        if fact.action not in REFUSING or message.refusal is not None:
            return  # an action that still accepts, or a repeat
        if message.sender is None:
            message.sender = fact.sender
        if fact.recipient and fact.recipient not in message.recipients:
            message.recipients.append(fact.recipient)
        message.refusal = fact.reason
        judged = self._judge(fact)
        if judged == "own":
            message.own_refusal = True
        elif judged == "spam":
            message.spam = True
        # Reported once the spam filter had time to log its verdict (rspamd may log after).
        heapq.heappush(self._due, (self._now_ms + self._replies.verdict_wait_ms, message.host,
                                   message.qid))

    def _held(self, message: _Message, fact: Refused, out: list[Output]) -> None:
        """Queued into the hold queue (HOLD action): accepted, and qmgr will not say so."""
        if message.sender is None:
            message.sender = fact.sender
        if fact.recipient and fact.recipient not in message.recipients:
            message.recipients.append(fact.recipient)
        if message.queued_ts is None:
            message.queued_ts = message.first_ts
            heapq.heappush(self._due, (self._now_ms + self._settle_ms, message.host, message.qid))

    def _refused_recipient(self, record: LogRecord, message: _Message, fact: Refused,
                           out: list[Output]) -> None:
        """One recipient of a message in progress refused at RCPT: a refused MailEvent of its
        own, with the session's account and client (NOQUEUE lines have neither account nor
        queue id). It counts only where a threshold counts unknown recipients; no spam
        verdict is read from it, so the message itself is never counted twice."""
        self._emit_refused(
            out, record, fact, host=message.host, id_part=f"{message.qid}/RCPT",
            queue_id=message.qid, client_ip=message.client_ip, client_name=message.client_name,
            sasl_username=message.sasl_username,
            sender=message.sender if message.sender is not None else fact.sender,
            local_submission=message.local_submission, spam=None)

    def _refused_noqueue(self, record: LogRecord, fact: Refused, out: list[Output]) -> None:
        if fact.action not in REFUSING:
            self.stats.ignored += 1
            return
        judged = self._judge(fact)
        self._emit_refused(
            out, record, fact, host=record.host or "", id_part="NOQUEUE", queue_id=None,
            client_ip=client_address(fact.client_ip), client_name=fact.client_name,
            sasl_username=None, sender=fact.sender, local_submission=False,
            spam=False if judged == "own" else (True if judged == "spam" else None))

    def _emit_refused(self, out: list[Output], record: LogRecord, fact: Refused, *, host: str,
                      id_part: str, queue_id: str | None, client_ip: str | None,
                      client_name: str | None, sasl_username: str | None, sender: str | None,
                      local_submission: bool, spam: bool | None) -> None:
        """The refused MailEvent of one refusal line, attributed to what the caller knows.

        The id holds the line's time, pid and recipient: two refusals of one session
        differ, a re-read of the same line does not."""
        fit = _Fit()
        recipients = [fit(fact.recipient, MAX_ADDRESS)] if fact.recipient else []
        self._emit(out, lambda: MailEvent(
            event_id=fit(f"{host}/{id_part}/{int(record.ts.timestamp() * 1_000_000)}/"
                         f"{record.pid}/{fact.recipient or ''}", MAX_TEXT),
            ts=record.ts, host=fit(host, MAX_NAME) or "unknown", queue_id=fit(queue_id, 64),
            client_ip=client_ip, client_name=fit(client_name, MAX_NAME),
            sasl_username=fit(sasl_username, MAX_ADDRESS),
            sender=fit(sender, MAX_ADDRESS), sender_domain=fit(domain_of(sender), MAX_NAME),
            recipients=recipients,
            direction=self._rules.classify(client_ip, sasl_username, local_submission,
                                           recipients),
            accepted=False, spam=spam, reject_reason=fit(fact.reason, MAX_TEXT),
            source=EventSource.LOG, truncated=fit.cut), f"{record.tag}: {record.message}")

    def _judge(self, fact: Refused) -> Literal["own", "spam"] | None:
        """The refusal's reply judged (see refusal_replies), counted in the stats."""
        if fact.reply is None:
            self.stats.ambiguous_refusals += 1
        judged = self._replies.judge(fact.reply)
        self.stats.own_refusals += judged == "own"
        return judged

    # -- spam verdicts -----------------------------------------------------

    def _rspamd(self, host: str, line: RspamdLine) -> None:
        """Join rspamd's line to the message its start names (see spam_verdicts)."""
        best: tuple[int, _Message] | None = None
        for qid in line.qids:
            message = self._messages.get((host, qid)) if host else self._any_host(qid)
            if message is None or message.reported:
                continue
            length = line.start_length(message.message_id, qid)
            if length and (best is None or length > best[0]):
                best = (length, message)
        if best is None:
            self.stats.late_verdicts += 1
            return
        length, message = best
        target = message.origin if message.origin is not None and not message.origin.reported \
            else message
        target.rspamd = (line, length, message)  # read once the sender is known

    def _verdict(self, host: str, verdict: SpamVerdict) -> None:
        qid = verdict.qid
        if qid is None and verdict.candidates:
            # Client text spelled more queue ids: the one open message among them, if one.
            open_ = [q for q in verdict.candidates
                     if (self._messages.get((host, q)) if host else self._any_host(q))]
            qid = open_[0] if len(open_) == 1 else None
        if qid is None and verdict.message_id:
            qid = self._by_message_id.get((host, verdict.message_id))
        if qid is None:
            self.stats.late_verdicts += 1
            return
        message = self._messages.get((host, qid)) if host else self._any_host(qid)
        if message is not None and message.origin is not None and not message.origin.reported:
            message = message.origin  # a filter's verdict on a copy is a verdict on the message
        if verdict.queued_as and message is not None:
            self._link_copy(message, verdict.queued_as)
        if message is None:
            _remember(self._early_verdicts, (host, qid), verdict, RECENT_LOOKUPS)
        elif message.reported:
            self.stats.late_verdicts += 1
        else:
            _apply(message, verdict)

    def _copy_of(self, copy: _Message, original_qid: str) -> None:
        """XFORWARD named the message ``copy`` is a copy of."""
        original = self._messages.get((copy.host, original_qid))
        copy.original_event_id = original.event_id if original else f"{copy.host}/{original_qid}"
        if original is not None and not original.reported:
            copy.origin = original

    def _link_copy(self, original: _Message, copy_qid: str) -> None:
        """``copy_qid`` is the next hop's queue id for ``original``: the same message."""
        copy = self._messages.get((original.host, copy_qid))
        if copy is None:
            _remember(self._reinjected, (original.host, copy_qid), original.event_id, RECENT_LOOKUPS)
        elif copy is not original and copy.original_event_id is None and not copy.reported:
            copy.original_event_id, copy.origin = original.event_id, original

    def _any_host(self, qid: str) -> _Message | None:
        """A verdict line without a host (rspamd's own log): the message with that queue id."""
        # The filter logs while the message is being received: look among the newest only.
        for (_, found_qid), message in islice(reversed(self._messages.items()), HOSTLESS_SCAN):
            if found_qid == qid:
                return message
        return None

    # -- reporting ---------------------------------------------------------

    def _report_due(self, out: list[Output]) -> None:
        while self._due and self._due[0][0] <= self._now_ms:
            _, host, qid = heapq.heappop(self._due)
            message = self._messages.get((host, qid))
            if message is not None:
                self._report(message, out)
                if message.refusal is not None:  # nothing more will come for it
                    self._messages.pop((host, qid), None)
                    _remember(self._finished, (host, qid), None, RECENT_LOOKUPS)

    def _report(self, message: _Message, out: list[Output]) -> None:
        if message.reported or message.original_event_id is not None:
            message.reported = True
            return
        accepted = message.refusal is None
        if accepted and message.queued_ts is None:
            return  # never queued (e.g. a session that ended before DATA): not a message
        message.reported = True
        if message.rspamd is not None:
            line, length, named = message.rspamd
            verdict = line.verdict(length, named.sender)
            if isinstance(verdict, SpamVerdict):
                _apply(message, verdict)
            elif verdict is not None:
                self.stats.ambiguous_verdicts += 1
        fit = _Fit()
        self._emit(out, lambda: MailEvent(
            event_id=fit(message.event_id, MAX_TEXT), ts=message.queued_ts or message.first_ts,
            host=fit(message.host, MAX_NAME) or "unknown", queue_id=fit(message.qid, 64),
            message_id=fit(message.message_id, MAX_TEXT) or None,
            client_ip=message.client_ip, client_name=fit(message.client_name, MAX_NAME),
            sasl_username=fit(message.sasl_username, MAX_ADDRESS),
            sender=fit(message.sender, MAX_ADDRESS),
            sender_domain=fit(domain_of(message.sender), MAX_NAME),
            recipients=[fit(r, MAX_ADDRESS) for r in message.recipients],
            recipient_count=max(message.nrcpt or 0, len(message.recipients)),
            size=message.size,
            direction=self._rules.classify(message.client_ip, message.sasl_username,
                                           message.local_submission, message.recipients),
            accepted=accepted, spam=False if message.own_refusal else message.spam,
            spam_score=message.spam_score, mta_generated=message.mta_generated,
            reject_reason=fit(message.refusal, MAX_TEXT), source=EventSource.LOG,
            truncated=fit.cut), f"{message.host}/{message.qid}")

    def _emit(self, out: list[Output], build: Callable[[], MailEvent], what: str) -> None:
        """Build one MailEvent; a message no valid event can be made of is counted and
        sampled, and never takes other messages with it."""
        try:
            event = build()
        except ValueError as exc:  # pydantic's ValidationError is one
            self.stats.invalid += 1
            self.stats.unparsed_samples.append(f"{what[:200]}: no valid event: "
                                               f"{str(exc).splitlines()[0][:100]}")
            return
        self.stats.mail_events += 1
        self.stats.truncated += event.truncated
        out.append(event)

    def _evict_stale(self, out: list[Output]) -> None:
        cutoff = self._now_ms - self._stale_ms
        while self._messages:
            key, message = next(iter(self._messages.items()))
            if message.last_ms >= cutoff:
                break
            self._evict(key, message, out)

    def _evict(self, key: Key, message: _Message, out: list[Output]) -> None:
        self._report(message, out)  # a queued message is still reported, never lost
        del self._messages[key]
        self.stats.evicted += 1

    def resume_position(self) -> Position | None:
        """The earliest start of a message not yet reported; None when there is none.

        A tailer that restarts from here loses nothing; messages already
        reported then come again with the same event_id, which consumers drop.
        """
        # A session idle for long without being queued (refused, or the client left)
        # will most likely never be: it does not hold the checkpoint back.
        recent = self._now_ms - RESUME_HOLD_MS
        pending = [m.first_position for m in self._messages.values()
                   if not m.reported and m.first_position and (m.queued_ts or m.last_ms >= recent)]
        return min(pending) if pending else None

    @property
    def open_messages(self) -> int:
        return len(self._messages)


class _Fit:
    """Cuts values to their field's limit and remembers whether it cut any."""

    __slots__ = ("cut",)

    def __init__(self) -> None:
        self.cut = False

    @overload
    def __call__(self, value: str, limit: int) -> str: ...
    @overload
    def __call__(self, value: str | None, limit: int) -> str | None: ...

    def __call__(self, value: str | None, limit: int) -> str | None:
        if value is None or len(value) <= limit:
            return value
        self.cut = True
        return value[:limit]


def _apply(message: _Message, verdict: SpamVerdict) -> None:
    if verdict.spam is not None:
        message.spam = verdict.spam
    if verdict.score is not None:
        message.spam_score = verdict.score


def _remember(table: OrderedDict[Key, V], key: Key, value: V, limit: int) -> None:
    """Set a bounded lookup entry; the oldest goes when the table is full."""
    table[key] = value
    if len(table) > limit:
        table.popitem(last=False)


def _is_loopback_relay(relay: str) -> bool:
    m = _LOOPBACK_RELAY.match(relay)
    return m is not None and is_loopback(m["ip"])


# Postfix daemons, as the last part of a syslog tag (``postfix-out/submission/smtpd``).
POSTFIX_DAEMONS = frozenset({
    "smtpd", "smtp", "lmtp", "local", "virtual", "pipe", "error", "retry", "discard", "cleanup",
    "qmgr", "oqmgr", "pickup", "bounce", "defer", "trace", "postscreen", "dnsblog", "tlsproxy",
    "anvil", "scache", "verify", "postsuper", "postdrop", "sendmail", "master", "postfix-script",
    "postlogd", "trivial-rewrite", "tlsmgr", "showq", "flush", "proxymap", "spawn", "postmap",
    "postqueue", "postlog", "postmulti", "postalias", "postconf", "qmqpd", "lmtpd",
})


def is_postfix_tag(tag: str) -> bool:
    """``postfix/smtpd``, ``postfix-out/smtp``, any ``syslog_name/.../daemon``; not ``amavis``."""
    service, slash, daemon = tag.rpartition("/")
    return bool(slash) and daemon in POSTFIX_DAEMONS and bool(service)
