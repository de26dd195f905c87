"""Argument types shared by the commands: numbers checked against their range, so a bad
value is a usage error that says what is accepted."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

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
