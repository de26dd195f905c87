"""``floodgate replay FILE... --config CONFIG [--compare OTHER]``: the actions history would
have caused, or how two configs' actions differ on the same history."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from connectors.event_files import Event, InputProblem, read_events
from connectors.postfix_log.reader import LogReader, file_reference_time, open_log_lines
from connectors.settings_files import read_settings
from pipeline.action_text import escalation_text, flagged_text, mode_text
from pipeline.cli.check_config import load_or_report
from pipeline.cli.parse_cmd import add_log_options, zone_or_report
from pipeline.engine.customisation import Customisation
from pipeline.replay import Replay
from pipeline.settings_text import class_problem
from schemas.config import FloodgateConfig
from schemas.events import ActionEvent, DeliveryEvent, MailEvent

PROGRESS_EVERY_S = 2.0


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "replay", help="print the actions recorded mail (events as JSON lines, or Postfix "
                       "logs) would have caused")
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="JSON-lines MailEvents and DeliveryEvents (- for stdin) or Postfix "
                             "logs, oldest first")
    parser.add_argument("--config", required=True, help="the YAML config with the thresholds")
    parser.add_argument("--compare", metavar="OTHER",
                        help="another config: print only the actions that differ between the "
                             "two on the same history ('-' only with --config, '+' only with "
                             "OTHER; jsonl: only_with config|compare)")
    parser.add_argument("--settings", action="append", default=[], metavar="FILE",
                        help="subject settings as `settings import` reads them (CSV "
                             "subject,class or JSON lines): the classes and overrides the "
                             "live system had, from the start of the history")
    parser.add_argument("--format", choices=("jsonl", "table"), default="table",
                        help="jsonl: one ActionEvent per line; table: a readable summary")
    add_log_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0; 1 when a config is bad, an input line was skipped (all else still printed) or
    a file held no mail event and no log line."""
    config = load_or_report(args.config)
    other = load_or_report(args.compare) if args.compare else None
    if config is None or (args.compare and other is None):
        return 1
    problems: list[InputProblem] = []

    def report(problem: InputProblem) -> None:
        problems.append(problem)
        print(problem, file=sys.stderr)

    zone = zone_or_report(args.timezone)
    if zone is None:
        return 2
    settings = load_settings_files(args.settings, config, report)
    if settings is None:
        return 1

    def from_logs(paths: list[str]) -> Iterator[Event]:
        reader = LogReader.for_config(config, zone, file_reference_time(paths[0]), args.host)
        stats = reader.tracker.stats
        for path in paths:
            lines, unparsed = [0], stats.unparsed
            yield from (e for e in reader.read(_counted(open_log_lines(path), lines))
                        if isinstance(e, MailEvent | DeliveryEvent))
            if lines[0] and stats.unparsed - unparsed == lines[0]:
                report(InputProblem(path, "no mail event and no syslog line in it: "
                                          "not an input replay can read"))
        yield from (e for e in reader.finish() if isinstance(e, MailEvent | DeliveryEvent))

    events = read_events(args.files, report, from_logs)
    progress = Progress(sys.stderr) if sys.stderr.isatty() else None
    runs = [Replay(config, settings)] + ([Replay(other, settings)] if other is not None else [])
    if other is None:
        writer = _write_jsonl if args.format == "jsonl" else _TableWriter(sys.stdout)
        _replay(events, runs[0], writer, progress)
    else:
        _compare(events, runs, args.format, progress)
    if progress is not None:
        progress.done()
    stats = runs[0].stats
    print(f"replayed {stats.events} events ({stats.counted} counted, {stats.duplicates} "
          f"duplicates, {len(problems)} unreadable): {stats.actions} action events",
          file=sys.stderr)
    return 1 if problems else 0


def load_settings_files(paths: list[str], config: FloodgateConfig,
                        report: Callable[[InputProblem], None]
                        ) -> dict[str, Customisation] | None:
    """Subject key -> settings, the last row of a subject winning; None when a file cannot be
    read (bad rows are reported and skipped)."""
    out: dict[str, Customisation] = {}
    now = datetime.now(UTC)
    known = class_problem(config)
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for row in read_settings(handle, path, "replay", "replay", now, report,
                                         config.addresses.extension_delimiters,
                                         lambda row: known(row.subject_class)):
                    out[row.subject] = Customisation.of(row)
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
            return None
    if paths:
        print(f"{len(out)} subject settings from {', '.join(paths)}", file=sys.stderr)
    return out


def _counted(lines: Iterator[str], count: list[int]) -> Iterator[str]:
    for line in lines:
        if line.strip():
            count[0] += 1
        yield line


def _replay(events: Iterator[Event], run_: Replay, writer: Callable[[ActionEvent], None],
            progress: Progress | None) -> None:
    for event in events:
        for action in run_.feed(event):
            writer(action)
        if progress is not None:
            progress.tick(run_.stats.events, run_.stats.actions)


def _compare(events: Iterator[Event], runs: list[Replay], fmt: str,
             progress: Progress | None) -> None:
    """Both configs on each event; the actions that only one of them caused, in time order."""
    mine: dict[tuple[object, ...], ActionEvent] = {}
    theirs: dict[tuple[object, ...], ActionEvent] = {}
    for event in events:
        for run_, caused in ((runs[0], mine), (runs[1], theirs)):
            for action in run_.feed(event):
                caused[_identity(action)] = action
        if progress is not None:
            progress.tick(runs[0].stats.events, runs[0].stats.actions)
    only = [(a.ts, "-", a) for key, a in mine.items() if key not in theirs]
    only += [(a.ts, "+", a) for key, a in theirs.items() if key not in mine]
    if fmt == "table" and only:
        sys.stdout.write("  " + _TableWriter.header() + "\n")
    for _, mark, action in sorted(only, key=lambda item: (item[0], item[1])):
        if fmt == "jsonl":
            side = "config" if mark == "-" else "compare"
            sys.stdout.write(f'{{"only_with":"{side}","action":{action.model_dump_json()}}}\n')
        else:
            sys.stdout.write(f"{mark} {_TableWriter.row(action)}\n")
    print(f"compared: {sum(m == '-' for _, m, _ in only)} action events only with --config, "
          f"{sum(m == '+' for _, m, _ in only)} only with --compare, "
          f"{sum(1 for key in mine if key in theirs)} in both", file=sys.stderr)


def _identity(action: ActionEvent) -> tuple[object, ...]:
    """What makes two configs' actions the same (their ids differ with the config)."""
    return (action.ts, action.state, action.action, action.key, action.threshold,
            action.expires_at)


class Progress:
    """A line on a terminal, rewritten every few seconds, for inputs that take a while."""

    def __init__(self, out: TextIO, every_s: float = PROGRESS_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._out, self._every, self._clock = out, every_s, clock
        self._next = clock() + every_s
        self._shown = False

    def tick(self, events: int, actions: int) -> None:
        if self._clock() < self._next:
            return
        self._next = self._clock() + self._every
        self._out.write(f"\r{events:,} events replayed, {actions:,} action events so far")
        self._out.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self._out.write("\r\x1b[K")  # clear the line for the summary
            self._out.flush()


def _write_jsonl(action: ActionEvent) -> None:
    sys.stdout.write(action.model_dump_json() + "\n")


class _TableWriter:
    # UNITS: messages, recipients or delivery attempts (the threshold's count); FLAGGED: of
    # which spam, bounced or remote_refused.
    HEADER = ("TIME", "STATE", "ACTION", "SUBJECT", "THRESHOLD", "UNITS", "FLAGGED", "RCPTS",
              "UNTIL", "MODE", "ESCALATION")
    FORMAT = "{:<24} {:<8} {:<10} {:<40} {:<16} {:>6} {:<17} {:>6} {:<20} {:<7} {}"

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._started = False

    def __call__(self, action: ActionEvent) -> None:
        if not self._started:
            self._out.write(self.header() + "\n")
            self._started = True
        self._out.write(self.row(action) + "\n")

    @classmethod
    def header(cls) -> str:
        return cls.FORMAT.format(*cls.HEADER)

    @classmethod
    def row(cls, action: ActionEvent) -> str:
        evidence = action.evidence
        counts = (evidence.messages, flagged_text(action), evidence.recipients) if evidence \
            else ("", "", "")
        return cls.FORMAT.format(
            action.ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            action.state.value, action.action.value, _clip(action.key, 40),
            action.threshold or "-", *counts, action.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            mode_text(action), escalation_text(action))


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
