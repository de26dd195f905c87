"""The compact form the worker keeps of each subject's settings."""

from __future__ import annotations

import pytest

from pipeline.engine.customisation import Customisation
from schemas.subject_settings import SubjectSettings
from tests.pipeline.engine.builders import T0


def test_the_compact_form_reads_back_as_it_was_written() -> None:
    record = SubjectSettings(subject="sasl_username:a", subject_class="bulk",
                             overrides={"burst": {"messages": 600, "spams": 3}, "spam": "off"},
                             exempt=True, actor="crm", reason="export", at=T0)
    custom = Customisation.of(record)
    data = custom.encode()
    assert data == b'{"c":"bulk","o":{"burst":[600,3,null],"spam":null},"x":true}'
    assert Customisation.decode(data) == custom
    assert Customisation.decode(b"{}") == Customisation(None, {}, False)
    assert len(Customisation.of(SubjectSettings(subject="sasl_username:a", subject_class="b",
                                                actor="x", reason="y", at=T0)).encode()) < 12


@pytest.mark.parametrize("data", [b"[]", b'{"c": 5}', b'{"o": {"b": [0, null, null]}}',
                                  b'{"o": {"b": [1]}}', b'{"o": {"b": [true, 1, 1]}}', b"{"])
def test_damaged_bytes_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        Customisation.decode(data)
