"""The console's JSON documents (``/api/actions``, ``/api/top``, ``/api/answers``), built from
its summaries. Pure: time comes in as ``now_ms``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.postfix_policy.policy_protocol import ANSWER_KINDS
from pipeline.action_text import escalation_text, mode_text, who_text, why_text
from pipeline.console.near_limits import NEAR, Nearness
from pipeline.console.policy_answers import BUCKET_MS, PolicyAnswers
from pipeline.console.top_subjects import VIEWS_S, TopSubjects
from schemas.events import ActionEvent
from schemas.subjects import subject_key
from schemas.time_ms import to_ms
from schemas.vocabulary import ACTION_STRENGTH

TOP_ROWS = 10
NEAR_ROWS = 15


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def action_row(action: ActionEvent) -> dict[str, Any]:
    evidence = action.evidence
    return {
        "action_id": action.action_id, "subject": action.key,
        "subject_type": action.subject_type.value, "value": action.subject,
        "action": action.action.value, "mode": mode_text(action), "enforced": action.enforced,
        "threshold": action.threshold, "origin": action.origin.value,
        "since": _iso(action.triggered_at), "until": _iso(action.expires_at),
        "escalation": escalation_text(action), "actor": action.actor, "reason": action.reason,
        "who": who_text(action), "why": why_text(action),
        "evidence": None if evidence is None else {
            "count": evidence.count.value, "units": evidence.messages,
            "flagged": evidence.flagged.value, "flagged_units": evidence.spams,
            "recipients": evidence.recipients, "limit_units": evidence.limit_messages,
            "limit_flagged": evidence.limit_spams,
            "window_s": (to_ms(evidence.window_end) - to_ms(evidence.window_start)) / 1000,
        },
    }


def actions_document(actions: list[ActionEvent], query: str, now_ms: int) -> dict[str, Any]:
    """Actions in force, strongest and newest first; ``query``: text the subject contains."""
    wanted = query.strip().lower()
    rows = [a for a in actions if not wanted or wanted in a.key.lower()]
    rows.sort(key=lambda a: (not a.enforced, -ACTION_STRENGTH[a.action], -to_ms(a.triggered_at),
                             a.key))
    return {"now": now_ms / 1000, "query": query, "total_in_force": len(actions),
            "actions": [action_row(a) for a in rows]}


def near_row(near: Nearness) -> dict[str, Any]:
    return {"subject": near.subject, "dimension": near.dimension.value, "value": near.value,
            "threshold": near.threshold, "window_s": near.window_s, "messages": near.messages,
            "limit": near.limit, "flagged": near.flagged, "flagged_limit": near.flagged_limit,
            "share": near.share, "near": near.near, "at_least": near.at_least}


def near_document(ranked: list[Nearness], now_ms: int, rows: int = NEAR_ROWS) -> dict[str, Any]:
    """The subjects nearest a threshold's limit, whatever their volume."""
    return {"now": now_ms / 1000, "window": "limits", "near_from": NEAR,
            "subjects_near": sum(1 for n in ranked if n.near),
            "rows": [near_row(n) for n in ranked[:rows]]}


def top_document(top: TopSubjects, view_s: int, now_ms: int, rows: int = TOP_ROWS,
                 nearness: dict[str, Nearness] | None = None) -> dict[str, Any]:
    """The heaviest subjects of every dimension over the last ``view_s`` (one of VIEWS_S),
    each with its nearness to a limit when it has one."""
    if view_s not in VIEWS_S:
        raise ValueError(f"window must be limits or one of "
                         f"{', '.join(str(v) for v in VIEWS_S)} seconds")
    nearness = nearness or {}
    dimensions = {}
    for dimension in top.dimensions:
        total, heaviest = top.top(view_s, dimension, rows, now_ms)
        dimensions[dimension.value] = {
            "messages": total,
            "max_error": top.error_bound(view_s, total),
            "rows": [{"subject": subject_key(dimension, r.subject), "value": r.subject,
                      "messages": r.messages, "at_least": r.at_least, "at_most": r.at_most,
                      "per_minute": r.per_minute, "spam_share": r.spam_share,
                      "nearest": _nearest(nearness.get(subject_key(dimension, r.subject)))}
                     for r in heaviest],
        }
    return {"now": now_ms / 1000, "window_s": view_s,
            "algorithm": "Space-Saving (Metwally et al. 2005) per time bucket",
            "capacity": top.capacity, "dimensions": dimensions}


def _nearest(near: Nearness | None) -> dict[str, Any] | None:
    return None if near is None else {"threshold": near.threshold, "share": near.share,
                                      "near": near.near}


def answers_document(answers: PolicyAnswers, now_ms: int) -> dict[str, Any]:
    series = answers.series(now_ms)
    return {"now": now_ms / 1000, "bucket_s": BUCKET_MS // 1000, "kinds": list(ANSWER_KINDS),
            "requests_per_second_last_minute": answers.per_second(now_ms, 60),
            "series": [{"t": t, **counts} for t, counts in series]}
