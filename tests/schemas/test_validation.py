"""A record that breaks its contract is described the same way everywhere."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.events import MailEvent
from schemas.validation import describe_validation_error


def problem(raw: bytes) -> str:
    with pytest.raises(ValidationError) as caught:
        MailEvent.model_validate_json(raw)
    return describe_validation_error(caught.value)


def test_broken_json_says_so() -> None:
    assert problem(b"{not json").startswith("not valid JSON: ")


def test_the_first_problem_is_named_by_its_path_and_the_rest_counted() -> None:
    text = problem(b'{"event_id": "x"}')
    assert text.split(":")[0] == "ts"
    assert text.endswith("more problems)")
