"""The router: source records -> SubjectBatch records per counting partition, with each source's
mark and progress; revoked sources leave nothing behind."""

from __future__ import annotations

import itertools

import pytest
from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]

from pipeline.engine.evaluator import ThresholdEngine
from pipeline.streaming.router import MARK_EVERY_MS, RECORD_BYTES, Routed, Router, SubjectPartitioner
from schemas.config import Networks
from schemas.direction import DirectionRules
from schemas.events import PolicyEvent, PolicyRequest
from schemas.subject_batch import SubjectBatch
from schemas.time_ms import to_ms
from tests.pipeline.engine.builders import T0, config, mail, threshold

START = to_ms(T0)
MAIL = ("mail", 0)


def router(partitions: int = 4, lateness_ms: int = 1_000) -> Router:
    engine = ThresholdEngine(config(threshold(key="sasl_username"), threshold(name="ip",
                                                                              key="client_ip")))
    return Router(engine, SubjectPartitioner(partitions), lateness_ms)


def decoded(out: list[Routed]) -> dict[int, SubjectBatch]:
    """The batches as the counting partitions read them: their records."""
    return {partition: SubjectBatch.model_validate_json(record) for partition, _, record in out}


def test_each_subject_goes_to_the_partition_its_key_hashes_to() -> None:
    r = router()
    r.route(MAIL, 7, mail(at_ms=250).model_dump_json().encode())
    batches = decoded(r.batches(START + 10_000))
    entries = [(partition, entry) for partition, batch in batches.items()
               for entry in batch.entries]
    assert sorted(entry[0] for _, entry in entries) == ["client_ip:10.0.0.5", "sasl_username:alice"]
    for partition, entry in entries:
        assert partition == (murmur2(entry[0].encode()) & 0x7FFFFFFF) % 4  # as Java clients
        assert entry[1:3] == (7, START + 250)
    assert all(batch.upto == 7 and batch.mark_ms == START + 250 for batch in batches.values())
    assert set(batches) == set(range(4))  # the new mark goes to every partition


def test_a_source_read_to_its_end_is_marked_at_the_wall_clock_less_the_lateness() -> None:
    r = router(lateness_ms=1_000)
    r.route(MAIL, 0, mail(at_ms=0).model_dump_json().encode())
    r.batches(START + 5_000)
    r.at_end(MAIL)
    marks = {b.mark_ms for b in decoded(r.batches(START + 5_000 + MARK_EVERY_MS)).values()}
    assert marks == {START + 4_000 + MARK_EVERY_MS}
    r.route(MAIL, 1, mail(at_ms=100).model_dump_json().encode())  # behind again: its own mark
    marks = {b.mark_ms for b in decoded(r.batches(START + 6_000)).values()}
    assert marks == {START + 100}


def test_an_idle_settings_source_is_marked_at_the_wall_clock_itself() -> None:
    """Its partitions are idle almost always: marked with the mail sources' lateness, they
    held every live count back by that much (detection p50 1.17 s at 5,000 events/s)."""
    r = router(lateness_ms=1_000)
    r.settings_topic = SETTINGS[0]
    r.at_end(SETTINGS)
    r.at_end(MAIL)
    marks = {(batch.source_topic, batch.mark_ms) for _, batch, _ in r.batches(START)}
    assert marks == {(SETTINGS[0], START), (MAIL[0], START - 1_000)}


def test_marks_alone_are_sent_at_most_every_mark_interval() -> None:
    r = router()
    r.at_end(MAIL)
    assert len(r.batches(START)) == 4
    assert r.batches(START + MARK_EVERY_MS - 1) == []  # moved, but too soon
    assert len(r.batches(START + MARK_EVERY_MS)) == 4


def test_a_bad_record_raises_and_a_skipped_one_still_advances_the_position() -> None:
    r = router()
    with pytest.raises(ValueError):
        r.route(MAIL, 3, b"{not json")
    assert r.position(MAIL) == 4  # read: the caller dead-letters it
    r.skipped(MAIL, 9)
    assert r.position(MAIL) == 10


def test_forgotten_sources_leave_no_entries_or_progress_behind() -> None:
    r = router()
    other = ("mail", 1)
    r.route(MAIL, 0, mail().model_dump_json().encode())
    r.route(other, 0, mail(sasl_username="bob").model_dump_json().encode())
    r.forget([MAIL])
    batches = decoded(r.batches(START + 1_000))
    assert {(b.source_topic, b.source_partition) for b in batches.values()} == {other}
    assert r.sources() == [other] and r.position(MAIL) is None
    r.route(MAIL, 0, mail().model_dump_json().encode())  # assigned back: read again
    batches = decoded(r.batches(START + 2_000))
    assert sum(len(b.entries) for b in batches.values() if b.source_partition == 0) == 2


def test_sources_ahead_of_the_slowest_by_more_than_the_lead() -> None:
    r, sources = router(), [("mail", n) for n in range(3)]
    r.route(sources[0], 0, mail(at_ms=30_000).model_dump_json().encode())
    r.route(sources[1], 0, mail(at_ms=1_000).model_dump_json().encode())
    # one source has given no event time yet: whoever has runs ahead of it
    assert r.ahead(sources, lead_ms=10_000) == {sources[0], sources[1]}
    r.route(sources[2], 0, mail(at_ms=9_000).model_dump_json().encode())
    assert r.ahead(sources, lead_ms=10_000) == {sources[0]}  # 29 s ahead; the third 8 s
    assert r.ahead(sources, lead_ms=5_000) == {sources[0], sources[2]}
    r.at_end(sources[1])  # read to its end: the slowest still read is the third
    assert r.ahead(sources, lead_ms=20_000) == {sources[0]}
    assert r.ahead(sources, lead_ms=21_000) == set()
    r.at_end(sources[2])
    assert r.ahead(sources, lead_ms=0) == set()  # only one left being read


def test_a_policy_request_that_does_not_count_still_moves_its_sources_mark() -> None:
    engine = ThresholdEngine(config(threshold(key="sasl_username")))
    r = Router(engine, SubjectPartitioner(4), 1_000,
               DirectionRules(Networks(internal=["10.0.0.0/8"])), "policy")
    rcpt = PolicyEvent(event_id="mx1/policy/x", ts=T0, host="mx1", answer="DUNNO",
                       request=PolicyRequest(request="smtpd_access_policy", protocol_state="RCPT",
                                             client_address="10.0.0.5", sasl_username="alice"))
    r.route(("policy", 0), 0, rcpt.model_dump_json().encode())  # counted at END-OF-MESSAGE only
    batches = decoded(r.batches(START + 1_000)).values()
    assert [b.entries for b in batches] == [[]] * 4  # nothing to count, but its time
    assert {b.mark_ms for b in batches} == {START}
    assert r.ahead([("policy", 0), MAIL], lead_ms=0) == {("policy", 0)}  # but it has a mark


def test_delivery_attempts_are_routed_with_their_flags_when_a_threshold_counts_them() -> None:
    from schemas.vocabulary import DELIVERY_UNIT, FLAG_BITS, Flag
    from tests.pipeline.engine.builders import delivery

    engine = ThresholdEngine(config(
        threshold(key="sasl_username"),
        threshold(name="bounces", key="sasl_username", count="deliveries", flagged="bounced",
                  flagged_units=20, messages=30)))
    r = Router(engine, SubjectPartitioner(1), 1_000, delivery_topic="deliveries")
    bounce = delivery(300, status="bounced", response="host mx[192.0.2.1] said: 550 5.1.1 no")
    r.route(("deliveries", 0), 4, bounce.model_dump_json().encode())
    r.route(("deliveries", 0), 5, delivery(400, status="expired").model_dump_json().encode())
    [batch] = decoded(r.batches(START + 1_000)).values()
    [entry] = batch.entries  # the expiry is no attempt of its own
    flags = DELIVERY_UNIT | FLAG_BITS[Flag.BOUNCED] | FLAG_BITS[Flag.REMOTE_REFUSED]
    assert (entry[0], entry[1], entry[2], entry[3]) == ("sasl_username:alice", 4, START + 300,
                                                        flags)
    assert batch.upto == 5 and batch.mark_ms == START + 400


SETTINGS = ("floodgate.subject-settings", 0)


def _settings(subject: str, at_ms: int, **fields: object) -> bytes:
    from schemas.subject_settings import SubjectSettings
    from schemas.time_ms import from_ms
    return SubjectSettings(subject=subject, actor="op", reason="test", at=from_ms(START + at_ms),
                           **fields).to_json()  # type: ignore[arg-type]


def test_settings_records_go_to_their_subjects_partition_at_their_own_time() -> None:
    r = router()
    r.settings_topic = SETTINGS[0]
    r.route(SETTINGS, 3, _settings("sasl_username:alice", 40, subject_class="business"),
            b"sasl_username:alice", START + 99_999)
    r.route(SETTINGS, 4, None, b"client_ip:10.0.0.5", START + 60)  # a tombstone
    batches = decoded(r.batches(START + 10_000))
    settings = {entry[0]: (partition, entry) for partition, batch in batches.items()
                for entry in batch.settings}
    partition, entry = settings["sasl_username:alice"]
    assert partition == (murmur2(b"sasl_username:alice") & 0x7FFFFFFF) % 4
    assert entry[1:3] == (3, START + 40)  # the record's `at`, not its Kafka timestamp
    assert entry[3] == '{"c":"business"}'  # what counting needs of it, compact
    partition, entry = settings["client_ip:10.0.0.5"]
    assert partition == (murmur2(b"client_ip:10.0.0.5") & 0x7FFFFFFF) % 4
    assert entry[1:] == (4, START + 60, None)  # removal, at its Kafka timestamp
    assert all(batch.upto == 4 and batch.mark_ms == START + 60 for batch in batches.values())


@pytest.mark.parametrize(("key", "value", "problem"), [
    (b"nonsense", None, "not a subject key"),
    (b"sasl_username:bob", _settings("sasl_username:alice", 0), "its key"),
    (b"sasl_username:alice", b'{"subject": "sasl_username:alice"}', "validation"),
])
def test_a_bad_settings_record_raises_and_routes_nothing(key: bytes, value: bytes | None,
                                                         problem: str) -> None:
    r = router()
    r.settings_topic = SETTINGS[0]
    with pytest.raises(ValueError, match=problem):
        r.route(SETTINGS, 0, value, key, START)
    r.skipped(SETTINGS, 0)
    assert all(not batch.settings for _, batch, _ in r.batches(START + 10_000))


def test_a_cycle_too_large_for_one_record_goes_in_several_each_complete_up_to_its_upto() -> None:
    """10,000 messages (20,000 entries, 9 MB of JSON) in one cycle for one partition: batches of
    at most RECORD_BYTES each, in order, never cutting a message's entries apart; only the
    last carries the mark; an earlier batch's upto stops before the next batch's first."""
    r = router(partitions=1)
    for offset in range(10_000):
        r.route(MAIL, offset, mail(at_ms=offset, client_ip=f"10.0.{offset >> 8}.{offset & 255}",
                                   sasl_username="a" * 400).model_dump_json().encode())
    out = r.batches(START + 20_000)
    assert len(out) > 5
    encoded = [record for _, _, record in out]
    assert max(len(raw) for raw in encoded) <= RECORD_BYTES  # below Kafka's 1 MB
    batches = [SubjectBatch.model_validate_json(raw) for raw in encoded]
    entries = [entry for batch in batches for entry in batch.entries]
    assert len(entries) == 20_000 and [e[1] for e in entries] == sorted(e[1] for e in entries)
    for batch, following in itertools.pairwise(batches):
        assert batch.mark_ms is None and batch.upto < following.entries[0][1]
        assert all(entry[1] <= batch.upto for entry in batch.entries)
    assert batches[-1].upto == 9_999 and batches[-1].mark_ms == START + 9_999


def test_many_settings_records_are_split_too() -> None:
    r = router(partitions=1)
    r.settings_topic = SETTINGS[0]
    for offset in range(3_000):
        subject = f"sasl_username:{offset:05d}{'u' * 500}"
        r.route(SETTINGS, offset, _settings(subject, offset, subject_class="business"),
                subject.encode(), START)
    out = r.batches(START + 10_000)
    assert len(out) > 3 and [entry[1] for _, batch, _ in out for entry in batch.settings] == \
        list(range(3_000))
    assert all(len(record) <= RECORD_BYTES for _, _, record in out)
