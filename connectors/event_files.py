"""Read MailEvents and DeliveryEvents from JSON-lines files (one event per line), merged in
time order.

Every line that is not a valid event is reported with its file and line
number through ``on_problem`` and skipped; nothing is dropped silently.
"""

from __future__ import annotations

import gzip
import heapq
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from pydantic import ValidationError

from schemas.events import DeliveryEvent, MailEvent
from schemas.validation import describe_validation_error

MAX_LINE_BYTES = 4 * 1024 * 1024  # a 10,000-recipient event is about 0.5 MiB
# A key, never a value: a quote inside a JSON string is escaped, so only a key matches.
_DELIVERY_KEY = re.compile(rb'"delivery_id"\s*:')

Event = MailEvent | DeliveryEvent


@dataclass(frozen=True)
class InputProblem:
    where: str  # "events.jsonl:12"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


ProblemSink = Callable[[InputProblem], None]


LogEvents = Callable[[list[str]], Iterator[Event]]


def read_events(paths: list[str], on_problem: ProblemSink,
                from_logs: LogEvents | None = None) -> Iterator[Event]:
    """Events of all ``paths`` (``-`` is standard input), merged by event time.

    A line with a ``delivery_id`` is a DeliveryEvent, any other a MailEvent.
    A file whose first line is not an event is a mail log: with
    ``from_logs`` all such files go, in the order given (oldest first, as
    rotated logs are), through one log reader. Each file is read lazily; the
    merge assumes each stream is roughly in time order, as logs are.
    """
    json_paths: list[str] = []
    log_paths: list[str] = []
    for path in paths:
        (log_paths if from_logs is not None and _looks_like_log(path) else json_paths).append(path)
    streams = [_events_of(path, on_problem) for path in json_paths]
    if log_paths and from_logs is not None:
        streams.append(from_logs(log_paths))
    return heapq.merge(*streams, key=lambda event: event.ts)


def _looks_like_log(path: str) -> bool:
    """True unless the first non-empty line is a JSON object with an ``event_id``."""
    if path == "-":
        return False
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as stream:
            for line in stream:
                if line.strip():
                    return not (line.lstrip().startswith(b"{") and b'"event_id"' in line)
    except OSError:
        return False  # reported by the JSON reader with the reason
    return False


def _events_of(path: str, on_problem: ProblemSink) -> Iterator[Event]:
    try:
        stream: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        on_problem(InputProblem(path, f"cannot read: {exc.strerror}"))
        return
    with stream:
        for number, line in _lines(stream):
            event = parse_event_line(line, f"{path}:{number}", on_problem)
            if event is not None:
                yield event


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """Numbered lines; None for a line over MAX_LINE_BYTES (its rest is skipped)."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = stream.readline(MAX_LINE_BYTES)
            yield number, None
        else:
            yield number, line


def parse_event_line(line: bytes | None, where: str, on_problem: ProblemSink) -> Event | None:
    """One JSON line as a MailEvent or DeliveryEvent, or None after reporting why it is not
    one."""
    if line is None:
        on_problem(InputProblem(where, f"line longer than {MAX_LINE_BYTES} bytes, skipped"))
        return None
    if not line.strip():
        return None
    try:
        if _DELIVERY_KEY.search(line):
            return DeliveryEvent.model_validate_json(line)
        return MailEvent.model_validate_json(line)
    except ValidationError as exc:
        on_problem(InputProblem(where, describe_validation_error(exc)))
        return None
