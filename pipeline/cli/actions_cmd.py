"""``floodgate actions list|lift|add``: operators see and change actions.

Changes are records on the action topic, so every responder (and the SIEM)
sees the same thing; nothing is changed behind the topic's back.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import Any

from confluent_kafka import Producer

from connectors.kafka.action_records import publish_actions
from connectors.kafka.client_config import producer_config
from connectors.postfix_policy.action_feed import ActionFeed
from pipeline.action_text import escalation_text, mode_text, who_text, why_text
from pipeline.cli.arguments import audit_arguments
from pipeline.cli.check_config import load_or_report
from pipeline.cli.kafka_preflight import ask_kafka, kafka_preflight
from pipeline.engine.actions import added, lifted, manual_duration_ms
from pipeline.engine.enforcement import ActiveActions
from schemas.config import FloodgateConfig
from schemas.durations import format_duration
from schemas.events import ActionEvent
from schemas.subjects import parse_subject, subject_key
from schemas.time_ms import wall_ms
from schemas.vocabulary import ActionKind, SubjectType

CATCH_UP_S = 60.0


def register(sub: Any) -> None:
    parser = sub.add_parser("actions", help="list, lift or add actions (through the action topic)")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    listing = verbs.add_parser("list", help="the actions in force")
    listing.set_defaults(run=run_list)
    lift = verbs.add_parser("lift", help="end every action on SUBJECT (type:value) now")
    lift.add_argument("subject", metavar="SUBJECT", help="e.g. sasl_username:alice")
    lift.add_argument("--reset", action="store_true",
                      help="also forget its earlier firings: escalation starts again at the "
                           "threshold's own action")
    lift.set_defaults(run=run_lift)
    add = verbs.add_parser("add", help="put an action on SUBJECT (type:value)")
    add.add_argument("subject", metavar="SUBJECT")
    add.add_argument("--action", required=True, choices=[k.value for k in ActionKind])
    add.add_argument("--for", dest="duration", required=True, help="how long, e.g. 1h")
    add.set_defaults(run=run_add)
    for verb in (listing, lift, add):
        verb.add_argument("--config", required=True)
    for verb in (lift, add):
        audit_arguments(verb)


def run_list(args: argparse.Namespace) -> int:
    config, view = _load(args)
    if view is None or config is None:
        return 1
    now = wall_ms()
    print(f"{'SUBJECT':<45} {'ACTION':<10} {'MODE':<7} {'UNTIL':<20} {'WHO':<24} "
          f"{'ID':<36} {'ESCALATION':<18} WHY")
    for action in sorted(view.in_force(now), key=lambda a: (a.key, a.expires_at)):
        print(f"{action.key:<45} {action.action.value:<10} {mode_text(action):<7} "
              f"{action.expires_at:%Y-%m-%dT%H:%M:%SZ}  {who_text(action)[:24]:<24} "
              f"{action.action_id:<36} {escalation_text(action):<18} {why_text(action)}")
    return 0


def run_lift(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 1
    subject = _subject(args.subject, config)  # checked before reading the action topic
    if subject is None:
        return 1
    config, view = _load(args, config)
    if view is None or config is None:
        return 1
    now = wall_ms()
    active = view.in_force(now, subject_key(*subject))
    if not active:
        print(f"no action in force on {args.subject}", file=sys.stderr)
        return 1
    _publish(config, [lifted(a, now, args.actor, args.reason, args.reset) for a in active])
    print(f"lifted {len(active)} action(s) on {args.subject}"
          + (" and reset its escalation" if args.reset else ""))
    return 0


def run_add(args: argparse.Namespace) -> int:
    try:
        duration_ms = manual_duration_ms(args.duration)
    except ValueError as exc:
        print(f"--for: {exc}", file=sys.stderr)
        return 2
    config = load_or_report(args.config)
    if config is None:
        return 1
    subject = _subject(args.subject, config)
    if subject is None:
        return 1
    ask_kafka(config.kafka)
    action = added(subject[0], subject[1], ActionKind(args.action), wall_ms(), duration_ms,
                   args.actor, args.reason)
    _publish(config, [action])
    print(f"{args.action} on {args.subject} for "
          f"{format_duration(timedelta(milliseconds=duration_ms))}: {action.action_id}")
    return 0


def _subject(text: str, config: FloodgateConfig) -> tuple[SubjectType, str] | None:
    """The subject in the one spelling counting and the policy service use, or None after
    saying what is wrong with it."""
    try:
        return parse_subject(text, config.addresses.extension_delimiters)
    except ValueError as exc:
        print(f"SUBJECT: {exc}", file=sys.stderr)
        return None


def _load(args: argparse.Namespace, config: FloodgateConfig | None = None
          ) -> tuple[FloodgateConfig | None, ActiveActions | None]:
    config = config or load_or_report(args.config)
    if config is None:
        return None, None
    view = ActiveActions()
    ask_kafka(config.kafka)
    feed = ActionFeed(config.kafka, config.topics.actions,
                      lambda event, _p, _o: view.apply(event) if event is not None else None)
    feed.start()
    caught_up = feed.caught_up.wait(CATCH_UP_S)
    feed.stop()
    if not caught_up:
        print(f"could not read {config.topics.actions} within {CATCH_UP_S:.0f}s", file=sys.stderr)
        return config, None
    return config, view


def _publish(config: FloodgateConfig, actions: list[ActionEvent]) -> None:
    with kafka_preflight(config.kafka):
        publish_actions(Producer(producer_config(config.kafka)), config.topics.actions, actions)


