"""Joins across lines and hops: spam filters' verdicts to their message, and a content
filter's re-injected copy to the message it copies.

A verdict may come before its message's first line (kept, bounded, until it
does), name the message by queue id, by Message-ID (spamd) or by neither
host nor queue id alone (rspamd's own log); a copy is known by the filter's
``queued as`` or by XFORWARD, never by text the client wrote.
"""

from __future__ import annotations

from collections import OrderedDict
from itertools import islice

from connectors.postfix_log.open_message import (
    RECENT_LOOKUPS,
    Key,
    OpenMessage,
    apply_verdict,
    remember,
)
from connectors.postfix_log.spam_verdicts import RspamdLine, SpamVerdict
from connectors.postfix_log.tracker_stats import TrackerStats
from schemas.addresses import is_loopback

HOSTLESS_SCAN = 2_000  # open messages searched for a verdict line that names no host


class ContentJoins:
    """``messages``: the reader's open messages (shared, not copied); ``stats``: its
    ``TrackerStats`` (late verdicts are counted there)."""

    def __init__(self, messages: OrderedDict[Key, OpenMessage], stats: TrackerStats) -> None:
        self._messages, self.stats = messages, stats
        self.early_verdicts: OrderedDict[Key, SpamVerdict] = OrderedDict()
        self.reinjected: OrderedDict[Key, str] = OrderedDict()  # copy -> original event_id
        self.by_message_id: OrderedDict[Key, str] = OrderedDict()  # (host, msgid) -> qid

    def opened(self, message: OpenMessage) -> None:
        """A message's first line: what was waiting for it joins it now."""
        key = (message.host, message.qid)
        original = self.reinjected.pop(key, None)
        if original is not None:  # its own client line must still bear it out (``client_seen``)
            message.original_event_id, message.copy_unconfirmed = original, True
        verdict = self.early_verdicts.pop(key, None) or self.early_verdicts.pop(("", message.qid),
                                                                                 None)
        if verdict is not None:
            apply_verdict(message, verdict)

    def message_id(self, message: OpenMessage, message_id: str) -> None:
        # Only for joining spamd's verdicts: a Message-ID is the client's text, so a copy
        # re-injected by a content filter is known by the filter's "queued as", never by it.
        message.message_id = message_id or None
        if message_id and message.original_event_id is None:
            remember(self.by_message_id, (message.host, message_id), message.qid, RECENT_LOOKUPS)

    def rspamd(self, host: str, line: RspamdLine) -> None:
        """Join rspamd's line to the message its start names (see spam_verdicts)."""
        best: tuple[int, OpenMessage] | None = None
        for qid in line.qids:
            message = self._messages.get((host, qid)) if host else self.any_host(qid)
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

    def verdict(self, host: str, verdict: SpamVerdict) -> None:
        qid = verdict.qid
        if qid is None and verdict.candidates:
            # Client text spelled more queue ids: the one open message among them, if one.
            open_ = [q for q in verdict.candidates
                     if (self._messages.get((host, q)) if host else self.any_host(q))]
            qid = open_[0] if len(open_) == 1 else None
        if qid is None and verdict.message_id:
            qid = self.by_message_id.get((host, verdict.message_id))
        if qid is None:
            self.stats.late_verdicts += 1
            return
        message = self._messages.get((host, qid)) if host else self.any_host(qid)
        if message is not None and message.origin is not None and not message.origin.reported:
            message = message.origin  # a filter's verdict on a copy is a verdict on the message
        if verdict.queued_as and message is not None:
            self.link_copy(message, verdict.queued_as)
        if message is None:
            remember(self.early_verdicts, (host, qid), verdict, RECENT_LOOKUPS)
        elif message.reported:
            self.stats.late_verdicts += 1
        else:
            apply_verdict(message, verdict)

    def copy_of(self, copy: OpenMessage, original_qid: str) -> None:
        """XFORWARD named the message ``copy`` is a copy of."""
        original = self._messages.get((copy.host, original_qid))
        copy.original_event_id = original.event_id if original else f"{copy.host}/{original_qid}"
        if original is not None and not original.reported:
            copy.origin = original

    def link_copy(self, original: OpenMessage, copy_qid: str) -> None:
        """``copy_qid`` is the next hop's queue id for ``original``: the same message, if the
        message of that queue id bears it out (``_re_injected``)."""
        copy = self._messages.get((original.host, copy_qid))
        if copy is None:
            remember(self.reinjected, (original.host, copy_qid), original.event_id, RECENT_LOOKUPS)
        elif (copy is not original and copy.original_event_id is None and not copy.reported
              and copy.first_ts >= original.first_ts and _re_injected(copy)):
            copy.original_event_id, copy.origin = original.event_id, original

    def client_seen(self, message: OpenMessage, orig_qid: str | None, by_service: bool) -> None:
        """A message's client line: XFORWARD's ``orig_queue_id`` (``orig_qid``) or the
        re-injection service (``by_service``) make it a copy; a message named as a copy
        before this line stays one only if the line bears it out, else it counts as its own."""
        if message.copy_unconfirmed:
            message.copy_unconfirmed = False
            if not (by_service or orig_qid is not None or _re_injected(message)):
                message.original_event_id = message.origin = None
        if orig_qid is not None and message.original_event_id is None:
            self.copy_of(message, orig_qid)

    def any_host(self, qid: str) -> OpenMessage | None:
        """A verdict line without a host (rspamd's own log): the message with that queue id."""
        # The filter logs while the message is being received: look among the newest only.
        for (_, found_qid), message in islice(reversed(self._messages.items()), HOSTLESS_SCAN):
            if found_qid == qid:
                return message
        return None


def _re_injected(message: OpenMessage) -> bool:
    """What a content filter's re-injection looks like: over loopback, with no SASL login (a
    client's own message, even one from webmail on this host, logs in or has left earlier).
    A message whose client line has not come yet is not ruled out."""
    if message.sasl_username:
        return False
    return message.client_ip is None or is_loopback(message.client_ip)
