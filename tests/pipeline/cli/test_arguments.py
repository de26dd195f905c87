"""Checked number arguments: the value when it is in range, else the command's own words."""

from __future__ import annotations

import argparse

import pytest

from pipeline.cli.arguments import digits, number_in


def test_a_number_in_range_is_taken_and_others_are_said() -> None:
    rate = number_in(float, lambda v: 0 < v <= 10, "out of range: {text}", "not a number: {text!r}")
    assert rate("2.5") == 2.5
    with pytest.raises(argparse.ArgumentTypeError, match=r"^out of range: 11$"):
        rate("11")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^not a number: 'fast'$"):
        rate("fast")
    copies = number_in(digits, lambda v: 1 <= v <= 32, "{text!r}: copies from 1 to 32")
    for text in ("+3", " 3", "3_0", "0"):  # int() takes the first three: digits does not
        with pytest.raises(argparse.ArgumentTypeError, match="copies from 1 to 32"):
            copies(text)
    assert copies("3") == 3
