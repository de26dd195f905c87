"""Read subject settings from a customer database's export, for ``settings import`` and
``replay --settings``.

Two forms, told apart line by line (a line opening with ``{`` is JSON):

* CSV ``subject,class`` (the subject as ``type:value``; a first line
  ``subject,class`` is a header and skipped; ``#`` opens a comment line);
* JSON lines ``{"subject": ..., "class": ..., "overrides": {...}, "exempt": ...}``;
  ``actor``, ``reason`` and ``at`` may be given per line, else the import's.

Every bad row is reported with its line number through ``on_problem`` and
skipped; the rest is read on.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from pydantic import ValidationError

from connectors.event_files import InputProblem, ProblemSink
from schemas.subject_settings import SubjectSettings
from schemas.subjects import parse_subject, subject_key
from schemas.validation import describe_validation_error

MAX_ROW_BYTES = 64 * 1024
RowCheck = Callable[[SubjectSettings], str | None]  # a row -> None if fine, else the problem


def read_settings(lines: Iterable[str], where: str, actor: str, reason: str, at: datetime,
                  on_problem: ProblemSink, delimiters: str = "",
                  check: RowCheck | None = None) -> Iterator[SubjectSettings]:
    """The settings rows of ``lines`` (a file's lines, ``where`` its name for problems)."""
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if len(text) > MAX_ROW_BYTES:
            on_problem(InputProblem(f"{where}:{number}", f"longer than {MAX_ROW_BYTES} bytes"))
            continue
        try:
            row = _json_row(text, actor, reason, at) if text.startswith("{") else \
                _csv_row(text, actor, reason, at, number)
            if row is None:
                continue
            row.subject = subject_key(*parse_subject(row.subject, delimiters))
            problem = check(row) if check else None
            if problem:
                raise ValueError(problem)
        except ValidationError as exc:
            on_problem(InputProblem(f"{where}:{number}", describe_validation_error(exc)))
            continue
        except ValueError as exc:
            on_problem(InputProblem(f"{where}:{number}", str(exc)))
            continue
        yield row


def _json_row(text: str, actor: str, reason: str, at: datetime) -> SubjectSettings:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("a JSON row is an object")
    data.setdefault("actor", actor)
    data.setdefault("reason", reason)
    data.setdefault("at", at)
    return SubjectSettings.model_validate(data)


def _csv_row(text: str, actor: str, reason: str, at: datetime,
             number: int) -> SubjectSettings | None:
    cells = next(csv.reader([text]))
    if len(cells) != 2:
        raise ValueError(f"a CSV row is subject,class; got {len(cells)} field(s)")
    subject, subject_class = (cell.strip() for cell in cells)
    if number == 1 and (subject.lower(), subject_class.lower()) == ("subject", "class"):
        return None  # the header
    return SubjectSettings(subject=subject, subject_class=subject_class or None, actor=actor,
                           reason=reason, at=at)


def settings_file_problem(path: str, exc: OSError) -> InputProblem:
    return InputProblem(path, f"cannot read: {exc.strerror or exc}")
