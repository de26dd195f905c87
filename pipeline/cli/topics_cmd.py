"""``floodgate topics create|check|acls --config FILE``: every topic as production needs it,
and what each process needs on them (``acls``).

``create`` makes the missing ones with the partitions, replication factor,
compaction and retention the README states, then checks all of them; ``check``
only reports. Exit 1 when something would make counting or enforcement wrong
(a missing topic, a co-partitioned topic with other partitions, an action
topic that is not compacted); differences that only cost safety margin
(replicas, retention) are printed and exit 0.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from connectors.kafka.access import access_table
from connectors.kafka.topics import (
    DAY_MS,
    TopicSpec,
    TopicState,
    default_replication,
    floodgate_topics,
    survey_topics,
)
from pipeline.cli.arguments import digits, number_in
from pipeline.cli.check_config import load_or_report
from pipeline.cli.kafka_preflight import kafka_preflight

_replicas = number_in(digits, lambda value: 1 <= value <= 32,
                      "{text!r}: a number of copies from 1 to 32")


def register(sub: Any) -> None:
    parser = sub.add_parser("topics", help="create or check every topic with its production "
                                           "settings")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, text in (("create", "create the missing topics, then check all of them"),
                       ("check", "report how the topics differ from what Floodgate needs")):
        command = verbs.add_parser(verb, help=text)
        command.add_argument("--config", required=True)
        command.add_argument("--replication-factor", type=_replicas, default=None, metavar="N",
                             help="copies of each partition (default: 3, or the number of "
                                  "brokers if fewer)")
        command.set_defaults(run=run, create=verb == "create")
    acls = verbs.add_parser("acls", help="what each process reads, writes and joins on Kafka "
                                         "(for the cluster's ACLs), as a Markdown table")
    acls.add_argument("--config", required=True)
    acls.set_defaults(run=run_acls)


def run_acls(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 1
    print("\n".join(access_table(config)))
    return 0


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 1
    with kafka_preflight(config.kafka):
        replicas = args.replication_factor or default_replication(config.kafka)
        specs = floodgate_topics(config, replicas)
        states, problems = survey_topics(config.kafka, specs, create=args.create)
    _print_table(specs, states)
    for problem in problems:
        print(problem.line, file=sys.stderr)
    fatal = [p for p in problems if p.fatal]
    print(f"{len(specs)} topics: {len(fatal)} error(s), {len(problems) - len(fatal)} warning(s)",
          file=sys.stderr)
    return 1 if fatal else 0


def _print_table(specs: list[TopicSpec], states: dict[str, TopicState]) -> None:
    row = "{:<40} {:>10} {:>8} {:<16} {}"
    print(row.format("TOPIC", "PARTITIONS", "REPLICAS", "CLEANUP", "RETENTION"))
    for spec in specs:
        state = states.get(spec.name)
        if state is None:
            print(row.format(spec.name, "-", "-", "-", "missing"))
            continue
        retention = state.config.get("retention.ms")
        days = f"{int(retention) / DAY_MS:g} d" if retention and retention.isdigit() \
            else (retention or "-")
        print(row.format(spec.name, state.partitions, state.replication_factor,
                         state.config.get("cleanup.policy", "-"), days))
