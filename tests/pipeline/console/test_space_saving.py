"""Space-Saving's guarantees, checked against exact counts on drawn streams."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.console.space_saving import SpaceSaving

streams = st.lists(st.tuples(st.integers(0, 40), st.booleans()), max_size=600)


@settings(max_examples=300, deadline=None)
@given(stream=streams, capacity=st.integers(1, 25))
def test_counts_bound_the_truth_and_every_heavy_key_is_kept(stream: list[tuple[int, bool]],
                                                            capacity: int) -> None:
    summary = SpaceSaving(capacity)
    for key, flagged in stream:
        summary.add(f"k{key}", flagged)
    truth = Counter(f"k{key}" for key, _ in stream)
    flagged_truth = Counter(f"k{key}" for key, flagged in stream if flagged)
    assert summary.total == len(stream)
    assert len(summary.counters) <= capacity
    for key, counter in summary.counters.items():
        assert counter.count - counter.error <= truth[key] <= counter.count
        assert counter.error <= len(stream) // capacity
        assert counter.flagged <= flagged_truth[key]
    for key, true_count in truth.items():
        if key not in summary.counters:
            assert true_count <= summary.floor()
        if true_count > len(stream) / capacity:
            assert key in summary.counters


def test_exact_while_the_keys_fit() -> None:
    summary = SpaceSaving(3)
    for key in "aabacab":
        summary.add(key, key == "c")
    assert {k: (c.count, c.error, c.flagged) for k, c in summary.counters.items()} == {
        "a": (4, 0, 0), "b": (2, 0, 0), "c": (1, 0, 1)}
    assert summary.floor() == 1  # full: an unseen key could have been seen as often as "c"


def test_a_new_key_takes_the_smallest_place_and_inherits_its_count_as_error() -> None:
    summary = SpaceSaving(2)
    for key in "aab":
        summary.add(key)
    summary.add("z")
    assert "b" not in summary.counters
    assert (summary.counters["z"].count, summary.counters["z"].error) == (2, 1)


def test_memory_stays_bounded_on_a_stream_of_new_keys() -> None:
    summary = SpaceSaving(50)
    for index in range(100_000):
        summary.add(f"new{index}")
    assert len(summary.counters) == 50
    assert len(summary._heap) <= 4 * 50 + 64 + 1
