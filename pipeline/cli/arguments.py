"""Argument types shared by the commands: numbers checked against their range, so a bad
value is a usage error that says what is accepted."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from pipeline.audit import operator_name
from schemas.events import MAX_NAME, MAX_TEXT

Number = TypeVar("Number", int, float)


def number_in(parse: Callable[[str], Number], accept: Callable[[Number], bool], problem: str,
              not_a_number: str | None = None) -> Callable[[str], Number]:
    """An argparse ``type``: ``parse(text)`` when ``accept`` takes it. Otherwise a usage
    error, ``problem`` (or ``not_a_number`` for text ``parse`` refuses) with ``{text}``
    filled in."""
    def convert(text: str) -> Number:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError((not_a_number or problem).format(text=text)) from None
        if not accept(value):
            raise argparse.ArgumentTypeError(problem.format(text=text))
        return value

    return convert


def digits(text: str) -> int:
    """A whole number written in digits only (no sign, space or underscore)."""
    if not text.isdigit():
        raise ValueError(text)
    return int(text)


def _printable(limit: int) -> Callable[[str], str]:
    def check(text: str) -> str:
        text = text.strip()
        if not text or len(text) > limit or not text.isprintable():
            raise argparse.ArgumentTypeError(f"printable text of 1 to {limit} characters")
        return text
    return check


def audit_arguments(parser: argparse.ArgumentParser, reason_required: bool = True) -> None:
    """``--actor`` (default: the person at the command line) and ``--reason``: every change
    records who made it and why (``pipeline.audit``)."""
    parser.add_argument("--actor", type=_printable(MAX_NAME), default=operator_name(),
                        help="who, for the audit trail (default: the user who ran sudo, else "
                             "you)")
    if reason_required:
        parser.add_argument("--reason", required=True, type=_printable(MAX_TEXT),
                            help="why (kept in the record and shown with it, for audit)")
