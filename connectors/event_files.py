"""Read MailEvents from JSON-lines files (one event per line), merged in time order.

Every line that is not a valid event is reported with its file and line
number through ``on_problem`` and skipped; nothing is dropped silently.
"""

from __future__ import annotations

import heapq
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from pydantic import ValidationError

from schemas.events import MailEvent

MAX_LINE_BYTES = 4 * 1024 * 1024  # a 10,000-recipient event is about 0.5 MiB


@dataclass(frozen=True)
class InputProblem:
    where: str  # "events.jsonl:12"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


ProblemSink = Callable[[InputProblem], None]


def read_mail_events(paths: list[str], on_problem: ProblemSink) -> Iterator[MailEvent]:
    """Events of all ``paths`` (``-`` is standard input), merged by event time.

    Each file is read lazily; the merge assumes each file is roughly in time
    order, as logs are, and keeps the order of equal times.
    """
    streams = [_events_of(path, on_problem) for path in paths]
    return heapq.merge(*streams, key=lambda event: event.ts)


def _events_of(path: str, on_problem: ProblemSink) -> Iterator[MailEvent]:
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


def parse_event_line(line: bytes | None, where: str, on_problem: ProblemSink) -> MailEvent | None:
    """One JSON line as a MailEvent, or None after reporting why it is not one."""
    if line is None:
        on_problem(InputProblem(where, f"line longer than {MAX_LINE_BYTES} bytes, skipped"))
        return None
    if not line.strip():
        return None
    try:
        return MailEvent.model_validate_json(line)
    except ValidationError as exc:
        on_problem(InputProblem(where, describe_validation_error(exc)))
        return None


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem of a record as ``path: message`` (and how many more)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return f"not valid JSON: {first['ctx'].get('error', first['msg'])}"
    loc = ".".join(str(p) for p in first["loc"])
    text = f"{loc}: {first['msg']}" if loc else str(first["msg"])
    more = len(errors) - 1
    return text + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
