"""What each Floodgate process does on Kafka: the topics it reads and writes, the consumer
groups it uses, the topics it may create. One list for the deployment guide's ACL table and
``floodgate topics acls`` (which prints it for a config), checked against the guide by a test.

Reads include what a config reload can switch on (deliveries when a threshold counts them,
policy events with ``worker.count_policy_events``), so a reload never meets a denied topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.kafka.topics import changelog_topic
from schemas.config import FloodgateConfig


@dataclass(frozen=True)
class Access:
    process: str  # the floodgate command
    runs_on: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    groups: tuple[str, ...]  # consumer groups (Read on the group)
    creates: str = ""  # a topic prefix it creates at start, if allowed


def access_list(config: FloodgateConfig, siem_formats: tuple[str, ...] = ("ecs",)
                ) -> list[Access]:
    topics, app, client = config.topics, config.worker.app_id, config.kafka.client_id
    changelog = changelog_topic(app)
    return [
        Access("worker", "any host, as many as worker.partitions",
               (topics.mail_events, topics.policy_events, topics.deliveries,
                topics.subject_settings, topics.subject_events, topics.actions, changelog),
               (topics.subject_events, topics.actions, topics.dead_letter, changelog),
               (app, f"{app}-control", f"{app}-restore"), creates=f"{app}-control-"),
        Access("policy-server", "each mail server", (topics.actions, topics.subject_settings),
               (topics.policy_events,), (f"{client}-actions", f"{client}-settings")),
        Access("tail", "each mail server", (), (topics.mail_events, topics.deliveries), ()),
        Access("siem", "one per SIEM feed",
               (topics.actions, topics.subject_settings, topics.mail_events), (),
               tuple(f"{client}-siem-{fmt}" for fmt in siem_formats)),
        Access("console", "an operations host",
               (topics.actions, topics.subject_settings, topics.mail_events,
                topics.policy_events),
               (topics.actions, topics.subject_settings),
               (f"{client}-actions", f"{client}-settings", f"{client}-console")),
        Access("actions, settings (CLI)", "an operator's shell",
               (topics.actions, topics.subject_settings), (topics.actions, topics.subject_settings),
               (f"{client}-actions", f"{client}-settings")),
    ]


def access_table(config: FloodgateConfig) -> list[str]:
    """The list as Markdown table rows (the deployment guide quotes it)."""
    rows = ["| process | runs on | reads (Read, Describe) | writes (Write, Describe) | "
            "consumer groups (Read) |", "|---|---|---|---|---|"]
    for access in access_list(config):
        groups = ", ".join(f"`{g}`" for g in access.groups) or "none"
        if access.creates:
            groups += f"; creates `{access.creates}*` topics (or create them first)"
        rows.append(f"| `{access.process}` | {access.runs_on} | "
                    f"{', '.join(f'`{t}`' for t in access.reads) or 'none'} | "
                    f"{', '.join(f'`{t}`' for t in access.writes) or 'none'} | {groups} |")
    return rows
