"""How an action reads to operators (the CLI's tables, `replay`, `actions list`, the console): one wording."""

from __future__ import annotations

from datetime import timedelta

from schemas.durations import format_duration
from schemas.events import ActionEvent


def mode_text(action: ActionEvent) -> str:
    return "enforce" if action.enforced else "shadow"  # shadow: watched, not applied


def flagged_text(action: ActionEvent) -> str:
    """``spam:3``, ``bounced:20``: the flagged units counted and what flagged them."""
    evidence = action.evidence
    return f"{evidence.flagged.value}:{evidence.spams}" if evidence else ""


def escalation_text(action: ActionEvent) -> str:
    """``step 2: 3rd in 24h`` for a repeat offender's action, ``-`` otherwise."""
    escalation = action.evidence.escalation if action.evidence else None
    if escalation is None:
        return "-"
    within = format_duration(timedelta(seconds=escalation.within_s))
    return f"step {escalation.step}: {ordinal(escalation.firing)} in {within}"


def ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def who_text(action: ActionEvent) -> str:
    """Who put the action in force: the operator, or the threshold that fired."""
    return action.actor or "?" if action.threshold is None else f"threshold {action.threshold}"


def why_text(action: ActionEvent) -> str:
    """Why: the operator's reason, or what the threshold counted against its limit."""
    evidence = action.evidence
    if action.threshold is None or evidence is None:
        return action.reason or "(no reason recorded)"
    window = format_duration(evidence.window_end - evidence.window_start)
    flagged = (f", {evidence.spams} {evidence.flagged.value} (limit {evidence.limit_spams})"
               if evidence.limit_spams else "")
    return (f"{evidence.messages} {evidence.count.value} in {window} (limit "
            f"{evidence.limit_messages}){flagged}")
