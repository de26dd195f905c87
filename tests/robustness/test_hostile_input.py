"""Property-based fuzzing of every parser that takes outside input, on a fixed budget per run:
the policy protocol, the log line parser, the worker's record decoding, and the SIEM and reply
renderers. Hostile values (CR/LF, NUL, 64 KiB lines, invalid UTF-8, huge recipient lists)
must never crash, hang, or reach a reply or a SIEM line unescaped."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from connectors.postfix_log.reader import LogReader
from connectors.postfix_policy.policy_protocol import (
    MAX_LINE,
    MAX_REPLY_TEXT,
    ProtocolError,
    RequestReader,
    reply,
)
from connectors.siem import cef, ecs
from pipeline.engine.enforcement import ActiveActions
from pipeline.engine.policy_decision import PolicyResponder
from pipeline.streaming.state import stored_state
from schemas.config import Exempt, Networks, PolicySettings, ReplyTexts
from schemas.direction import DirectionRules
from schemas.events import ActionEvent
from schemas.subject_batch import BATCH_KIND, LIFT_KIND, SubjectBatch
from tests.fixtures.counting import counting_partition
from tests.fixtures.policy_requests import NOW, action
from tests.pipeline.engine.builders import T0, config, mail, threshold

BUDGET = settings(max_examples=300, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HOSTILE_TEXT = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",))),  # no lone surrogates
    st.text(alphabet=st.sampled_from(list("\r\n\x00\x1b|=\\\u2028\u2029ab= @.")), max_size=200),
    # invalid UTF-8, decoded as every reader of ours decodes it
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace")),
)
REPLY_LINE = re.compile(rf"action=[A-Z_]+( [^\x00-\x1f\x7f]{{0,{MAX_REPLY_TEXT}}})?\n\n")


@BUDGET
@given(st.lists(st.binary(max_size=MAX_LINE * 2), max_size=12))
def test_policy_reader_takes_any_bytes(chunks: list[bytes]) -> None:
    reader = RequestReader()
    try:
        for chunk in chunks:
            for request in reader.feed(chunk):
                assert all(isinstance(k, str) and isinstance(v, str) for k, v in request.items())
                assert len(request) <= 128
    except ProtocolError:
        pass  # the server closes such a connection
    assert len(reader._buffer) <= MAX_LINE * 2 + MAX_LINE


@BUDGET
@given(st.dictionaries(st.sampled_from(["sasl_username", "sender", "client_address",
                                        "recipient", "protocol_state", "instance", "x"]),
                       HOSTILE_TEXT, max_size=7))
def test_no_request_value_reaches_a_reply(attributes: dict[str, str]) -> None:
    view = ActiveActions()
    hostile = attributes.get("sasl_username") or "mallory"
    view.apply(action("block", "sasl_username", hostile[:200] or "x"))
    texts = ReplyTexts(block="5.7.1 {subject_type} {subject} {threshold} {action_id} {expires_at}")
    responder = PolicyResponder(PolicySettings(texts=texts), Exempt(), view)
    wire = responder.answer(attributes, NOW).wire.decode()
    assert REPLY_LINE.fullmatch(wire), wire


@BUDGET
@given(st.sampled_from(sorted(["DUNNO", "REJECT", "DEFER", "HOLD", "WARN"])), HOSTILE_TEXT)
def test_replies_are_one_bounded_line(keyword: str, text: str) -> None:
    wire = reply(keyword, text).decode()
    assert REPLY_LINE.fullmatch(wire), wire


LOG_LINE = st.one_of(
    HOSTILE_TEXT,
    st.builds(lambda head, body: head + body,
              st.sampled_from(["Nov 27 12:00:00 mx1 postfix/smtpd[12]: ",
                               "2026-11-27T12:00:00+00:00 mx1 postfix/qmgr[3]: ABC123: ",
                               "Nov 27 12:00:00 mx1 postfix/cleanup[4]: 4Fx: ",
                               '{"MESSAGE": "', "<22>1 2026-11-27T12:00:00Z mx1 postfix/smtp 5 - - "]),
              HOSTILE_TEXT),
    st.just("Nov 27 12:00:00 mx1 postfix/smtpd[1]: " + "A" * 65_536),
    st.just("Nov 27 12:00:00 mx1 postfix/qmgr[1]: 4Fx: from=<a@b>, size=1, nrcpt=" + "9" * 40),
)


@BUDGET
@given(st.lists(LOG_LINE, max_size=20))
def test_log_reader_takes_any_line(lines: list[str]) -> None:
    reader = LogReader(DirectionRules(Networks()))
    for line in lines:
        for output in reader.feed_line(line):
            json.loads(output.model_dump_json())  # whatever comes out is a valid record
    reader.finish()


ENGINE_CONFIG = config(threshold(name="burst", messages=3, window="10s", duration="1m"))


@BUDGET
@given(st.binary(max_size=400), st.binary(max_size=2_000), st.sampled_from(
    [BATCH_KIND, LIFT_KIND, None, b"tick"]))
def test_worker_records_fail_only_as_dead_letters(key: bytes, value: bytes,
                                                  kind: bytes | None) -> None:
    partition = counting_partition(ENGINE_CONFIG)
    try:
        with contextlib.suppress(ValueError, ValidationError):  # dead-lettered by the loop
            partition.take(1, kind, key, value)
        partition.release(lambda entry, error: None)
    finally:
        partition.store.close()


@BUDGET
@given(st.lists(st.tuples(HOSTILE_TEXT, st.integers(0, 2**62), st.integers(0, 255),
                          st.integers(1, 2**31 - 1), st.integers(0, 2**64 - 1),
                          st.text(max_size=16), st.none() | st.text(max_size=255)), max_size=5))
def test_valid_batches_with_hostile_fields_count_or_dead_letter_per_entry(
        entries: list[tuple[str, int, int, int, int, str, str | None]]) -> None:
    partition = counting_partition(ENGINE_CONFIG)
    failed: list[str] = []
    try:
        batch = SubjectBatch(source_topic="mail", source_partition=0, upto=len(entries),
                             mark_ms=2**62, entries=[(subject[:500] or "x:y", n, ts, flags, units,
                                                      digest, direction, domain)
                                                     for n, (subject, ts, flags, units, digest,
                                                             direction, domain)
                                                     in enumerate(entries)])
        partition.take(0, BATCH_KIND, b"", batch.model_dump_json().encode())
        released = partition.release(lambda entry, error: failed.append(error))
        assert len(released) == len(entries)
    except ValidationError:
        pass  # a subject key too short or long: the batch is dead-lettered whole
    finally:
        partition.store.close()


@BUDGET
@given(st.binary(max_size=3_000))
def test_stored_state_bytes_fail_only_as_value_errors(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        stored_state.unpack(data)


@BUDGET
@given(HOSTILE_TEXT, HOSTILE_TEXT, st.lists(st.emails(), max_size=2_000),
       st.integers(min_value=2048, max_value=9000))
def test_siem_lines_stay_one_bounded_line(subject: str, reason: str, recipients: list[str],
                                          budget: int) -> None:
    act = ActionEvent(action_id="a", ts=T0, subject_type="sender", subject=subject[:300] or "x",
                      action="block", threshold="t", state="active", origin="manual",
                      triggered_at=T0, expires_at=T0 + timedelta(hours=1), reason=reason[:1000])
    event = mail(0, recipients=recipients, recipient_count=len(recipients),
                 sasl_username=subject[:300] or None, reject_reason=reason[:2000] or None)
    ecs_action = ecs.bounded_line(ecs.action_document(act), budget)
    for line in (cef.action_line(act, budget), cef.mail_line(event, budget), ecs_action,
                 ecs.bounded_line(ecs.mail_document(event), budget)):
        assert len(line.splitlines()) == 1 and "\r" not in line and "\x00" not in line
        assert "\u2028" not in line and "\x1b" not in line
        assert len(line.encode()) <= budget
    document = json.loads(ecs_action)
    assert act.subject.startswith(document["floodgate"]["subject"])
    assert ("floodgate.subject" in document["floodgate"].get("cut", {})
            or document["floodgate"]["subject"] == act.subject)
