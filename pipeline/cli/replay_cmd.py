"""``floodgate replay FILE... --config CONFIG``: the actions history would have caused."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from connectors.event_files import InputProblem, read_mail_events
from connectors.postfix_log.reader import LogReader, file_reference_time, open_log_lines
from pipeline.cli.check_config import load_or_report
from pipeline.cli.parse_cmd import add_log_options, zone_or_report
from pipeline.replay import Replay
from schemas.events import ActionEvent, MailEvent


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "replay", help="print the actions recorded MailEvents (JSON lines) would have caused")
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="JSON-lines MailEvents (- for stdin) or Postfix logs, oldest first")
    parser.add_argument("--config", required=True, help="the YAML config with the thresholds")
    parser.add_argument("--format", choices=("jsonl", "table"), default="table",
                        help="jsonl: one ActionEvent per line; table: a readable summary")
    add_log_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0; 1 when the config is bad or any input line was skipped (all else still printed)."""
    config = load_or_report(args.config)
    if config is None:
        return 1
    problems: list[InputProblem] = []

    def report(problem: InputProblem) -> None:
        problems.append(problem)
        print(problem, file=sys.stderr)

    zone = zone_or_report(args.timezone)
    if zone is None:
        return 2

    def from_logs(paths: list[str]) -> Iterator[MailEvent]:
        reader = LogReader.for_config(config, zone, file_reference_time(paths[0]), args.host)
        for path in paths:
            yield from (e for e in reader.read(open_log_lines(path)) if isinstance(e, MailEvent))
        yield from (e for e in reader.finish() if isinstance(e, MailEvent))

    run_ = Replay(config)
    writer = _write_jsonl if args.format == "jsonl" else _TableWriter(sys.stdout)
    for event in read_mail_events(args.files, report, from_logs):
        for action in run_.feed(event):
            writer(action)
    stats = run_.stats
    print(f"replayed {stats.events} events ({stats.counted} counted, {stats.duplicates} "
          f"duplicates, {len(problems)} unreadable): {stats.actions} action events",
          file=sys.stderr)
    return 1 if problems else 0


def _write_jsonl(action: ActionEvent) -> None:
    sys.stdout.write(action.model_dump_json() + "\n")


class _TableWriter:
    HEADER = ("TIME", "STATE", "ACTION", "SUBJECT", "THRESHOLD", "MSGS", "SPAMS", "RCPTS", "UNTIL")
    FORMAT = "{:<24} {:<8} {:<10} {:<40} {:<16} {:>6} {:>6} {:>6} {}"

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._started = False

    def __call__(self, action: ActionEvent) -> None:
        if not self._started:
            self._out.write(self.FORMAT.format(*self.HEADER) + "\n")
            self._started = True
        evidence = action.evidence
        counts = (evidence.messages, evidence.spams, evidence.recipients) if evidence else ("", "", "")
        self._out.write(self.FORMAT.format(
            action.ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            action.state.value, action.action.value, _clip(action.key, 40),
            action.threshold or "-", *counts, action.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ) + "\n")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
