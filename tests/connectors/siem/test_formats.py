"""ECS and CEF renderings: golden lines, and hostile values that cannot break a line or a field."""

from __future__ import annotations

import json
from datetime import timedelta

from connectors.siem import cef, ecs
from schemas.events import Escalation, Evidence
from schemas.vocabulary import Flag
from tests.fixtures.siem_records import action
from tests.pipeline.engine.builders import T0, mail

HOSTILE = "evil\r\nCEF:0|x|y|z=1 \\ | \x00\x1b[31m\u2028end"


def test_cef_action_golden_line() -> None:
    line = cef.action_line(action())
    head, _, ext = line.partition("|rt=")
    assert head.startswith("CEF:0|Floodgate|Floodgate|")
    assert head.endswith("|action-defer-active|defer active|5")
    assert ext == ("1795780800000 act=defer outcome=active externalId=a1b2 start=1795780800000 "
                   "end=1795781700000 cs1Label=threshold cs1=burst cs2Label=subjectType "
                   "cs2=sasl_username cs3Label=subject cs3=alice suser=alice cn1Label=messages "
                   "cn1=60 cn2Label=spams cn2=0")


def test_cef_names_what_a_ratio_threshold_counted() -> None:
    bounces = Evidence(window_start=T0 - timedelta(minutes=10), window_end=T0, messages=30,
                       spams=20, recipients=30, count="deliveries", limit_messages=30,
                       limit_spams=20, flagged="bounced")
    line = cef.action_line(action(threshold="bought-list", evidence=bounces))
    assert line.endswith("cn1Label=deliveries cn1=30 cn2Label=bounced cn2=20")
    document = ecs.action_document(action(evidence=bounces))
    assert document["floodgate"]["evidence"]["flagged"] == "bounced"
    for flag in Flag:  # every flag a threshold can count has its label
        evidence = bounces.model_copy(update={"flagged": flag})
        assert f"cn2Label={cef._FLAGGED_LABEL[flag]} cn2=20" in cef.action_line(
            action(evidence=evidence))


def test_cef_escapes_hostile_values() -> None:
    line = cef.action_line(action(subject=HOSTILE, subject_type="sender", reason=HOSTILE))
    assert "\n" not in line and "\r" not in line and "\x00" not in line and "\x1b" not in line
    assert "\u2028" not in line
    # in extension values: backslash, equals and line breaks escaped; pipes are fine there
    assert "cs3=evil\\r\\nCEF:0|x|y|z\\=1 \\\\ |" in line
    # no unescaped '=' inside a value: every ' key=' boundary is a real key
    fields = [part.split("=", 1)[0] for part in line.split("|", 7)[7].split(" ")
              if "=" in part and not part.split("=", 1)[0].endswith("\\")]
    assert all(key.isidentifier() or key == "" for key in fields)


def test_cef_header_escapes_pipes_and_backslashes() -> None:
    assert cef.header_escape("a|b\\c\nd") == "a\\|b\\\\c d"
    assert cef.value_escape("a=b\\c\r\nd|e") == "a\\=b\\\\c\\r\\nd|e"


def test_ecs_action_document() -> None:
    document = ecs.action_document(action(subject="192.0.2.7", subject_type="client_ip"))
    assert document["event"]["kind"] == "alert"
    assert document["event"]["category"] == ["email", "intrusion_detection"]
    assert document["event"]["type"] == ["denied"]
    assert document["event"]["action"] == "defer-active"
    assert document["source"] == {"ip": "192.0.2.7"}
    assert document["rule"] == {"name": "burst"}
    assert document["@timestamp"] == "2026-11-27T12:00:00Z"
    assert document["floodgate"]["evidence"]["messages"] == 60


def test_ecs_mail_document_and_hostile_values_stay_on_one_line() -> None:
    event = mail(0, sasl_username=HOSTILE[:60], sender="bob@example.net", queue_id="4Fx")
    line = ecs.to_line(ecs.mail_document(event))
    assert "\n" not in line and "\r" not in line and "\u2028" not in line
    document = json.loads(line)
    assert document["user"]["name"] == HOSTILE[:60]  # escaped on the wire, intact when read
    assert document["email"]["from"]["address"] == ["bob@example.net"]
    assert document["email"]["direction"] == "outbound"
    assert document["event"]["action"] == "message-accepted"
    assert document["source"]["ip"] == "10.0.0.5"


def test_ended_actions_are_events_not_alerts() -> None:
    ended = action(state="expired")
    assert ecs.action_document(ended)["event"]["kind"] == "event"
    assert cef.action_line(ended).split("|")[6] == "1"


def test_a_lift_names_the_operator_as_the_one_who_acted_and_ends_when_lifted() -> None:
    lifted_at = T0 + timedelta(minutes=3)
    lift = action(subject="compromised", state="lifted", origin="manual", actor="alice",
                  reason="customer called", ts=lifted_at)
    document = ecs.action_document(lift)
    assert document["user"] == {"name": "alice", "target": {"name": "compromised"}}
    assert document["related"] == {"user": ["alice", "compromised"]}
    assert document["event"]["end"] == "2026-11-27T12:03:00Z"  # T0 + 3 min: lifted then
    assert document["event"]["type"] == ["info"]  # ECS has no "end" type for these categories
    line = cef.action_line(lift)
    assert f"end={int(lifted_at.timestamp() * 1000)} " in line
    assert "cs4Label=actor cs4=alice" in line and "suser=compromised" in line


def test_an_automatic_action_names_its_subject_only_as_the_target() -> None:
    document = ecs.action_document(action(subject="bob"))
    assert document["user"] == {"target": {"name": "bob"}}
    assert document["related"] == {"user": ["bob"]}
    assert document["event"]["end"] == "2026-11-27T12:15:00Z"  # its expiry
    assert "cs4" not in cef.action_line(action(subject="bob"))


def test_ecs_writes_each_text_once() -> None:
    reason = "customer called: " + "ü" * 300
    document = ecs.action_document(action(state="lifted", origin="manual", actor="alice",
                                          reason=reason))
    line = ecs.to_line(document)
    assert line.count(json.dumps(reason)[1:-1]) == 1  # event.reason only
    assert document["event"]["reason"] == reason
    assert not {"reason", "actor", "threshold", "action_id", "ts"} & set(document["floodgate"])
    assert document["floodgate"]["subject"] == "alice"  # the key, for every subject type
    assert "customer" not in document["message"] and "alice" not in document["message"]
    refused = mail(0, accepted=False, reject_reason="554 5.7.1 <x>: rejected",
                   recipients=["r1@example.com", "r2@example.com"], message_id="<m@x>")
    mail_line = ecs.to_line(ecs.mail_document(refused))
    for text in ("554 5.7.1", "r1@example.com", "<m@x>", "alice@example.net", "10.0.0.5"):
        assert mail_line.count(text) == 1, text
    assert json.loads(mail_line)["event"]["reason"] == "554 5.7.1 <x>: rejected"


def test_ecs_keeps_the_null_sender_and_a_domain_subject_under_floodgate() -> None:
    bounce = ecs.mail_document(mail(0, sender="", sasl_username=None))
    assert bounce["floodgate"]["sender"] == "" and "from" not in bounce["email"]
    domain = ecs.action_document(action(subject="example.net", subject_type="sender_domain"))
    assert domain["floodgate"]["subject"] == "example.net" and "user" not in domain


def test_an_overlong_ecs_record_is_cut_in_its_free_text_and_says_so() -> None:
    reason = "é" * 1990  # 6 bytes each once escaped: 11,940 bytes
    line = ecs.bounded_line(ecs.action_document(action(actor="alice", reason=reason)), 8000)
    document = json.loads(line)
    assert len(line) <= 8000
    assert document["floodgate"]["cut"] == {"event.reason": 1990}
    assert 0 < len(document["event"]["reason"]) < 1990
    assert reason.startswith(document["event"]["reason"])
    assert document["user"] == {"name": "alice", "target": {"name": "alice"}}  # names kept whole


def test_a_mail_record_with_thousands_of_recipients_keeps_a_prefix_of_them() -> None:
    recipients = [f"customer{n}@example.com" for n in range(10_000)]
    event = mail(0, recipients=recipients, recipient_count=10_000)
    document = json.loads(ecs.bounded_line(ecs.mail_document(event), 8000))
    kept = document["email"]["to"]["address"]
    assert document["floodgate"]["cut"] == {"email.to.address": 10_000}
    assert kept == recipients[:len(kept)] and len(kept) > 100
    assert document["floodgate"]["recipient_count"] == 10_000


def test_cef_cuts_long_values_before_escaping_and_names_them() -> None:
    reason = "a=b\\c " * 300  # 1,800 characters, each '=' and '\\' escaped to two
    line = cef.action_line(action(reason=reason), 8000)
    value = line.split(" reason=", 1)[1].split(" cs6Label=", 1)[0]
    assert line.endswith(" cs6Label=cut cs6=reason:1800")
    unescaped = value.replace("\\=", "=").replace("\\\\", "\\")
    assert reason.startswith(unescaped) and len(unescaped) == cef.MAX_VALUE
    small = cef.action_line(action(reason=reason), 600)
    assert len(small.encode()) <= 600 and "cs6=reason:1800" in small
    assert not small.split(" reason=", 1)[1].split(" cs6Label=")[0].endswith("\\")


def test_a_shadow_action_is_information_marked_shadow() -> None:
    shadow = action(enforced=False)
    document = ecs.action_document(shadow)
    assert document["tags"] == ["shadow"] and document["event"]["type"] == ["info"]
    assert document["floodgate"]["enforced"] is False
    line = cef.action_line(shadow)
    assert "cs5Label=mode cs5=shadow" in line and line.split("|")[6] == "1"
    assert "tags" not in ecs.action_document(action())


def test_an_escalated_action_names_its_step() -> None:
    evidence = action().evidence
    assert evidence is not None
    escalated = action(action="block", evidence=evidence.model_copy(update={
        "escalation": Escalation(step=2, firing=3, within_s=86_400, first_at=T0)}))
    document = ecs.action_document(escalated)
    assert document["tags"] == ["escalated"]
    assert document["floodgate"]["evidence"]["escalation"] == {
        "step": 2, "firing": 3, "within_s": 86_400.0, "first_at": "2026-11-27T12:00:00Z"}
    line = cef.action_line(escalated)
    assert "cn3Label=escalationStep cn3=2 cnt=3" in line
    assert "cn3" not in cef.action_line(action())


def _settings_change(value: bytes | None, headers: dict[str, bytes] | None = None) -> object:
    from schemas.subject_settings import SettingsChange
    from schemas.time_ms import to_ms
    return SettingsChange.of(b"sasl_username:alice", value, headers or {}, to_ms(T0))


def test_settings_changes_are_audit_records_in_both_formats() -> None:
    from schemas.subject_settings import SettingsChange, SubjectSettings
    record = SubjectSettings(subject="sasl_username:alice", subject_class="business",
                             overrides={"burst": {"messages": 600}}, actor="ops|x=y",
                             reason=HOSTILE, at=T0)
    change = _settings_change(record.to_json())
    assert isinstance(change, SettingsChange)
    line = cef.settings_line(change)
    assert line.count("\n") == 0 and "|settings-set|settings set|3|" in line
    assert "cs4Label=actor cs4=ops|x\\=y" in line and "suser=alice" in line
    assert "cs1=class business, burst messages\\=600" in line
    document = ecs.settings_document(change)
    assert document["event"]["action"] == "settings-set"
    assert document["event"]["category"] == ["configuration"]
    assert document["user"] == {"name": "ops|x=y", "target": {"name": "alice"}}
    assert document["floodgate"]["class"] == "business"
    assert "\n" not in ecs.to_line(document)
    removed = _settings_change(None, {"floodgate-actor": b"ops", "floodgate-reason": b"churned"})
    assert isinstance(removed, SettingsChange)
    document = ecs.settings_document(removed)
    assert document["event"]["type"] == ["deletion"] and document["event"]["reason"] == "churned"
    assert document["floodgate"] == {"subject": "sasl_username:alice", "removed": True}
    assert "outcome=removed" in cef.settings_line(removed) and "cs4=ops" in cef.settings_line(
        removed)
    unsigned = _settings_change(None)  # a tombstone written by another tool still reads
    assert isinstance(unsigned, SettingsChange) and unsigned.actor == "unknown"


def test_a_network_subject_is_the_source_s_address_and_the_evidence_names_the_baseline() -> None:
    network = action(subject="2001:db8:1:2::/64", subject_type="client_net")
    document = ecs.action_document(network)
    assert document["source"] == {"address": "2001:db8:1:2::/64"}
    assert document["floodgate"]["subject"] == "2001:db8:1:2::/64"
    line = cef.action_line(network)
    assert "cs2=client_net" in line and "cs3=2001:db8:1:2::/64" in line
    assert "src=" not in line  # CEF's src is one address
    assert network.evidence is not None
    learnt = network.model_copy(update={"evidence": network.evidence.model_copy(
        update={"baseline": 1.25})})
    assert ecs.action_document(learnt)["floodgate"]["evidence"]["baseline"] == 1.25
