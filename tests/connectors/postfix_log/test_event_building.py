"""Events built from what the reader gathered: every value cut to its limit and flagged, a
message no valid event can be made of counted and sampled, never raised."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.postfix_log.event_building import (
    Fit,
    delivery_event,
    emit_event,
    message_event,
    refused_event,
)
from connectors.postfix_log.open_message import OpenMessage
from connectors.postfix_log.postfix_lines import Refused
from connectors.postfix_log.syslog_formats import LogRecord
from connectors.postfix_log.tracker_stats import TrackerStats
from schemas.addresses import MAX_ADDRESS
from schemas.config import Networks
from schemas.direction import DirectionRules
from schemas.events import MailEvent
from schemas.vocabulary import Direction

TS = datetime(2026, 12, 6, 12, tzinfo=UTC)
RULES = DirectionRules(Networks(internal=["10.0.0.0/8"], local_domains=["example.net"]))


def test_fit_cuts_only_what_is_too_long_and_remembers_it() -> None:
    fit = Fit()
    assert fit("short", 10) == "short" and fit(None, 1) is None and not fit.cut
    assert fit("x" * 11, 10) == "x" * 10 and fit.cut


def test_a_whole_message_with_an_overlong_sender_is_cut_and_flagged() -> None:
    message = OpenMessage("mx1", "Q1", TS, 0, client_ip="10.0.0.5", sasl_username="alice",
                          sender="a" * (MAX_ADDRESS + 50) + "@example.net", nrcpt=2,
                          queued_ts=TS, recipients=["x@remote.example"])
    event = message_event(message, RULES, accepted=True)
    assert event.truncated and len(event.sender or "") == MAX_ADDRESS
    assert (event.event_id, event.recipient_count, event.direction) == (
        "mx1/Q1", 2, Direction.OUTBOUND)


def test_a_copy_s_delivery_belongs_to_its_original() -> None:
    original = OpenMessage("mx1", "Q1", TS, 0, sasl_username="alice", sender="alice@example.net")
    copy = OpenMessage("mx1", "Q2", TS, 0, original_event_id="mx1/Q1", origin=original)
    event = delivery_event(copy, RULES, TS, 5, "x@remote.example", "sent", relay="mx[192.0.2.1]")
    assert (event.event_id, event.sasl_username, event.sender) == (
        "mx1/Q1", "alice", "alice@example.net")
    assert event.delivery_id == "mx1/Q2/x@remote.example/5/sent"
    # two attempts of one recipient in one second (a queue flushed twice): the message's
    # age at each tells them apart
    first, again = (delivery_event(copy, RULES, TS, 5, "x@remote.example", "deferred",
                                   delay_s=delay) for delay in (8.6, 9.0))
    assert len({first.delivery_id, again.delivery_id}) == 2


def test_a_refusal_line_s_event_names_the_line_and_nothing_the_client_wrote_elsewhere() -> None:
    record = LogRecord(TS, "mx1", "postfix/smtpd", 42, "NOQUEUE: reject: ...")
    fact = Refused(None, "reject", "RCPT", "c.example", "192.0.2.9", "554 5.7.1 Relay denied",
                   "s@remote.example", "r@remote.example", "5.7.1 Relay denied")
    event = refused_event(record, fact, RULES, host="mx1", id_part="NOQUEUE", queue_id=None,
                          client_ip="192.0.2.9", client_name=fact.client_name,
                          sasl_username=None, sender=fact.sender, local_submission=False,
                          spam=None)
    assert not event.accepted and event.recipients == ["r@remote.example"]
    assert event.event_id.startswith("mx1/NOQUEUE/") and event.event_id.endswith("/42/r@remote.example")


def test_an_event_that_cannot_be_made_is_counted_and_sampled_not_raised() -> None:
    stats, out = TrackerStats(), []  # type: TrackerStats, list[MailEvent | DeliveryEvent]

    def broken() -> MailEvent:
        return MailEvent.model_validate({"event_id": "x"})

    emit_event(out, stats, broken, "mx1/Q9")
    assert out == [] and stats.invalid == 1
    assert stats.unparsed_samples[-1].startswith("mx1/Q9: no valid event:")
    message = OpenMessage("mx1", "Q1", TS, 0, queued_ts=TS, sender="")
    emit_event(out, stats, lambda: message_event(message, RULES, True), "mx1/Q1")
    assert len(out) == 1 and stats.mail_events == 1
