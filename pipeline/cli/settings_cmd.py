"""``floodgate settings set|unset|show|list|import``: each subject's customer class, overrides
and exemption, as records on the compacted subject-settings topic.

A ``set`` writes the subject's whole settings (what it does not say is cleared);
``unset`` writes a tombstone (the subject goes back to the default class), with
who and why in its headers for the audit trail. ``import`` reads a customer
database's export (``connectors.settings_files``); with ``--prune`` it also
removes the subjects the export no longer lists, so a nightly import keeps
the topic equal to the database.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer

from connectors.event_files import InputProblem
from connectors.kafka.client_config import producer_config
from connectors.kafka.settings_records import (
    SettingsChange,
    SettingsFeed,
    latest_settings,
    publish_settings,
)
from connectors.kafka.topics import ensure_topics, settings_topic
from connectors.settings_files import read_settings
from pipeline.cli.arguments import audit_arguments
from pipeline.cli.check_config import load_or_report
from pipeline.cli.command_failed import CommandFailed
from pipeline.cli.kafka_preflight import ask_kafka, kafka_preflight
from pipeline.engine.customisation import Customisation
from pipeline.settings_text import effective_lines, parse_overrides, record_problem
from schemas.config import FloodgateConfig
from schemas.subject_settings import (
    ACTOR_HEADER,
    REASON_HEADER,
    Override,
    SubjectSettings,
    describe_override,
)
from schemas.subjects import parse_subject, subject_key

CATCH_UP_S = 120.0
QUIET_S = 0.5
PROGRESS_EVERY = 100_000
REMOVED_HEADERS = (ACTOR_HEADER, REASON_HEADER)  # on a tombstone: who and why


def register(sub: Any) -> None:
    parser = sub.add_parser("settings", help="customer classes, overrides and exemptions of "
                                             "subjects (the subject-settings topic)")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    set_ = verbs.add_parser("set", help="write SUBJECT's whole settings")
    set_.add_argument("subject", metavar="SUBJECT", help="type:value, e.g. sasl_username:alice")
    set_.add_argument("--class", dest="subject_class", help="its customer class")
    set_.add_argument("--override", action="append", default=[], metavar="THRESHOLD.FIELD=N",
                      help="e.g. burst.messages=600 (fields: messages, spams, flagged_units)")
    set_.add_argument("--off", action="append", default=[], metavar="THRESHOLD",
                      help="this threshold does not count the subject")
    set_.add_argument("--exempt", action="store_true",
                      help="never counted, never acted on (the policy service answers DUNNO)")
    set_.set_defaults(run=run_set)
    unset = verbs.add_parser("unset", help="remove SUBJECT's settings (back to the default "
                                           "class)")
    unset.add_argument("subject", metavar="SUBJECT")
    unset.set_defaults(run=run_unset)
    show = verbs.add_parser("show", help="SUBJECT's settings and the numbers it gets")
    show.add_argument("subject", metavar="SUBJECT")
    show.set_defaults(run=run_show)
    listing = verbs.add_parser("list", help="every subject's settings")
    listing.add_argument("--class", dest="subject_class", help="only subjects of this class")
    listing.set_defaults(run=run_list)
    load = verbs.add_parser("import", help="import a customer database's export: CSV "
                                           "subject,class or JSON lines")
    load.add_argument("file", metavar="FILE", help="the export; - for standard input")
    load.add_argument("--prune", action="store_true",
                      help="also remove the settings of subjects the file does not list")
    load.add_argument("--dry-run", action="store_true", help="check the file, write nothing")
    load.set_defaults(run=run_import)
    for verb in (set_, unset, show, listing, load):
        verb.add_argument("--config", required=True)
    for verb in (set_, unset):
        audit_arguments(verb)
    audit_arguments(load, reason_required=False)
    load.add_argument("--reason", help="why (default: import of FILE)")


def _subject(text: str, config: FloodgateConfig) -> str:
    try:
        return subject_key(*parse_subject(text, config.addresses.extension_delimiters))
    except ValueError as exc:
        raise CommandFailed(f"SUBJECT: {exc}") from None


def _overrides(args: argparse.Namespace) -> dict[str, Override]:
    try:
        return parse_overrides(args.override, args.off)
    except ValueError as exc:
        raise CommandFailed(f"--override: {exc}") from None


# -- verbs --------------------------------------------------------------------------------
def _prepared(args: argparse.Namespace) -> tuple[FloodgateConfig, str] | None:
    """The config and SUBJECT in its one spelling; None once the config's problems are said."""
    config = load_or_report(args.config)
    return None if config is None else (config, _subject(args.subject, config))


def run_set(args: argparse.Namespace) -> int:
    prepared = _prepared(args)
    if prepared is None:
        return 1
    config, key = prepared
    try:
        record = SubjectSettings(subject=key,
                                 subject_class=args.subject_class, overrides=_overrides(args),
                                 exempt=args.exempt, actor=args.actor, reason=args.reason,
                                 at=datetime.now(UTC))
    except ValueError as exc:
        raise CommandFailed(str(exc)) from None
    problem = record_problem(config, record)
    if problem:
        raise CommandFailed(problem)
    _publish(config, [(record.subject, record)])
    print(f"{record.subject}: {record.describe()}")
    return 0


def run_unset(args: argparse.Namespace) -> int:
    prepared = _prepared(args)
    if prepared is None:
        return 1
    config, key = prepared
    _publish(config, [(key, None)], {REMOVED_HEADERS[0]: args.actor,
                                     REMOVED_HEADERS[1]: args.reason})
    print(f"{key}: settings removed (class {config.classes.default}, the thresholds' own numbers)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    prepared = _prepared(args)
    if prepared is None:
        return 1
    config, key = prepared
    record = read_all(config).get(key)
    custom = Customisation.of(record) if record else None
    if record is None:
        print(f"{key}: no settings (class {config.classes.default})")
    else:
        print(f"{key}: {record.describe()}\n  set by {record.actor} at "
              f"{record.at:%Y-%m-%dT%H:%M:%SZ}: {record.reason}")
    for line in effective_lines(config, key, custom):
        print(f"  {line}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return 1
    records = read_all(config)
    print(f"{'SUBJECT':<45} {'CLASS':<12} {'EXEMPT':<6} {'BY':<12} {'AT':<20} OVERRIDES / REASON")
    shown = 0
    for key in sorted(records):
        record = records[key]
        if args.subject_class and (record.subject_class or config.classes.default) \
                != args.subject_class:
            continue
        shown += 1
        overrides = ", ".join(f"{name} {text}" for name, text in
                              sorted(_override_texts(record).items()))
        print(f"{key:<45} {record.subject_class or '-':<12} {'yes' if record.exempt else '-':<6} "
              f"{record.actor[:12]:<12} {record.at:%Y-%m-%dT%H:%M:%SZ}  "
              f"{overrides + ' / ' if overrides else ''}{record.reason}")
    print(f"{shown} subject(s)", file=sys.stderr)
    return 0


def _override_texts(record: SubjectSettings) -> dict[str, str]:
    return {name: describe_override(override) for name, override in record.overrides.items()}


def run_import(args: argparse.Namespace) -> int:
    """Exit 0; 1 when a row was bad (the others are imported)."""
    config = load_or_report(args.config)
    if config is None:
        return 1
    reason = args.reason or f"import of {args.file}"
    bad: list[InputProblem] = []

    def report(problem: InputProblem) -> None:
        bad.append(problem)
        print(problem, file=sys.stderr)

    try:
        handle = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8",  # noqa: SIM115
                                                          errors="replace")
    except OSError as exc:
        raise CommandFailed(f"{args.file}: cannot read: {exc.strerror}") from None
    started = time.monotonic()
    rows = read_settings(handle, args.file, args.actor, reason, datetime.now(UTC), report,
                         config.addresses.extension_delimiters,
                         lambda row: record_problem(config, row))
    listed: set[str] | None = set() if args.prune else None
    changes = _listed(rows, listed)
    if args.dry_run:
        count = sum(1 for _ in changes)
        print(f"{args.file}: {count:,} rows fine, {len(bad):,} bad; nothing written (--dry-run)")
        return 1 if bad else 0
    if not args.prune:
        ask_kafka(config.kafka)
    present = set(read_all(config)) if args.prune else set()
    count = _publish(config, changes, progress=lambda n: _progress(n, started))
    handle.close()
    removed = 0
    if args.prune:
        gone = sorted(present - (listed or set()))
        removed = _publish(config, ((key, None) for key in gone),
                           {REMOVED_HEADERS[0]: args.actor, REMOVED_HEADERS[1]: reason})
    elapsed = time.monotonic() - started
    print(f"{args.file}: imported {count:,} rows in {elapsed:.1f} s "
          f"({count / max(elapsed, 1e-9):,.0f} rows/s), {len(bad):,} bad rows skipped"
          + (f", {removed:,} subjects no longer listed removed" if args.prune else "")
          + f"; peak RSS {_peak_rss_mib():.0f} MiB", file=sys.stderr)
    return 1 if bad else 0


def _listed(rows: Iterator[SubjectSettings], listed: set[str] | None
            ) -> Iterator[SettingsChange]:
    """The rows as changes; ``listed`` (for --prune) collects their subjects."""
    for row in rows:
        if listed is not None:
            listed.add(row.subject)
        yield row.subject, row


def _progress(count: int, started: float) -> None:
    if count % PROGRESS_EVERY == 0:
        elapsed = time.monotonic() - started
        print(f"  {count:,} rows sent ({count / max(elapsed, 1e-9):,.0f} rows/s)",
              file=sys.stderr, flush=True)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- Kafka --------------------------------------------------------------------------------
def _publish(config: FloodgateConfig, changes: Iterator[SettingsChange] | list[SettingsChange],
             headers: dict[str, str] | None = None,
             progress: Callable[[int], None] | None = None) -> int:
    with kafka_preflight(config.kafka):
        ensure_topics(config.kafka, [settings_topic(config)])
        producer = Producer(producer_config(config.kafka, **{"linger.ms": 20,
                                                              "batch.size": 1_000_000}))
        return publish_settings(producer, config.topics.subject_settings, changes,
                                headers=headers, on_sent=progress)


def read_all(config: FloodgateConfig) -> dict[str, SubjectSettings]:
    """Every subject's latest settings record, read from the topic's start."""
    with kafka_preflight(config.kafka):
        ensure_topics(config.kafka, [settings_topic(config)])
    records: list[tuple[str | None, bytes | None]] = []
    feed = SettingsFeed(config.kafka, config.topics.subject_settings,
                        lambda key, value: records.append((key, value)))
    feed.start()
    caught_up = feed.caught_up.wait(CATCH_UP_S)
    # then until the records stop coming: a broker may report the last batch's first offset
    # as the end (Tansu 0.6 does), and the rest of that batch is still on its way
    seen = -1
    while caught_up and feed.records != seen:
        seen = feed.records
        time.sleep(QUIET_S)
    feed.stop()
    if not caught_up:
        raise CommandFailed(f"could not read {config.topics.subject_settings} within "
                            f"{CATCH_UP_S:.0f} s")
    return latest_settings(records)
