"""The console's JSON documents."""

from __future__ import annotations

import pytest

from pipeline.console.api_views import action_row, actions_document, top_document
from pipeline.console.top_subjects import TopSubjects
from pipeline.engine.actions import added, fired
from pipeline.engine.counting import Exemptions
from schemas.config import Exempt
from schemas.events import ActionEvent, Evidence
from schemas.thresholds import Threshold
from schemas.time_ms import from_ms
from schemas.vocabulary import ActionKind, CountMode, SubjectType

T0 = 1_800_000_000_000


def auto(name: str, subject: str, action: str, at_ms: int, mode: str = "enforce") -> ActionEvent:
    threshold = Threshold.model_validate({"name": name, "key": "sasl_username", "window": "30s",
                                          "messages": 60, "action": action, "duration": "15m",
                                          "mode": mode})
    evidence = Evidence(window_start=from_ms(at_ms - 30_000), window_end=from_ms(at_ms),
                        messages=60, spams=2, recipients=75, count=CountMode.MESSAGES,
                        limit_messages=60, limit_spams=0)
    return fired(threshold, SubjectType.SASL_USERNAME, subject, at_ms, at_ms + 900_000, evidence)


def test_an_action_row_carries_its_evidence() -> None:
    row = action_row(auto("burst", "alice", "defer", T0))
    assert row["subject"] == "sasl_username:alice" and row["mode"] == "enforce"
    assert row["evidence"] == {"count": "messages", "units": 60, "flagged": "spam",
                               "flagged_units": 2, "recipients": 75, "limit_units": 60,
                               "limit_flagged": 0, "window_s": 30.0}
    manual = action_row(added(SubjectType.SENDER, "a@b.example", ActionKind.BLOCK, T0, 60_000,
                              "ann", "ticket 7"))
    assert manual["evidence"] is None and (manual["actor"], manual["reason"]) == ("ann", "ticket 7")


def test_enforced_and_stronger_first_and_the_filter_ignores_case() -> None:
    actions = [auto("burst", "alice", "defer", T0), auto("burst", "bob", "defer", T0 + 1000),
               auto("spam", "carol", "block", T0), auto("watch", "dave", "block", T0, "shadow")]
    document = actions_document(actions, "", T0 + 2000)
    assert [a["value"] for a in document["actions"]] == ["carol", "bob", "alice", "dave"]
    assert [a["value"] for a in actions_document(actions, " ALI", T0)["actions"]] == ["alice"]
    assert actions_document(actions, "ALI", T0)["total_in_force"] == 4


def test_top_windows_are_the_three_views_only() -> None:
    top = TopSubjects(100, Exemptions(Exempt()))
    top.add(T0, [(SubjectType.CLIENT_IP, "10.0.0.1")], True, T0)
    document = top_document(top, 60, T0)
    assert document["dimensions"]["client_ip"]["rows"][0]["spam_share"] == 1.0
    assert document["dimensions"]["sasl_username"] == {"messages": 0, "max_error": 0, "rows": []}
    with pytest.raises(ValueError, match="60, 300, 3600"):
        top_document(top, 120, T0)
