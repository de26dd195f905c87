"""The design card's examples, edges and lifecycle, one scenario each."""

from pipeline.engine.evaluator import Pruned, Subject, ThresholdEngine
from pipeline.engine.subject_state import SubjectState
from schemas.config import FloodgateConfig
from schemas.events import ActionEvent, MailEvent
from schemas.time_ms import to_ms
from schemas.vocabulary import SubjectType
from tests.pipeline.engine.builders import T0, config, mail, threshold

BURST = threshold(name="burst", key="sasl_username", window="30s", messages=60, spams=0,
                  action="defer", duration="15m")
ALL_SPAM = threshold(name="all-spam", key="sender", window="30s", messages=10, spams=10,
                     action="block", duration="1h")


def run(cfg: FloodgateConfig, events: list[MailEvent]) -> list[tuple[int, ActionEvent]]:
    """(index of the firing event, action) for every firing."""
    engine = ThresholdEngine(cfg)
    states: dict[Subject, SubjectState] = {}
    out = []
    for index, event in enumerate(events):
        for subject in engine.subjects(event):
            for action in engine.observe(subject, states.setdefault(subject, SubjectState()), event):
                out.append((index, action))
    return out


def test_sixty_emails_in_thirty_seconds_fire_at_the_sixtieth_once() -> None:
    events = [mail(i * 400) for i in range(100)]  # 2.5 messages a second, for 40 s
    fired = run(config(BURST), events)
    assert [index for index, _ in fired] == [59]
    action = fired[0][1]
    assert (action.subject_type, action.subject, action.action.value) == (
        SubjectType.SASL_USERNAME, "alice", "defer")
    assert action.evidence is not None
    assert action.evidence.messages == 60 and action.evidence.spams == 0
    assert to_ms(action.expires_at) - to_ms(action.triggered_at) == 15 * 60_000


def test_fifty_nine_in_the_window_never_fire() -> None:
    # 59 messages every 30 s: each window (t - 30 s, t] holds 59 at most.
    events = [mail(i * (30_000 / 59)) for i in range(59 * 4)]
    assert run(config(BURST), events) == []


def test_window_start_is_exclusive() -> None:
    small = threshold(name="three", window="10s", messages=3, duration="1m")
    assert run(config(small), [mail(0), mail(5_000), mail(10_000)]) == []
    assert [i for i, _ in run(config(small), [mail(0), mail(5_000), mail(9_999)])] == [2]


def test_ten_spams_out_of_ten_messages() -> None:
    nine_spam_one_ham = [mail(i * 100, spam=i != 4) for i in range(10)]
    assert run(config(ALL_SPAM), nine_spam_one_ham) == []
    ten_spam = [mail(i * 100, spam=True) for i in range(10)]
    fired = run(config(ALL_SPAM), ten_spam)
    assert [i for i, _ in fired] == [9]
    assert fired[0][1].subject == "alice@example.net"
    assert fired[0][1].evidence is not None and fired[0][1].evidence.spams == 10


def test_spam_rejected_before_queueing_counts_other_refusals_do_not() -> None:
    refused_as_spam = [mail(i * 100, accepted=False, spam=True) for i in range(10)]
    assert len(run(config(ALL_SPAM), refused_as_spam)) == 1
    relay_denied = [mail(i * 100, accepted=False, spam=None) for i in range(100)]
    assert run(config(BURST), relay_denied) == []


def test_fires_again_only_after_the_action_expired() -> None:
    short = threshold(name="short", window="10s", messages=3, duration="20s", action="warn")
    events = [mail(i * 1_000) for i in range(60)]  # one a second for a minute
    fired = run(config(short), events)
    # at 2 s (third message), then at the first message at or after each expiry
    assert [to_ms(a.triggered_at) - to_ms(T0) for _, a in fired] == [2_000, 22_000, 42_000]
    assert len({a.action_id for _, a in fired}) == 3


def test_counting_recipients() -> None:
    per_rcpt = threshold(name="rcpts", window="1m", messages=10, count="recipients")
    events = [mail(i, recipients=[f"r{n}@x.org" for n in range(4)]) for i in range(3)]
    fired = run(config(per_rcpt), events)
    assert [i for i, _ in fired] == [2]
    assert fired[0][1].evidence is not None
    assert fired[0][1].evidence.messages == 12 and fired[0][1].evidence.recipients == 12


def test_bounces_are_counted_against_nobody() -> None:
    bounces = [mail(i, sender="", mta_generated=True, sasl_username=None) for i in range(100)]
    domain = threshold(name="dom", key="sender_domain", messages=5)
    assert run(config(BURST, domain), bounces) == []


def test_action_ids_are_deterministic() -> None:
    events = [mail(i * 10) for i in range(60)]
    first = run(config(BURST), events)
    again = run(config(BURST), [e.model_copy() for e in events])
    assert [a.action_id for _, a in first] == [a.action_id for _, a in again]


def test_lift_restarts_counting() -> None:
    engine = ThresholdEngine(config(threshold(name="t", window="1m", messages=3, duration="1h")))
    state = SubjectState()
    subject = Subject(SubjectType.SASL_USERNAME, "alice")
    fired = [a for i in range(3) for a in engine.observe(subject, state, mail(i))]
    assert len(fired) == 1
    engine.lift(state, "t")
    assert [a for i in range(3, 5) for a in engine.observe(subject, state, mail(i))] == []
    assert len(engine.observe(subject, state, mail(5))) == 1


LADDER = threshold(name="t", window="1m", messages=3, duration="10m", escalate=[
    {"after": 2, "within": "1d", "action": "defer", "duration": "1h"},
    {"after": 3, "within": "1d", "action": "block", "duration": "2h"}])
HOUR_MS = 3_600_000


def _bursts(engine: ThresholdEngine, state: SubjectState, hours: list[int]) -> list[ActionEvent]:
    """3 messages at the start of each of these hours (one firing each)."""
    subject = Subject(SubjectType.SASL_USERNAME, "alice")
    return [a for h in hours for i in range(3)
            for a in engine.observe(subject, state, mail(h * HOUR_MS + i))]


def _ladder(actions: list[ActionEvent]) -> list[tuple[str, int, int | None]]:
    return [(a.action.value, (to_ms(a.expires_at) - to_ms(a.triggered_at)) // 60_000,
             a.evidence.escalation.step if a.evidence and a.evidence.escalation else None)
            for a in actions]


def test_a_repeat_offender_climbs_the_ladder_and_falls_off_it_after_a_day() -> None:
    engine = ThresholdEngine(config(LADDER))
    state = SubjectState()
    fired = _bursts(engine, state, [0, 2, 5, 9, 40])
    assert _ladder(fired) == [("defer", 10, None), ("defer", 60, 1), ("block", 120, 2),
                              ("block", 120, 2),  # the 4th in a day: still the top step
                              ("defer", 10, None)]  # 40 h later, none of them within 1d
    escalation = fired[3].evidence.escalation  # type: ignore[union-attr]
    assert escalation is not None and escalation.firing == 3  # counted up to the top `after`
    assert escalation.first_at == fired[1].triggered_at  # the oldest firing still needed


def test_a_lift_keeps_the_ladder_unless_reset() -> None:
    engine = ThresholdEngine(config(LADDER))
    kept, reset = SubjectState(), SubjectState()
    for state in (kept, reset):
        _bursts(engine, state, [0])
    engine.lift(kept, "t")
    engine.lift(reset, "t", reset=True)
    assert _ladder(_bursts(engine, kept, [1])) == [("defer", 60, 1)]
    assert _ladder(_bursts(engine, reset, [1])) == [("defer", 10, None)]


def test_a_recent_firing_keeps_the_subject_from_being_swept() -> None:
    engine = ThresholdEngine(config(LADDER))
    state = SubjectState()
    _bursts(engine, state, [0])
    assert engine.prune(state, to_ms(T0) + 23 * HOUR_MS) is Pruned.KEPT  # window long gone
    assert engine.prune(state, to_ms(T0) + 25 * HOUR_MS) is Pruned.GONE


def test_prune_forgets_idle_subjects() -> None:
    engine = ThresholdEngine(config(threshold(name="t", window="10s", messages=3, duration="1m")))
    state = SubjectState()
    subject = Subject(SubjectType.SASL_USERNAME, "alice")
    engine.observe(subject, state, mail(0))
    assert engine.prune(state, to_ms(T0) + 5_000) is Pruned.KEPT
    assert engine.prune(state, to_ms(T0) + 10_000) is Pruned.GONE


def test_a_harvest_of_unknown_recipients_fires_and_ordinary_thresholds_ignore_it() -> None:
    """Dictionary attack: an inbound client tries addresses, most are unknown mailboxes."""
    harvest = threshold(name="harvest", key="client_ip", direction="inbound", window="1m",
                        count="recipients", messages=20, flagged="unknown_recipient",
                        flagged_units=10, action="block", duration="1h")
    volume = threshold(name="volume", key="client_ip", direction="inbound", window="1m",
                       messages=12, duration="1h")
    inbound = {"sasl_username": None, "client_ip": "198.51.100.9", "direction": "inbound"}
    unknown = [mail(i * 100, accepted=False, recipients=[f"u{i}@example.net"],
                    reject_reason=f"550 5.1.1 <u{i}@example.net>: Recipient address rejected: "
                                  "User unknown in virtual mailbox table", **inbound)
               for i in range(10)]
    relayed = [mail(1_000 + i * 100, accepted=False, reject_reason="554 5.7.1 Relay access denied",
                    **inbound) for i in range(30)]
    delivered = [mail(5_000 + i * 100, recipients=["a@example.net", "b@example.net"], **inbound)
                 for i in range(5)]
    fired = run(config(harvest, volume), unknown + relayed + delivered)
    # 10 unknown + 10 delivered recipients at the 5th message; the volume threshold saw 5 units
    assert [(i, a.threshold) for i, a in fired] == [(44, "harvest")]
    evidence = fired[0][1].evidence
    assert evidence is not None and (evidence.messages, evidence.spams, evidence.flagged) == (
        20, 10, "unknown_recipient")


def test_an_ipv6_rotation_inside_one_slash_64_is_one_subject() -> None:
    per_line = threshold(name="per-line", key="client_ip", prefix={"ipv4": 24, "ipv6": 64},
                         messages=100)
    per_address = threshold(name="per-address", key="client_ip", messages=3)
    # every message from another address of the customer's /64, and of an IPv4 /24 pool
    rotating = [mail(i * 10, client_ip=f"2001:db8:1:2:{i:x}::{i + 1:x}") for i in range(100)]
    pool = [mail(i * 10, client_ip=f"198.51.100.{i}") for i in range(1, 101)]
    fired = run(config(per_line, per_address), rotating + pool)
    assert [(i, a.threshold, a.subject_type.value, a.subject) for i, a in fired] == [
        (99, "per-line", "client_net", "2001:db8:1:2::/64"),
        (199, "per-line", "client_net", "198.51.100.0/24")]
    assert ThresholdEngine(config(per_line, per_address)).subjects(rotating[0]) == [
        Subject(SubjectType.CLIENT_NET, "2001:db8:1:2::/64"),
        Subject(SubjectType.CLIENT_IP, "2001:db8:1:2::1")]


def test_a_network_subject_no_prefix_names_counts_for_no_threshold() -> None:
    line = threshold(name="line", key="client_ip", prefix={"ipv6": 64}, messages=1)
    engine = ThresholdEngine(config(line))
    for value in ("2001:db8::/48", "garbage", "10.0.0.0/x"):  # e.g. a foreign record's key
        assert engine.observe(Subject(SubjectType.CLIENT_NET, value), SubjectState(),
                              mail(client_ip="2001:db8::1")) == []


def test_thresholds_with_different_prefixes_share_a_subject_only_where_they_agree() -> None:
    wide = threshold(name="wide", key="client_ip", prefix={"ipv4": 24, "ipv6": 48}, messages=2)
    line = threshold(name="line", key="client_ip", prefix={"ipv4": 24, "ipv6": 64}, messages=2)
    engine = ThresholdEngine(config(wide, line))
    # IPv4: both count per /24, under one subject; IPv6: a /48 and a /64
    assert engine.subjects(mail(client_ip="192.0.2.7")) == [
        Subject(SubjectType.CLIENT_NET, "192.0.2.0/24")]
    assert engine.subjects(mail(client_ip="2001:db8:1:2::7")) == [
        Subject(SubjectType.CLIENT_NET, "2001:db8:1::/48"),
        Subject(SubjectType.CLIENT_NET, "2001:db8:1:2::/64")]
    fired = run(config(wide, line), [mail(0, client_ip="192.0.2.7"), mail(1, client_ip="192.0.2.9"),
                                     mail(2, client_ip="2001:db8:1:2::1"),
                                     mail(3, client_ip="2001:db8:1:3::1")])
    assert sorted((i, a.threshold, a.subject) for i, a in fired) == [
        (1, "line", "192.0.2.0/24"), (1, "wide", "192.0.2.0/24"),
        (3, "wide", "2001:db8:1::/48")]  # two /64s: the per-line threshold never fired


def test_an_address_two_prefixes_leave_whole_is_one_subject() -> None:
    pool = threshold(name="pool", key="client_ip", prefix={"ipv4": 16}, messages=2)
    address = threshold(name="address", key="client_ip", messages=2)
    engine = ThresholdEngine(config(pool, address))
    # IPv6: both count the address itself, under one subject, so each unit counts once
    assert engine.subjects(mail(client_ip="2001:db8::1")) == [
        Subject(SubjectType.CLIENT_IP, "2001:db8::1")]
    fired = run(config(pool, address), [mail(0, client_ip="2001:db8::1")])
    assert fired == []  # one message: neither limit of 2 is reached
