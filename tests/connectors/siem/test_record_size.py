"""Cutting a record to a byte budget: free text first, never inside the syntax, and the
cut fields named with their original length."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.siem.record_size import Cuts, RecordTooSmall, fit


def render(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=True, separators=(",", ":"))


def mark(record: dict[str, Any], cuts: Cuts) -> None:
    record["cut"] = dict(cuts)


def test_a_record_that_fits_is_left_alone() -> None:
    record = {"a": {"reason": "short"}, "b": 1}
    assert fit(record, render, 100, ("a.reason",), mark) == render({"a": {"reason": "short"},
                                                                   "b": 1})


def test_named_free_text_is_cut_first_to_the_longest_prefix_that_fits() -> None:
    record = {"id": "x" * 50, "a": {"reason": "r" * 500}, "list": ["y" * 10] * 20}
    line = fit(record, render, 400, ("a.reason",), mark)
    result = json.loads(line)
    assert len(line) <= 400
    assert result["id"] == "x" * 50 and result["list"] == ["y" * 10] * 20  # untouched
    assert result["cut"] == {"a.reason": 500}
    assert "r" * len(result["a"]["reason"]) == result["a"]["reason"]
    one_more = dict(result, a={"reason": "r" * (len(result["a"]["reason"]) + 1)})
    assert len(render(one_more)) > 400  # the longest prefix that fits


def test_when_free_text_is_not_enough_the_longest_other_value_is_cut_next() -> None:
    record = {"short": "s" * 20, "long": "l" * 300, "items": ["i" * 5] * 10, "reason": "r" * 100}
    result = json.loads(fit(record, render, 250, ("reason",), mark))
    assert result["reason"] == "" and result["short"] == "s" * 20
    assert set(result["cut"]) == {"reason", "long"}


def test_a_list_is_cut_by_whole_items() -> None:
    record = {"to": [f"rcpt{n}@example.com" for n in range(1000)]}
    result = json.loads(fit(record, render, 300, ("to",), mark))
    assert result["cut"] == {"to": 1000}
    assert result["to"] == [f"rcpt{n}@example.com" for n in range(len(result["to"]))]


def test_a_budget_below_the_skeleton_is_an_error_not_an_overlong_record() -> None:
    with pytest.raises(RecordTooSmall):
        fit({"n": 12345, "reason": "x" * 100}, render, 10, ("reason",), mark)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from("abcdef"), st.one_of(
    st.text(max_size=600), st.lists(st.text(max_size=40), max_size=30), st.integers(-999, 999))),
       st.integers(min_value=200, max_value=3000))
def test_any_record_fits_as_valid_json_with_every_cut_a_prefix(record: dict[str, Any],
                                                                budget: int) -> None:
    original = json.loads(json.dumps(record))
    line = fit(record, render, budget, ("a",), mark)
    result = json.loads(line)
    assert len(line.encode()) <= budget
    for key, value in original.items():
        if key in result.get("cut", {}):
            assert result["cut"][key] == len(value) and value[:len(result[key])] == result[key]
        else:
            assert result[key] == value
