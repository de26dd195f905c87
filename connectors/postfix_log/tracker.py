"""Correlate Postfix log lines by (host, queue id) into MailEvents and DeliveryEvents.

Lines of many concurrent sessions arrive interleaved; a message's facts are
gathered in a small record until it can be reported:

* as soon as every recipient (``nrcpt``) has a first delivery outcome, or it
  is removed or expired, or ``settle_s`` of log time passed since it was
  queued (a deferred recipient may not be retried for hours);
* at once when it was refused before it had a queue id (``NOQUEUE: reject``);
* ``log_reading.verdict_wait`` after a milter, proxy or header/body-check refusal
  of the whole message, so the spam filter's verdict line can join it.

Where the other jobs are: lines are parsed in ``postfix_lines`` (refusals by
their structure, ``refusal_lines``: an address the client wrote never decides
a sender, a recipient or a spam verdict) and ``spam_verdicts``; a refusal is
spam only when a spam filter said so (``refusal_replies``); verdicts and a
content filter's re-injected copies are joined in ``verdict_join`` (a copy's
own MailEvent is suppressed, its deliveries reported under the original's
``event_id``); events are built, cut to their limits, in ``event_building``;
a message no valid event can be made of is counted (``invalid``) and no other
message is lost with it.

Memory is bounded: records are dropped when done, records idle for
``stale_after_s`` of log time and the oldest beyond ``max_messages`` are
evicted (reported first when they were queued) and counted.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from datetime import datetime
from typing import Any, Literal

from connectors.postfix_log.event_building import (
    delivery_event,
    emit_event,
    message_event,
    refused_event,
)
from connectors.postfix_log.open_message import (
    RECENT_LOOKUPS,
    Key,
    OpenMessage,
    Position,
    apply_verdict,
    is_loopback_relay,
    remember,
)
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
from connectors.postfix_log.syslog_formats import LogRecord, is_postfix_tag
from connectors.postfix_log.tracker_stats import TrackerStats
from connectors.postfix_log.verdict_join import ContentJoins
from schemas.addresses import client_address
from schemas.config import LogReadingSettings, ReplyTexts
from schemas.direction import DirectionRules
from schemas.events import (
    MAX_RECIPIENTS_LISTED,
    DeliveryEvent,
    MailEvent,
)
from schemas.time_ms import to_ms

Output = MailEvent | DeliveryEvent
RESUME_HOLD_MS = 600_000
REFUSING = frozenset({"reject", "milter-reject", "proxy-reject"})  # actions that refuse the mail


_SESSION_FACTS = (ClientSeen, PickedUp)  # what a re-injecting service's copy starts with


class MessageTracker:
    def __init__(self, rules: DirectionRules, settle_s: float = 10.0,
                 stale_after_s: float = 6 * 3600, max_messages: int = 200_000,
                 replies: RefusalReplies | None = None,
                 reinjection_services: frozenset[str] = frozenset(),
                 deliveries: bool = True) -> None:
        self.configure(rules, replies or RefusalReplies(LogReadingSettings(), ReplyTexts()),
                       reinjection_services)
        self._deliveries = deliveries  # False: delivery attempts are counted, not built
        self._settle_ms = int(settle_s * 1000)
        self._stale_ms = int(stale_after_s * 1000)
        self._max = max_messages
        self._messages: OrderedDict[Key, OpenMessage] = OrderedDict()
        self._due: list[tuple[int, str, str]] = []  # (deadline ms, host, qid)
        self._finished: OrderedDict[Key, None] = OrderedDict()  # refused: later lines are repeats
        self._now_ms = 0
        self._last_ts: datetime | None = None
        self._last_ms = 0
        self._daemons: dict[str, str] = {}  # a syslog tag's Postfix daemon ("": not Postfix)
        self._position: Position = ()
        self.stats = TrackerStats()
        self._joins = ContentJoins(self._messages, self.stats)

    def configure(self, rules: DirectionRules, replies: RefusalReplies,
                  reinjection_services: frozenset[str]) -> None:
        """Networks, refusal replies and re-injection services, from the next record on."""
        self._rules, self._replies, self._reinjection = rules, replies, reinjection_services

    # -- input -------------------------------------------------------------

    def feed(self, record: LogRecord, position: Position = ()) -> list[Output]:
        """Apply one log record; return what became reportable.

        ``position`` is where the record starts in the input; ``resume_position``
        tells the earliest one a restart must read again.
        """
        self._position = position
        ts_ms = self._tick(record.ts)
        out: list[Output] = []
        daemon = self._daemons.get(record.tag)
        if daemon is None:
            daemon = self._daemons[record.tag] = record.daemon if is_postfix_tag(record.tag) else ""
            if len(self._daemons) > RECENT_LOOKUPS:
                self._daemons.clear()
        if daemon:
            self._postfix(record, daemon, ts_ms, out)
        else:
            verdict = parse_verdict(record.tag, record.message)
            if isinstance(verdict, Ambiguous):
                self.stats.ambiguous_verdicts += 1
            elif isinstance(verdict, RspamdLine):
                self.stats.verdicts += 1
                self._joins.rspamd(record.host or "", verdict)
            elif verdict is not None:
                self.stats.verdicts += 1
                self._joins.verdict(record.host or "", verdict)
            else:
                self.stats.other_lines += 1
        self._tock(out)
        return out

    def ignore(self, ts: datetime, position: Position = ()) -> list[Output]:
        """A Postfix line of no use, known as such without parsing its message (smtpd's
        connection lines): counted, and its time ``ts`` moves the clock as any line's does."""
        self._position = position
        self._tick(ts)
        self.stats.postfix_lines += 1
        self.stats.ignored += 1
        out: list[Output] = []
        self._tock(out)
        return out

    def _tick(self, ts: datetime) -> int:
        """A line read at ``ts``: its time in ms, and the clock moved to it."""
        self.stats.lines += 1
        if ts is not self._last_ts:  # parsers reuse one datetime per distinct stamp
            self._last_ts, self._last_ms = ts, to_ms(ts)
        self._now_ms = max(self._now_ms, self._last_ms)
        return self._last_ms

    def _tock(self, out: list[Output]) -> None:
        """After a record: what the clock made due, and now and then the stale ones."""
        due = self._due
        if due and due[0][0] <= self._now_ms:
            self._report_due(out)
        if self.stats.lines % 1024 == 0:
            self._evict_stale(out)

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

    def _postfix(self, record: LogRecord, daemon: str, ts_ms: int, out: list[Output]) -> None:
        self.stats.postfix_lines += 1
        fact = parse_postfix(daemon, record.message)
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
        by_service = bool(self._reinjection) and isinstance(fact, _SESSION_FACTS) \
            and record.tag.rpartition("/")[0] in self._reinjection
        if by_service:
            message.original_event_id = message.original_event_id or message.event_id  # a copy
        if isinstance(fact, ClientSeen):
            message.client_name, message.client_ip = fact.client_name, client_address(fact.client_ip)
            message.sasl_username = fact.sasl_username
            self._joins.client_seen(message, fact.orig_qid, by_service)
        elif isinstance(fact, PickedUp):
            message.local_submission = True
            message.sender = fact.sender
        elif isinstance(fact, MessageIdSeen):
            self._joins.message_id(message, fact.message_id)
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

    def _message(self, host: str, qid: str, ts: datetime, ts_ms: int, out: list[Output]) -> OpenMessage:
        key = (host, qid)
        message = self._messages.get(key)
        if message is None:
            message = self._messages[key] = OpenMessage(host, qid, ts, ts_ms, first_position=self._position)
            self._joins.opened(message)
            if len(self._messages) > self._max:
                oldest, first = next(iter(self._messages.items()))
                self._evict(oldest, first, out)
        else:
            message.last_ms = ts_ms
            self._messages.move_to_end(key)
        return message

    def _queued(self, message: OpenMessage, fact: Queued, ts: datetime, ts_ms: int) -> None:
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

    def _delivery(self, message: OpenMessage, fact: Delivery, ts: datetime, ts_ms: int,
                  out: list[Output]) -> None:
        recipient = fact.orig_recipient or fact.recipient
        if recipient not in message.recipients and len(message.recipients) < MAX_RECIPIENTS_LISTED:
            message.recipients.append(recipient)
        if fact.status == "deferred":
            message.deferred[fact.recipient] = None
        else:
            message.deferred.pop(fact.recipient, None)
        handed_to_filter = fact.queued_as is not None and is_loopback_relay(fact.relay)
        if handed_to_filter:
            self._joins.link_copy(message, str(fact.queued_as))
        else:
            self._outcome(message, ts, ts_ms, fact.recipient, fact.status, out, fact)
        if message.nrcpt is not None and len(message.recipients) >= message.nrcpt:
            self._report(message, out)

    def _expired(self, message: OpenMessage, ts: datetime, ts_ms: int, out: list[Output]) -> None:
        """The queue lifetime ended: every recipient still deferred has failed for good."""
        for recipient in message.deferred:
            self._outcome(message, ts, ts_ms, recipient, "expired", out)
        message.deferred.clear()

    def _outcome(self, message: OpenMessage, ts: datetime, ts_ms: int, recipient: str,
                 status: str, out: list[Output], line: Delivery | None = None) -> None:
        """One recipient's outcome (``line``: the delivery line that said it, if one did)."""
        self.stats.delivery_events += 1
        if not self._deliveries:
            return
        if line is None:
            out.append(delivery_event(message, self._rules, ts, ts_ms, recipient, status))
        else:
            out.append(delivery_event(message, self._rules, ts, ts_ms, recipient, status,
                                      orig=line.orig_recipient, dsn=line.dsn, relay=line.relay,
                                      delay_s=line.delay_s, response=line.text))

    def _refused_queued(self, record: LogRecord, message: OpenMessage, fact: Refused,
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

    def _held(self, message: OpenMessage, fact: Refused, out: list[Output]) -> None:
        """Queued into the hold queue (HOLD action): accepted, and qmgr will not say so."""
        if message.sender is None:
            message.sender = fact.sender
        if fact.recipient and fact.recipient not in message.recipients:
            message.recipients.append(fact.recipient)
        if message.queued_ts is None:
            message.queued_ts = message.first_ts
            heapq.heappush(self._due, (self._now_ms + self._settle_ms, message.host, message.qid))

    def _refused_recipient(self, record: LogRecord, message: OpenMessage, fact: Refused,
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

    def _emit_refused(self, out: list[Output], record: LogRecord, fact: Refused,
                      **who: Any) -> None:
        """The refused MailEvent of one refusal line (``event_building.refused_event``)."""
        emit_event(out, self.stats, lambda: refused_event(record, fact, self._rules, **who),
                   f"{record.tag}: {record.message}")

    def _judge(self, fact: Refused) -> Literal["own", "spam"] | None:
        """The refusal's reply judged (see refusal_replies), counted in the stats."""
        if fact.reply is None:
            self.stats.ambiguous_refusals += 1
        judged = self._replies.judge(fact.reply)
        self.stats.own_refusals += judged == "own"
        return judged

    # -- reporting ---------------------------------------------------------

    def _report_due(self, out: list[Output]) -> None:
        while self._due and self._due[0][0] <= self._now_ms:
            _, host, qid = heapq.heappop(self._due)
            message = self._messages.get((host, qid))
            if message is not None:
                self._report(message, out)
                if message.refusal is not None:  # nothing more will come for it
                    self._messages.pop((host, qid), None)
                    remember(self._finished, (host, qid), None, RECENT_LOOKUPS)

    def _report(self, message: OpenMessage, out: list[Output]) -> None:
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
                apply_verdict(message, verdict)
            elif verdict is not None:
                self.stats.ambiguous_verdicts += 1
        emit_event(out, self.stats, lambda: message_event(message, self._rules, accepted),
                   f"{message.host}/{message.qid}")

    def _evict_stale(self, out: list[Output]) -> None:
        cutoff = self._now_ms - self._stale_ms
        while self._messages:
            key, message = next(iter(self._messages.items()))
            if message.last_ms >= cutoff:
                break
            self._evict(key, message, out)

    def _evict(self, key: Key, message: OpenMessage, out: list[Output]) -> None:
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


