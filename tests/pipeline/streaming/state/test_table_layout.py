"""Reserved keys of the subject-state table sort before subjects and in expiry order."""

from __future__ import annotations

import pytest

from pipeline.streaming.state.table_layout import (
    FENCE_KEY,
    MARKER_KEY,
    META_KEY,
    expiry_bound,
    expiry_key,
    is_subject_key,
    parse_expiry_key,
)


def test_expiry_keys_sort_by_time_and_parse_back() -> None:
    keys = [expiry_key(t, b"sender:a@b") for t in (2_000, 10, 300_000_000_000)]
    assert sorted(keys) == [keys[1], keys[0], keys[2]]
    assert parse_expiry_key(keys[0]) == (2_000, b"sender:a@b")
    assert keys[0] < expiry_bound(2_000) <= keys[2]
    assert expiry_key(2_001, b"") >= expiry_bound(2_000)


def test_reserved_keys_are_not_subjects() -> None:
    for reserved in (META_KEY, MARKER_KEY, FENCE_KEY):
        assert not is_subject_key(reserved)
    assert not is_subject_key(expiry_key(1, b"x"))
    assert is_subject_key(b"client_ip:192.0.2.1")
    with pytest.raises(ValueError):
        parse_expiry_key(b"sender:x")
